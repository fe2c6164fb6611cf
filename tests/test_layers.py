"""The layer rule: imports inside ``src/tamperscope`` point down only, and packages import each other in no cycle.

Layers, top to bottom (a module may import its own layer and any layer below):
interfaces (cli, api, demo, the package root) -> evaluation (an edge that runs analyses through the service,
called by the CLI only) -> services -> pipeline / report -> stages (the ``stages`` package: one module per stage
and the contract ``stages.base``) -> algorithm cores (media, forensics, temporal, probe, fusion, models,
samples) -> workspace -> store / custody -> records / settings / errors / redact.
Every import counts, including those inside functions: a lazy import hides a dependency, it does not remove it.

Sizes (issue 14): every module is under 400 lines (generated migrations aside), and no function of a stage or a
service spans more than 80 lines; past that, split along a seam.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tamperscope"
LAYERS: list[set[str]] = [
    {"tamperscope", "cli", "api", "demo"},
    {"evaluation"},
    {"services"},
    {"pipeline", "report"},
    {"stages"},
    {"media", "forensics", "temporal", "probe", "fusion", "models", "samples"},
    {"workspace"},
    {"store", "custody"},
    {"records", "settings", "errors", "redact", "nativelog", "_version"},
]
# Known upward imports (importer, imported). This list may only shrink: an entry that no longer occurs fails.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("tamperscope.custody.intake", "tamperscope.probe.validate"):
        "intake is orchestration (validate, store, record, audit): it belongs in services/ (issue 15 owns custody)",
    ("tamperscope.custody.intake", "tamperscope.workspace"):
        "same: ingest_path/ingest_stream take the workspace; moves with intake to services/",
    ("tamperscope.custody.verify", "tamperscope.workspace"):
        "verify re-hashes the store and walks the chain for a workspace: belongs in services/ (issue 15)",
    # the two below came with the issue-15 merge (signed head, analysis lease), after this list was written
    ("tamperscope.custody.anchor", "tamperscope.workspace"):
        "key creation, anchor export and baseline sealing act on a workspace: services/ or (db, store, actor)",
    ("tamperscope.custody.lease", "tamperscope.workspace"):
        "the analysis lease takes the workspace for its db and actor: pass those instead",
}

#: every module stays under this many lines
MAX_MODULE_LINES = 400
#: no function in these packages spans more lines than this (``def`` line to last line, decorators aside)
MAX_FUNCTION_LINES = 80
FUNCTION_LIMITED = ("stages", "services")
#: generated code, exempt from the module limit
SIZE_EXEMPT = "store/migrations/versions/"


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _unit(module: str) -> str:
    """The node a module belongs to: its top-level package (or the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer(module: str) -> int:
    unit = _unit(module)
    return next(i for i, members in enumerate(LAYERS) if unit in members)


def _imports(modules: dict[str, Path]) -> set[tuple[str, str]]:
    """Every (importer, imported module) pair inside the package; ``from a import b`` resolves to ``a.b`` if it
    is a module."""
    edges = set()
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges |= {(module, t) for t in targets if t.split(".")[0] == "tamperscope" and t != module}
    return edges


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _modules() if not any(_unit(m) in members for members in LAYERS))
    assert unplaced == [], "add these modules' packages to LAYERS"


def _upward(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in edges if _layer(b) < _layer(a)}


def test_imports_point_down_only() -> None:
    upward = _upward(_imports(_modules()))
    assert sorted(upward - set(ALLOWED_UPWARD)) == []
    assert sorted(set(ALLOWED_UPWARD) - upward) == [], "fixed: delete these from ALLOWED_UPWARD"


def test_packages_import_each_other_in_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for a, b in _imports(_modules()) - set(ALLOWED_UPWARD):
        if _unit(a) != _unit(b):
            graph.setdefault(_unit(a), set()).add(_unit(b))
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_only_the_service_runs_the_pipeline() -> None:
    """One front door: the edges (CLI, API jobs, demo, evaluation) analyse through ``services``, not the runner."""
    callers = {a for a, b in _imports(_modules()) if b == "tamperscope.pipeline.runner"}
    assert {a for a in callers if _unit(a) not in ("pipeline", "services")} == set()
    assert "tamperscope.services.analysis" in callers


def test_the_rule_catches_a_lazy_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "tamperscope"
    (package / "cli").mkdir(parents=True)
    for name in ("__init__.py", "cli/__init__.py", "cli/main.py", "media/__init__.py", "pipeline/runner.py"):
        (package / name).parent.mkdir(exist_ok=True)
        (package / name).write_text("from tamperscope.records import Band\n")
    (package / "records.py").write_text("def f():\n    from tamperscope.cli import main\n")
    (package / "media" / "faces.py").write_text("from tamperscope.pipeline import runner\n")
    assert _upward(_imports(_modules(package))) == {("tamperscope.records", "tamperscope.cli.main"),
                                                    ("tamperscope.media.faces", "tamperscope.pipeline.runner")}


def _third_party_roots(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Top-level names each runtime module imports (``import torch`` -> ``torch``), lazy imports included."""
    roots: dict[str, set[str]] = {}
    for module, path in _modules(package).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots.setdefault(module, set()).update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                roots.setdefault(module, set()).add(node.module.split(".")[0])
    return roots


def test_the_runtime_package_never_imports_training_code() -> None:
    """torch and the training package are the ``train`` extra: the runtime reads exported ONNX files only."""
    offenders = {m: sorted(r & {"torch", "torchvision", "tamperscope_train"}) for m, r in _third_party_roots().items()}
    assert {m: r for m, r in offenders.items() if r} == {}


def _long_modules(package: Path = PACKAGE) -> list[str]:
    """Modules of ``package`` at or over :data:`MAX_MODULE_LINES`, each with its length."""
    found = []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines >= MAX_MODULE_LINES and not name.startswith(SIZE_EXEMPT):
            found.append(f"{name}: {lines} lines")
    return found


def _long_functions(package: Path = PACKAGE) -> list[str]:
    """Functions (methods and nested ones included) of :data:`FUNCTION_LIMITED` over :data:`MAX_FUNCTION_LINES`,
    each with its place and length."""
    found = []
    for folder in FUNCTION_LIMITED:
        for path in sorted((package / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            for node in sorted(functions, key=lambda n: n.lineno):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(package).as_posix()}:{node.lineno} {node.name}: {lines} lines")
    return found


def test_modules_and_stage_and_service_functions_stay_small() -> None:
    """A module or a stage/service function past its limit has grown more than one concern: split it at a seam."""
    long_modules, long_functions = _long_modules(), _long_functions()
    assert long_modules == [], f"modules of {MAX_MODULE_LINES} lines or more, split them: {'; '.join(long_modules)}"
    assert long_functions == [], (f"functions over {MAX_FUNCTION_LINES} lines in {'/'.join(FUNCTION_LIMITED)}, "
                                  f"split them: {'; '.join(long_functions)}")


def test_the_size_check_names_each_offender(tmp_path: Path) -> None:
    """Limits hold at their edge (80 and 399 lines pass), methods and nested functions count, other packages'
    functions and the migrations do not."""
    package = tmp_path / "tamperscope"
    for folder in ("stages", "services", "forensics", "store/migrations/versions"):
        (package / folder).mkdir(parents=True)

    def function(name: str, lines: int, indent: str = "") -> str:
        return f"{indent}def {name}() -> None:\n" + f"{indent}    pass\n" * (lines - 1)

    (package / "stages" / "deep.py").write_text("\n" + function("at_limit", 80) + function("over", 81))
    nested = "async " + function("outer", 1) + function("inner", 81, "    ")
    jobs = "class Job:\n" + function("method", 82, "    ") + nested
    (package / "services" / "jobs.py").write_text(jobs + "\n" * (MAX_MODULE_LINES - jobs.count("\n")))
    ela = function("long_but_not_in_a_stage", 200)
    (package / "forensics" / "ela.py").write_text(ela + "\n" * (MAX_MODULE_LINES - 1 - ela.count("\n")))
    (package / "store" / "migrations" / "versions" / "0001.py").write_text("x = 1\n" * 900)
    assert _long_functions(package) == ["stages/deep.py:82 over: 81 lines", "services/jobs.py:2 method: 82 lines",
                                        "services/jobs.py:84 outer: 82 lines", "services/jobs.py:85 inner: 81 lines"]
    assert _long_modules(package) == ["services/jobs.py: 400 lines"]
