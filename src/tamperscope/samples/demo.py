"""Generated sample media with known ground truth, for the demo, tests and benchmarks.

Everything is made here from ffmpeg ``lavfi`` sources and scikit-image's bundled sample images, so no
third-party media is needed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def video_with_cut(path: Path, *, seconds_each: float = 2.0, size: str = "640x360", rate: int = 25) -> Path:
    """H.264/AAC MP4: a ``testsrc2`` shot, a hard cut at ``seconds_each``, then a ``mandelbrot`` shot."""
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds_each}",
        "-f", "lavfi", "-i", f"mandelbrot=size={size}:rate={rate}",
        "-f", "lavfi", "-i", f"sine=frequency=330:duration={2 * seconds_each}",
        "-filter_complex", f"[1:v]trim=duration={seconds_each},setpts=PTS-STARTPTS[b];[0:v][b]concat=n=2:v=1[v]",
        "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(rate * 2),
        "-c:a", "aac", "-shortest", str(path),
    )
    return path


def camera_like_jpeg(path: Path, *, quality: int = 92) -> Path:
    """A photo (scikit-image's ``astronaut``) saved as a camera would: JPEG with Make/Model/dates set."""
    from skimage import data

    image = Image.fromarray(np.asarray(data.astronaut()))
    image.save(path, "JPEG", quality=quality)
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-Make=Canon", "-Model=Canon EOS 5D Mark IV",
         "-DateTimeOriginal=2024:05:01 10:00:00", "-CreateDate=2024:05:01 10:00:00",
         "-ModifyDate=2024:05:01 10:00:00", "-ExposureTime=1/125", "-FNumber=5.6", "-ISO=200", str(path)],
        check=True,
    )
    return path


def edited_copy(source: Path, path: Path, *, quality: int = 85) -> tuple[Path, np.ndarray]:
    """Copy-move a block inside ``source``, re-save at a new quality with an editor's tags.

    Returns the edited file and its boolean ground-truth mask (True = tampered pixels).
    """
    pixels = np.asarray(Image.open(source).convert("RGB")).copy()
    height, width = pixels.shape[:2]
    size = min(height, width) // 6
    src_y, src_x = height // 8, width // 8
    dst_y, dst_x = height - size - height // 8, width - size - width // 8
    pixels[dst_y : dst_y + size, dst_x : dst_x + size] = pixels[src_y : src_y + size, src_x : src_x + size]
    mask = np.zeros((height, width), dtype=bool)
    mask[dst_y : dst_y + size, dst_x : dst_x + size] = True
    Image.fromarray(pixels).save(path, "JPEG", quality=quality)
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-TagsFromFile", str(source), "-all:all",
         "-Software=Adobe Photoshop 25.0 (Windows)", "-ModifyDate=2024:06:12 18:30:00", str(path)],
        check=True,
    )
    return path, mask
