from tamperscope.fusion.branches import BRANCHES, Row, metadata_checked_row
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


def test_meta_flags_tell_a_clean_checked_file_from_an_unchecked_one() -> None:
    assert BRANCHES["meta_flags"].extract([Row("forensics.ela", "asset", 0.2, "scored")]) is None
    clean = BRANCHES["meta_flags"].extract([metadata_checked_row("absent")])
    assert clean is not None and set(clean) == set(BRANCHES["meta_flags"].features)
    assert all(v == 0.0 for v in clean.values())
    assert BRANCHES["meta_flags"].extract([metadata_checked_row("valid")])["c2pa"] == -1.0


def test_meta_flags_group_the_raised_rules() -> None:
    rows = [metadata_checked_row("invalid"), Row("meta.editing_software", "asset", 0.6, "flag"),
            Row("meta.datetime_mismatch", "asset", 0.4, "flag"), Row("meta.invalid_c2pa", "asset", 0.8, "flag")]
    values = BRANCHES["meta_flags"].extract(rows)
    assert values == {"editing": 1.0, "date_gap": 1.0, "reencode": 0.0, "no_exif": 0.0, "structure": 0.0,
                      "c2pa": 1.0}
    # a flag row alone (context row absent) still counts as metadata evidence
    assert BRANCHES["meta_flags"].extract(rows[1:2]) == {**dict.fromkeys(values, 0.0), "editing": 1.0}
