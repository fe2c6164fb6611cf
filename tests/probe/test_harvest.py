"""Metadata harvest: verbatim tool JSON, key validation, extension-less stored images."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from tamperscope.probe.harvest import harvest, missing_keys
from tamperscope.settings import Settings


def test_missing_keys_names_what_the_pipeline_needs() -> None:
    assert missing_keys("ffprobe", {"format": {}, "streams": []}) == []
    assert missing_keys("ffprobe", {"error": {"string": "Invalid data"}}) == ["format", "streams"]
    assert missing_keys("exiftool", None) == ["File:FileType"]
    assert missing_keys("mediainfo", {"media": {"track": []}}) == []


def test_harvest_of_an_extensionless_jpeg_uses_the_named_demuxer(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 40)).save(out, "JPEG")
    path = tmp_path / "object"
    path.write_bytes(out.getvalue())
    found = harvest(path, Settings(home=tmp_path).limits, "jpeg_pipe")
    assert found.errors == {}
    assert found.ffprobe is not None and found.ffprobe["streams"][0]["width"] == 32
    assert found.exiftool is not None and found.exiftool["File:FileType"] == "JPEG"
    assert found.versions["exiftool"]
