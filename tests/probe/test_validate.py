"""Validation without trust: generated truncations, bit flips and bombs, plus the third-party corpora."""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamperscope.errors import InputRejectedError, RejectReason
from tamperscope.probe.validate import validate_file
from tamperscope.settings import LimitSettings

LIMITS = LimitSettings(tool_timeout_s=20)


def _jpeg_bytes() -> bytes:
    rng = np.random.default_rng(7)
    pixels = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def _png_bytes() -> bytes:
    pixels = np.tile(np.arange(128, dtype=np.uint8), (64, 1))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _reason(path: Path) -> RejectReason | None:
    try:
        validate_file(path, LIMITS)
    except InputRejectedError as exc:
        return exc.reason
    return None


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_intact_files_pass(tmp_path: Path, small_video: Path) -> None:
    assert _reason(_write(tmp_path, "a.jpg", _jpeg_bytes())) is None
    assert _reason(_write(tmp_path, "a.png", _png_bytes())) is None
    assert _reason(small_video) is None


def test_mpeg1_program_stream_is_accepted(tmp_path: Path) -> None:
    """MPEG-1 video in an MPEG program stream (e.g. the GRID corpus) decodes with ffmpeg/PyAV, so it is accepted."""
    path = tmp_path / "a.mpg"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1",
                    "-c:v", "mpeg1video", "-f", "mpeg", str(path)], check=True)
    validation = validate_file(path, LIMITS)
    assert validation.mime == "video/mpeg"


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9, 0.99])
def test_truncated_jpeg_png_and_mp4_are_rejected_as_truncated(tmp_path: Path, small_video: Path,
                                                               fraction: float) -> None:
    for name, data in (("t.jpg", _jpeg_bytes()), ("t.png", _png_bytes()), ("t.mp4", small_video.read_bytes())):
        cut = _write(tmp_path, name, data[: int(len(data) * fraction)])
        assert _reason(cut) is RejectReason.TRUNCATED, name


def test_png_with_a_flipped_bit_fails_its_crc(tmp_path: Path) -> None:
    data = bytearray(_png_bytes())
    data[len(data) // 2] ^= 0x10
    assert _reason(_write(tmp_path, "flip.png", bytes(data))) is RejectReason.CORRUPT_STREAM


def test_random_bit_flips_never_crash_or_hang(tmp_path: Path, small_video: Path) -> None:
    rng = np.random.default_rng(11)
    originals = {"f.jpg": _jpeg_bytes(), "f.png": _png_bytes(), "f.mp4": small_video.read_bytes()}
    outcomes: dict[str, set[str]] = {}
    for name, original in originals.items():
        for _ in range(12):
            data = bytearray(original)
            for position in rng.integers(0, len(data), size=3):
                data[position] ^= 1 << int(rng.integers(0, 8))
            reason = _reason(_write(tmp_path, name, bytes(data)))
            outcomes.setdefault(name, set()).add(reason.value if reason else "accepted")
    assert all(outcomes.values())
    assert "corrupt_stream" in outcomes["f.png"]


def test_nested_box_bomb_is_corrupt(tmp_path: Path) -> None:
    box = b""
    for _ in range(200):
        box = struct.pack(">I4s", 8 + len(box), b"moov") + box
    data = struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0) + box
    assert _reason(_write(tmp_path, "bomb.mp4", data)) is RejectReason.CORRUPT_STREAM


def test_riff_list_bomb_is_corrupt(tmp_path: Path) -> None:
    body = b""
    for _ in range(100):
        body = b"LIST" + struct.pack("<I", 4 + len(body)) + b"INFO" + body
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    payload = b"WAVE" + fmt + b"data" + struct.pack("<I", 0) + body
    data = b"RIFF" + struct.pack("<I", len(payload)) + payload
    assert _reason(_write(tmp_path, "bomb.wav", data)) is RejectReason.CORRUPT_STREAM


def test_png_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = b"\x89PNG\r\n\x1a\n" + chunk
    assert _reason(_write(tmp_path, "bomb.png", data)) is RejectReason.TOO_MANY_PIXELS


def test_empty_and_unknown_files(tmp_path: Path) -> None:
    assert _reason(_write(tmp_path, "empty.jpg", b"")) is RejectReason.EMPTY
    assert _reason(_write(tmp_path, "notes.mp4", b"hello world\n" * 50)) is RejectReason.UNSUPPORTED_FORMAT


def test_extension_is_not_trusted(tmp_path: Path) -> None:
    renamed = _write(tmp_path, "photo.mp4", _jpeg_bytes())
    validation = validate_file(renamed, LIMITS)
    assert (validation.media_type, validation.container) == ("image", "jpeg")


def test_probe_timeout_is_a_typed_rejection(tmp_path: Path, small_video: Path) -> None:
    limits = LimitSettings(tool_timeout_s=0.001)
    with pytest.raises(InputRejectedError) as caught:
        validate_file(small_video, limits)
    assert caught.value.reason is RejectReason.PROBE_TIMEOUT


@pytest.mark.shared
@pytest.mark.slow
def test_every_malformed_file_is_handled_and_analysis_never_crashes(shared_dir: Path, ws) -> None:  # type: ignore[no-untyped-def]
    from tamperscope.custody.intake import ingest_path
    from tamperscope.pipeline.runner import analyze_asset

    files = sorted(p for p in (shared_dir / "malformed").iterdir() if p.is_file())
    assert len(files) >= 30
    results: dict[str, str] = {}
    for path in files:
        try:
            asset_id = ingest_path(ws, path).asset_id
        except InputRejectedError as exc:
            assert exc.asset_id and exc.reason in RejectReason
            results[path.name] = exc.reason.value
            continue
        run = analyze_asset(ws, asset_id, only=["metadata", "video"])
        results[path.name] = "accepted" + (f" (failed: {sorted(run.failed)})" if run.failed else "")
    rejected = [name for name, outcome in results.items() if not outcome.startswith("accepted")]
    assert len(rejected) >= 20, results
    assert results["pillow_truncated_jpeg.jpg"] == "truncated"
    assert results["c2pars_riff_bomb_1000.wav"] == "corrupt_stream"


@pytest.mark.shared
@pytest.mark.slow
def test_valid_third_party_files_are_accepted_unless_analysis_cannot_decode_them(shared_dir: Path,
                                                                                 tmp_path: Path) -> None:
    """Each file is validated under an extension-less name, as the object store keeps it. A refusal is only
    ever the decode proof, and the analysis decoder indeed fails on that file."""
    from tamperscope.media.image import read_image
    from tamperscope.media.video_reader import VideoReader

    skip = {".json", ".csv", ".txt", ".tsv", ".md"}
    refused = {}
    checked = 0
    for folder in ("exif", "c2pa", "forgery", "video"):
        for index, path in enumerate(sorted((shared_dir / folder).rglob("*"))):
            if path.is_file() and path.suffix not in skip:
                stored = tmp_path / f"{folder}{index}"
                stored.symlink_to(path)
                checked += 1
                reason = _reason(stored)
                if reason is not None:
                    refused[str(path.relative_to(shared_dir))] = reason.value
                    assert reason in (RejectReason.CORRUPT_STREAM, RejectReason.NO_DECODABLE_STREAM), path.name
                    with pytest.raises(Exception):  # noqa: B017 - any decoder failure
                        if path.suffix.lower() in (".mov", ".mp4", ".mkv", ".avi"):
                            with VideoReader(stored, long_side=64) as reader:
                                assert next(iter(reader), None) is not None
                        else:
                            read_image(stored, long_side=64)
    assert len(refused) <= 0.05 * checked, refused


@pytest.mark.shared
@pytest.mark.slow
def test_malformed_and_camera_files_are_rejected_typed_or_analysed(shared_dir: Path, ws) -> None:  # type: ignore[no-untyped-def]
    """Every file of malformed/ and exif/ (HEIC, TIFF, PSD, NEF-like raw, 8x8 camera samples, a 1x1 WebP)
    either is rejected at ingest with a typed reason and a message without the store path, or analyses with
    no failed stage (exit 0)."""
    from tamperscope.custody.intake import ingest_path
    from tamperscope.pipeline.runner import analyze_asset

    files = sorted(p for folder in ("malformed", "exif") for p in (shared_dir / folder).iterdir() if p.is_file())
    analysed = 0
    for path in files:
        try:
            asset_id = ingest_path(ws, path).asset_id
        except InputRejectedError as exc:
            assert exc.reason in RejectReason and exc.asset_id
            assert str(ws.settings.home) not in str(exc), str(exc)
            continue
        run = analyze_asset(ws, asset_id)
        assert run.failed == {}, (path.name, run.failed)
        analysed += 1
    assert analysed >= 30


def _heic(path: Path, size: tuple[int, int]) -> Path:
    import pillow_heif

    rng = np.random.default_rng(3)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    pillow_heif.from_bytes(mode="RGB", size=size, data=pixels.tobytes()).save(str(path), quality=90)
    return path


def test_heic_is_accepted_and_decoded(tmp_path: Path) -> None:
    validation = validate_file(_heic(tmp_path / "photo", (96, 64)), LIMITS)
    assert (validation.container, validation.width, validation.height) == ("heif", 96, 64)


def test_a_heic_using_a_feature_libheif_lacks_is_rejected_typed(tmp_path: Path) -> None:
    """Found by bench/fuzz.py (seed 7): a bit flip in the version of the ``meta`` box made pillow-heif raise
    ``SyntaxError`` (its "unsupported feature"), which intake let through as a traceback and exit 1."""
    path = _heic(tmp_path / "photo", (96, 64))
    data = bytearray(path.read_bytes())
    meta = data.find(b"meta")
    data[meta + 4] = 16  # the full box's version byte: libheif implements version 0 only
    path.write_bytes(bytes(data))
    with pytest.raises(InputRejectedError) as caught:
        validate_file(path, LIMITS)
    assert caught.value.reason is RejectReason.UNSUPPORTED_FORMAT
    assert "version 16" in str(caught.value)


def test_a_file_the_decoder_refuses_is_rejected_typed_without_its_path(tmp_path: Path) -> None:
    """A TIFF whose header and probe are fine but whose strip data does not inflate."""
    path = tmp_path / "store" / "raw" / "ab"
    path.parent.mkdir(parents=True)
    out = io.BytesIO()
    Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)).save(
        out, "TIFF", compression="tiff_adobe_deflate")
    data = bytearray(out.getvalue())
    start = data.find(b"\x78")  # the zlib header of the first strip
    data[start + 2 : start + 200] = bytes(198)
    path.write_bytes(bytes(data))
    with pytest.raises(InputRejectedError) as caught:
        validate_file(path, LIMITS)
    assert caught.value.reason is RejectReason.CORRUPT_STREAM
    assert "decod" in str(caught.value) or "read image" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_third_party_exceptions_become_typed_rejections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tamperscope.probe import validate

    path = _write(tmp_path, "ok.png", _png_bytes())

    def broken(target: Path, **kwargs: object) -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, f"bad tag in {target}")

    monkeypatch.setattr(validate, "read_image", broken)
    with pytest.raises(InputRejectedError) as caught:
        validate_file(path, LIMITS)
    assert caught.value.reason is RejectReason.CORRUPT_STREAM
    assert "UnicodeDecodeError" in str(caught.value) and str(tmp_path) not in str(caught.value)


def test_cli_ingest_of_a_truncated_file_exits_3(tmp_path: Path) -> None:
    cut = _write(tmp_path, "cut.jpg", _jpeg_bytes()[:500])
    proc = subprocess.run([str(Path(".venv/bin/tamperscope").resolve()), "--home", str(tmp_path / "h"), "ingest",
                           str(cut)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert "truncated" in proc.stderr
