from tamperscope.fusion.branches import BRANCHES, Row
from tamperscope.fusion.model import load_model


def test_forensics_branch_takes_max_over_windows_and_omits_unscored_modules() -> None:
    rows = [Row("forensics.ela", "a:f000000000", 0.2, "scored"),
            Row("forensics.ela", "a:f000000500", 0.7, "scored"),
            Row("forensics.jpeg_dq", "a:f000000000", None, "not_applicable"),
            Row("meta.software", "asset", 1.0, "flag")]
    assert BRANCHES["forensics"].extract(rows) == {"ela": 0.7}
    assert BRANCHES["metadata"].extract(rows) == {"flags": 1.0, "max_score": 1.0}
    assert BRANCHES["forensics"].extract(rows[3:]) is None


def test_missing_module_is_imputed_not_zeroed() -> None:
    model = load_model("image-v1")
    partial = model.design({"forensics": {"ela": 0.7}})
    assert partial["forensics.jpeg_dq"] == 0.0  # training mean after standardisation
    zero = model.design({"forensics": {"ela": 0.7, "jpeg_dq": 0.0}})
    assert zero["forensics.jpeg_dq"] != 0.0
    assert model.design({})["forensics.missing"] == 1.0
