"""tamperscope: was this media manipulated, where, and how sure are we?

The front door is :func:`tamperscope.analyze`; the CLI (``tamperscope``) and the HTTP API wrap it. It is
loaded on first use, so importing a low layer (``tamperscope.records``, ``tamperscope.errors``) stays light.
"""

from typing import Any

from tamperscope._version import __version__

__all__ = ["AnalysisSummary", "__version__", "analyze"]


def __getattr__(name: str) -> Any:
    if name in ("AnalysisSummary", "analyze"):
        from tamperscope.services import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'tamperscope' has no attribute {name!r}")
