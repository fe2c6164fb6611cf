"""The case page's API: the asset list's search/filter/sort/paging, the case view's parts, comparison, /docs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from tamperscope.api.case import copymove_lines, provenance_view, reading
from tamperscope.api.routers.case import metadata_diff, phash_comparison
from tamperscope.fusion.model import load_model
from tamperscope.probe.rules import RULES
from tamperscope.probe.rules.explain import SENTENCES, flag_sentence, flag_values
from tamperscope.samples import demo as samples
from tamperscope.settings import Settings
from tamperscope.store.models import Asset, Detection
from tamperscope.workspace import Workspace


def _upload(client: TestClient, path: Path, name: str) -> str:
    response = client.post("/api/assets", params={"name": name}, content=path.read_bytes())
    assert response.status_code == 201, response.text
    return str(response.json()["asset_id"])


def _set_verdict(settings: Settings, asset_id: str, band: str, p: float, uploaded: datetime) -> None:
    ws = Workspace.open(settings)
    try:
        with ws.db.session() as session:
            session.add(Detection(asset_id=asset_id, stage="fusion", window_id="asset", module_name="fusion",
                                  module_version="test", status="scored", score=p, band=band,
                                  created_at=datetime.now(UTC)))
            session.execute(update(Asset).where(Asset.asset_id == asset_id).values(upload_time=uploaded))
    finally:
        ws.close()


def test_asset_list_searches_filters_sorts_and_pages(client: TestClient, api_settings: Settings,
                                                     tmp_path: Path) -> None:
    photo = samples.camera_like_jpeg(tmp_path / "camera.jpg")
    ids = {"camera_100%.jpg": _upload(client, photo, "camera_100%.jpg")}
    for i, q in enumerate((70, 80)):
        ids[f"edit_{i}.jpg"] = _upload(client, samples.edited_copy(photo, tmp_path / f"e{i}.jpg", quality=q)[0],
                                       f"edit_{i}.jpg")
    day = datetime(2026, 1, 10, tzinfo=UTC)
    _set_verdict(api_settings, ids["edit_0.jpg"], "unsure", 0.61, day)
    _set_verdict(api_settings, ids["edit_1.jpg"], "likely_manipulated", 0.97, day + timedelta(days=2))

    def names(**params: object) -> list[str]:
        response = client.get("/api/assets", params=params)
        assert response.status_code == 200, response.text
        return [a["original_name"] for a in response.json()]

    assert names(q="EDIT", sort="original_name", order="asc") == ["edit_0.jpg", "edit_1.jpg"]
    assert names(q="100%") == ["camera_100%.jpg"]  # a literal %, not a wildcard
    assert names(q="0_") == []  # a literal _, not a wildcard (which would match "00" and "0.")
    sha = client.get(f"/api/assets/{ids['edit_1.jpg']}").json()["sha256"]
    assert names(q=sha[:12]) == ["edit_1.jpg"]
    assert names(band="likely_manipulated") == ["edit_1.jpg"]
    assert names(band="none") == ["camera_100%.jpg"]
    assert names(media_type="video") == []
    assert names(uploaded_from="2026-01-11", uploaded_to="2026-01-31") == ["edit_1.jpg"]
    assert names(sort="probability", order="desc") == ["edit_1.jpg", "edit_0.jpg", "camera_100%.jpg"]
    page = client.get("/api/assets", params={"sort": "original_name", "order": "asc", "limit": 2, "offset": 1})
    assert page.headers["X-Total-Count"] == "3"
    assert [a["original_name"] for a in page.json()] == ["edit_0.jpg", "edit_1.jpg"]
    row = client.get("/api/assets", params={"band": "unsure"}).json()[0]
    assert row["band"] == "unsure" and row["probability"] == 0.61 and row["upload_time"].startswith("2026-01-10")
    assert client.get("/api/assets", params={"sort": "password"}).status_code == 400
    assert client.get("/api/assets", params={"order": "sideways"}).status_code == 422


def test_reading_names_band_precision_and_the_similar_calibration_cases() -> None:
    model = load_model("video-v3")
    bins = model.metrics["cal"]["reliability"]
    b = next(b for b in bins if b["n"] >= 10)
    p = (b["lo"] + b["hi"]) / 2
    out = reading(model, "unsure", p)
    assert out["similar"] == {"lo": b["lo"], "hi": b["hi"], "n": b["n"], "share_manipulated": b["accuracy"]}
    assert out["unsure_share"] == model.metrics["cv"]["unsure_share"]
    assert out["high_closed"] is (model.policy.high > 1.0)
    assert f"Of the {b['n']} calibration cases" in out["sentences"][1]
    assert f"{100 * b['accuracy']:.0f} %" in out["sentences"][1]
    confident = reading(model, "likely_real", 0.05)
    assert confident["band_precision"] == {"precision": model.metrics["cv"]["likely_real"]["precision"],
                                           "n": model.metrics["cv"]["likely_real"]["n"]}


def test_reading_a_confident_band_also_gives_the_shipped_thresholds_optimistic_precision() -> None:
    shipped = load_model("video-v3")
    cv = {**shipped.metrics["cv"], "n": 256, "likely_manipulated": {"n": 0, "precision": None}}
    model = replace(shipped, metrics={**shipped.metrics, "cv": cv, "cv_shipped_policy": {
        "likely_manipulated": {"n": 10, "precision": 0.9}, "likely_real": {"n": 0, "precision": None}}})
    out = reading(model, "likely_manipulated", 0.7)
    assert out["band_precision"] == {"precision": None, "n": 0}  # no fold's own thresholds put a case there
    assert out["shipped_band_precision"] == {"precision": 0.9, "n": 10}
    assert ("chosen on 256 out-of-fold evaluation cases; of the 10 it puts in this band, 90 % were manipulated "
            "(optimistic") in out["sentences"][1]
    real = reading(model, "likely_real", 0.05)  # the shipped thresholds put no case there: no second sentence
    assert real["shipped_band_precision"] == {"precision": None, "n": 0} and "optimistic" not in " ".join(
        real["sentences"])


def test_every_metadata_rule_has_a_sentence_that_quotes_its_values() -> None:
    assert set(SENTENCES) == {f"meta.{name}" for name in RULES}
    evidence = {"tool": "exiftool", "tags": {"ExifIFD:DateTimeOriginal": "2024:01:01 10:00:00",
                                             "IFD0:ModifyDate": "2024:01:03 10:00:00"}, "gap_s": 172800.0}
    sentence = flag_sentence("meta.datetime_mismatch", evidence)
    assert "2.0 days after the capture date" in sentence
    assert flag_values(evidence) == evidence["tags"]
    assert "Adobe Photoshop 7.0" in flag_sentence("meta.editing_software", {"software": ["Adobe Photoshop 7.0"],
                                                                            "category": "editor"})
    assert flag_sentence("meta.unknown_rule", {}) == "The check meta.unknown_rule raised a flag."


def test_copymove_lines_keep_only_verified_transforms() -> None:
    evidence = {"transforms": [{"verified": True, "pairs": [[1, 2, 3, 4]]},
                               {"verified": False, "pairs": [[9, 9, 9, 9]]}],
                "shifts": [{"pairs": [[5, 6, 7, 8]]}]}
    assert copymove_lines(evidence) == [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]


def test_copymove_lines_of_a_turned_image_are_drawn_upright() -> None:
    """Matches are found in the stored grid; on a phone JPEG turned 90 degrees clockwise (orientation 6) the
    page shows the upright map, so the lines turn with it; with no stored size they are left out."""
    evidence = {"exif_orientation": 6, "shifts": [{"pairs": [[10, 20, 30, 40]]}]}
    assert copymove_lines(evidence, (100, 50)) == [[29.0, 10.0, 9.0, 30.0]]
    assert copymove_lines(evidence) == []


def test_provenance_summary_reads_signer_generator_actions_and_ingredients() -> None:
    store = {"active_manifest": "m1", "manifests": {"m1": {
        "title": "CA.jpg", "claim_generator": "make_test_images/0.33.1",
        "signature_info": {"issuer": "C2PA Test Signing Cert", "time": "2024-08-06T21:53:37+00:00"},
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
            {"action": "c2pa.opened"}, {"action": "c2pa.color_adjustments", "softwareAgent": {"name": "Photoshop"}}]}}],
        "ingredients": [{"title": "A.jpg", "format": "image/jpeg", "relationship": "parentOf"}]}}}
    asset = Asset(provenance_status="valid", provenance_json={"store": store, "validation_state": "Valid"})
    view = provenance_view(asset)
    assert view["status"] == "valid" and view["validation_state"] == "Valid"
    m = view["manifest"]
    assert m["signer"] == "C2PA Test Signing Cert" and m["claim_generator"] == "make_test_images/0.33.1"
    assert [a["action"] for a in m["actions"]] == ["c2pa.opened", "c2pa.color_adjustments"]
    assert m["actions"][1]["software"] == "Photoshop"
    assert m["ingredients"] == [{"title": "A.jpg", "format": "image/jpeg", "relationship": "parentOf"}]
    assert provenance_view(Asset(provenance_status="absent"))["manifest"] is None


def test_metadata_diff_and_phash_distance() -> None:
    diff = metadata_diff({"IFD0:Make": "Canon", "IFD0:Model": "5D", "File:FileName": "a.jpg"},
                         {"IFD0:Make": "Canon", "IFD0:Software": "GIMP", "File:FileName": "b.jpg"})
    assert diff == [{"tag": "IFD0:Model", "a": "5D", "b": None}, {"tag": "IFD0:Software", "a": None, "b": "GIMP"}]
    same = phash_comparison(["ffff0000ffff0000"], ["ffff0000ffff0001"])
    assert same["distance"] == 1 and "imagehash.phash" in same["method"]
    video = phash_comparison(["0" * 16, "f" * 16], ["0" * 16])
    assert video["distance"] == 32 and video["min_distance"] == 0 and video["near_duplicates"] == 1
    assert phash_comparison([], ["0" * 16])["distance"] is None


def test_docs_are_served_offline_from_the_installed_package(client: TestClient) -> None:
    html = client.get("/docs")
    assert html.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in html.text and "cdn" not in html.text.lower()
    js = client.get("/docs-static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    redoc = client.get("/redoc")
    assert "/docs-static/redoc.standalone.js" in redoc.text and "googleapis" not in redoc.text
    assert client.get("/docs-static/redoc.standalone.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/api/assets/{ref}/case"]


def test_face_crops_are_served_only_when_a_frame_of_the_asset_names_them(any_ws: Workspace) -> None:
    from tamperscope.store import queries
    from tamperscope.store.models import Frame
    from tests.store.test_qa import add_asset

    crop = "store://derived/a1/video/faces/000000500_0.png"
    with any_ws.db.session() as session:
        add_asset(session, "a1")
        add_asset(session, "b2")
        session.add(Frame(frame_id="a1:f1", asset_id="a1", t_ms=500, keyframe=False,
                          faces_json=[{"track_id": 0, "box": [0, 0, 1, 1], "crop_uri": crop}]))
        session.add(Frame(frame_id="a1:f0", asset_id="a1", t_ms=0, keyframe=False, faces_json=[]))
    with any_ws.db.session() as session:
        assert queries.references_artifact(session, "a1", crop)
        assert queries.references_artifact(session, "a1", crop, "a1:f1")
        assert not queries.references_artifact(session, "a1", crop, "a1:f0")  # another frame of the asset
        assert not queries.references_artifact(session, "b2", crop)  # another asset
        assert not queries.references_artifact(session, "a1", crop.replace("0.png", "%.png"))
        assert queries.asset_id_of(session, "a1") == "a1"
        assert queries.asset_id_of(session, "a1".ljust(12, "0")) == "a1"


def test_case_and_compare_need_a_token(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    for path in ("/api/assets/x/case", "/api/compare?a=x&b=y", "/api/assets/x/artifact?uri=u&frame=f"):
        assert anonymous.get(path).status_code == 401, path
    assert client.get("/api/assets/0123456789abcdef/case").status_code == 404


def test_a_missing_branch_says_why() -> None:
    from tamperscope.api.case import missing_reason
    from tamperscope.store.models import StageRun

    no_face = Detection(module_name="deep.frame", window_id="asset", status="not_applicable",
                        evidence_json={"reason": "no face crops"})
    clip = Detection(module_name="deep.clip", window_id="w", status="insufficient_data",
                     evidence_json={"reason": "too few frames"})
    done = {"deep": StageRun(stage="deep", status="done")}
    assert missing_reason("deep_frame", [no_face, clip], done) == "no face crops"
    assert missing_reason("deep_clip", [no_face, clip], done) == "too few frames"
    assert missing_reason("avsync", [], done) == "the avsync stage did not run for this asset"
    failed = {"deep": StageRun(stage="deep", status="failed", error="model file missing")}
    assert missing_reason("deep_frame", [], failed) == "the deep stage failed: model file missing"
    assert missing_reason("temporal", [], {"temporal": StageRun(stage="temporal", status="done")}) == \
        "no scored temporal rows for this asset"
