"""Generated videos with known shot boundaries (ffmpeg ``lavfi``), for tests and benchmarks.

Segments from visually distinct ``lavfi`` sources are concatenated at known frames; optionally two of them
are joined by a dissolve (``xfade``) whose frame span is returned separately, because a gradual transition
is not a hard cut.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SOURCES = (
    "testsrc2=size={size}:rate={rate}",
    "mandelbrot=size={size}:rate={rate}",
    "smptehdbars=size={size}:rate={rate}",
    "life=size={size}:rate={rate}:mold=10:ratio=0.3:death_color=#202060:life_color=#ffd040",
    "cellauto=size={size}:rate={rate}:rule=110",
    "testsrc=size={size}:rate={rate}",
    "rgbtestsrc=size={size}:rate={rate}",
    "gradients=size={size}:rate={rate}:speed=0.05",
)


@dataclass(frozen=True)
class KnownCuts:
    """Ground truth of a generated video.

    Attributes
    ----------
    path : Path
        The MP4 file.
    cuts : list of int
        First frame of each new shot after a hard cut.
    dissolves : list of tuple of int
        ``(first, last)`` frames of each dissolve.
    frames : int
        Total frames.
    """

    path: Path
    cuts: list[int]
    dissolves: list[tuple[int, int]]
    frames: int


def video_with_known_cuts(path: Path, lengths: list[int], *, rate: int = 30, size: str = "640x360",
                          dissolve_after: int | None = None, dissolve_frames: int = 15, gop: int = 250,
                          preset: str = "veryfast") -> KnownCuts:
    """Write an H.264 MP4 of segments with ``lengths`` frames, hard cuts between them.

    Parameters
    ----------
    path : Path
        Output file.
    lengths : list of int
        Frames per segment; sources cycle through :data:`SOURCES`.
    rate : int
        Frame rate.
    size : str
        ``WxH``.
    dissolve_after : int, optional
        Join segment ``dissolve_after`` and the next with a dissolve instead of a cut.
    dissolve_frames : int
        Length of the dissolve.
    gop : int
        Key-frame interval.
    preset : str
        x264 preset.

    Returns
    -------
    KnownCuts
    """
    if any(n < 1 for n in lengths):
        raise ValueError("lengths must be positive")
    inputs: list[str] = []
    parts: list[str] = []
    for n, frames in enumerate(lengths):
        source = SOURCES[n % len(SOURCES)].format(size=size, rate=rate)
        extra = dissolve_frames if dissolve_after is not None and n == dissolve_after + 1 else 0
        inputs += ["-f", "lavfi", "-i", source]
        parts.append(f"[{n}:v]trim=end_frame={frames + extra},setpts=PTS-STARTPTS,format=yuv420p,setsar=1,"
                     f"settb=1/{rate}[v{n}]")
    chain: list[str] = []
    label = "v0"
    position = lengths[0]
    cuts: list[int] = []
    dissolves: list[tuple[int, int]] = []
    for n in range(1, len(lengths)):
        out = f"j{n}"
        if dissolve_after is not None and n == dissolve_after + 1:
            offset = (position - dissolve_frames) / rate
            chain.append(f"[{label}][v{n}]xfade=transition=fade:duration={dissolve_frames / rate}:offset={offset},"
                         f"settb=1/{rate}[{out}]")
            dissolves.append((position - dissolve_frames, position - 1))
        else:
            chain.append(f"[{label}][v{n}]concat=n=2:v=1,settb=1/{rate}[{out}]")
            cuts.append(position)
        position += lengths[n]
        label = out
    graph = ";".join(parts + chain) if chain else parts[0]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", f"[{label}]",
                    "-c:v", "libx264", "-preset", preset, "-g", str(gop), "-pix_fmt", "yuv420p", "-r", str(rate),
                    str(path)], check=True)
    return KnownCuts(path=path, cuts=cuts, dissolves=dissolves, frames=position)


def face_video(path: Path, *, seconds: float = 4.0, size: str = "640x360", rate: int = 30,
               preset: str = "veryfast") -> Path:
    """An H.264 MP4 of one face: scikit-image's ``astronaut`` (top, 16:9 crop) slowly zoomed and panned.

    Parameters
    ----------
    path : Path
        Output file.
    seconds : float
        Duration.
    size : str
        ``WxH`` output size (16:9 keeps the face undistorted).
    rate : int
        Frame rate.
    preset : str
        x264 preset.

    Returns
    -------
    Path
        ``path``.
    """
    from PIL import Image
    from skimage import data

    still = path.with_suffix(".still.png")
    Image.fromarray(data.astronaut()[:288]).save(still)
    frames = round(seconds * rate)
    zoom = "zoompan=z='1.15+0.15*sin(on/45)':x='(iw-iw/zoom)*(0.3+0.15*sin(on/35))':y='(ih-ih/zoom)*0.2':d=1"
    try:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-i", str(still), "-vf",
                        f"scale=1024:576,{zoom}:s={size}:fps={rate}", "-frames:v", str(frames), "-c:v", "libx264",
                        "-preset", preset, "-pix_fmt", "yuv420p", str(path)], check=True)
    finally:
        still.unlink(missing_ok=True)
    return path
