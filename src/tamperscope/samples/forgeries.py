"""A reproducible synthetic forgery benchmark with exact masks.

From pristine photographs (scikit-image's sample images, plus any camera JPEGs passed in) the generator cuts
square crops and derives, with one seeded RNG, one image of each kind:

``pristine`` (label 0, single JPEG), ``splice`` (an elliptical/polygonal region from another source),
``copymove`` (the most textured of 30 random regions of the crop, pasted elsewhere rotated and scaled),
``inpaint`` (object removal by OpenCV's Telea inpainting over a random blob), ``resample`` (a region up-scaled
in place) and ``double_jpeg`` (the whole crop compressed at Q1 then at Q2 > Q1; image-level only, no mask).
Every manipulated image is saved as a JPEG at the same final quality range as the pristine ones, so the
compression alone does not give it away.
Splits are source-disjoint: each source image belongs to exactly one of ``train``, ``cal`` and ``test``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

KINDS: tuple[str, ...] = ("pristine", "splice", "copymove", "inpaint", "resample", "double_jpeg")
SKIMAGE_SOURCES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                                    "hubble_deep_field", "retina", "camera", "grass", "gravel", "brick", "moon")
MANIFEST_FIELDS: tuple[str, ...] = ("path", "label", "mask", "kind", "split", "source", "params")


@dataclass(frozen=True)
class Sample:
    """One generated image: pixels, ground truth and how it was made."""

    kind: str
    image: np.ndarray
    mask: np.ndarray | None
    quality: int
    params: dict[str, Any]


def skimage_sources() -> dict[str, np.ndarray]:
    """The scikit-image sample photographs as RGB ``uint8`` arrays (shipped with the package, no download)."""
    from skimage import data

    images = {}
    for name in SKIMAGE_SOURCES:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        images[name] = np.ascontiguousarray(img[:, :, :3])
    return images


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    """Encode RGB ``uint8`` as a baseline JPEG with libjpeg's standard tables (Pillow), 4:2:0."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Decode image bytes to RGB ``uint8``."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def random_mask(rng: np.random.Generator, size: int, *, min_frac: float = 0.03, max_frac: float = 0.12) -> np.ndarray:
    """A random ellipse or polygon covering roughly ``min_frac``..``max_frac`` of a ``size`` x ``size`` image."""
    mask = np.zeros((size, size), dtype=np.uint8)
    area = rng.uniform(min_frac, max_frac) * size * size
    r = np.sqrt(area / np.pi)
    cy, cx = rng.uniform(r + 4, size - r - 4, size=2)
    if rng.random() < 0.5:
        axes = (int(r * rng.uniform(0.7, 1.3)), int(r * rng.uniform(0.7, 1.3)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        n = int(rng.integers(5, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = r * rng.uniform(0.7, 1.3, n)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def _crop(rng: np.random.Generator, image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    if min(h, w) < size:
        scale = size / min(h, w)
        image = cv2.resize(image, (int(np.ceil(w * scale)), int(np.ceil(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(image[y:y + size, x:x + size])


def _shift_mask(mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    size = mask.shape[::-1]
    return cv2.warpAffine(mask.astype(np.uint8), matrix, size, flags=cv2.INTER_NEAREST).astype(bool)


def make_samples(rng: np.random.Generator, crop: np.ndarray, donor: np.ndarray) -> list[Sample]:
    """All six kinds derived from one pristine ``crop`` (``donor``: a crop of another source, for splices)."""
    size = crop.shape[0]
    q2 = int(rng.integers(75, 96))
    samples = [Sample("pristine", crop, None, q2, {})]

    mask = random_mask(rng, size)
    spliced = crop.copy()
    spliced[mask] = donor[mask]
    samples.append(Sample("splice", spliced, mask, q2, {}))

    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    best: tuple[float, np.ndarray, np.ndarray, float, float] | None = None
    for _ in range(30):
        src_mask = random_mask(rng, size, min_frac=0.03, max_frac=0.08)
        ys, xs = np.nonzero(src_mask)
        centre = (float(xs.mean()), float(ys.mean()))
        angle, scale = float(rng.uniform(-30, 30)), float(rng.uniform(0.85, 1.2))
        candidate = np.asarray(cv2.getRotationMatrix2D(centre, angle, scale), dtype=np.float64)
        candidate[:, 2] += rng.uniform(-size / 2, size / 2, size=2)
        moved_mask = _shift_mask(src_mask, candidate)
        if moved_mask.sum() < 0.8 * src_mask.sum() * scale * scale or (moved_mask & src_mask).any():
            continue
        # forgers clone objects, not blank sky: keep the most textured of the valid candidates
        texture = float(gray[src_mask].std())
        if best is None or texture > best[0]:
            best = (texture, candidate, moved_mask, angle, scale)
    if best is None:
        raise ValueError("no valid copy-move placement found")
    _, matrix, dst_mask, angle, scale = best
    warped = cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR)
    moved = crop.copy()
    moved[dst_mask] = warped[dst_mask]
    samples.append(Sample("copymove", moved, dst_mask, q2,
                          {"angle": round(angle, 2), "scale": round(scale, 3)}))

    hole = random_mask(rng, size, min_frac=0.01, max_frac=0.04)
    inpainted = cv2.inpaint(crop, hole.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    samples.append(Sample("inpaint", inpainted, hole, q2, {}))

    region = random_mask(rng, size, min_frac=0.1, max_frac=0.25)
    factor = float(rng.uniform(1.15, 1.5))
    ys, xs = np.nonzero(region)
    centre = (float(xs.mean()), float(ys.mean()))
    zoomed = cv2.warpAffine(crop, cv2.getRotationMatrix2D(centre, 0.0, factor), (size, size), flags=cv2.INTER_LINEAR)
    resampled = crop.copy()
    resampled[region] = zoomed[region]
    samples.append(Sample("resample", resampled, region, q2, {"factor": round(factor, 3)}))

    q1 = int(rng.integers(50, q2 - 4)) if q2 > 55 else 50
    samples.append(Sample("double_jpeg", decode(jpeg_bytes(crop, q1)), None, q2, {"q1": q1}))
    return samples


SPLIT_CYCLE: tuple[str, ...] = ("train", "cal", "train", "test")


def split_of(index: int) -> str:
    """Source-disjoint split of the ``index``-th source (sorted by name): train 1/2, cal 1/4, test 1/4."""
    return SPLIT_CYCLE[index % len(SPLIT_CYCLE)]


def generate(out_dir: Path, *, seed: int = 0, size: int = 384, crops_per_source: int = 3,
             extra_sources: dict[str, np.ndarray] | None = None, source_names: list[str] | None = None) -> Path:
    """Write the benchmark (JPEGs, PNG masks) and ``manifest.csv`` under ``out_dir``; return the manifest path.

    Parameters
    ----------
    out_dir : Path
        Output directory (created).
    seed : int
        Seed of the one random generator everything draws from.
    size : int
        Side of the square crops.
    crops_per_source : int
        Independent crops taken from each source photograph.
    extra_sources : dict, optional
        More pristine RGB photographs by name (e.g. camera JPEGs), used in addition to scikit-image's.
    source_names : list of str, optional
        Restrict the scikit-image sources to these names (tests use a few for speed).
    """
    rng = np.random.default_rng(seed)
    sources = skimage_sources()
    if source_names is not None:
        sources = {k: v for k, v in sources.items() if k in source_names}
    sources.update(extra_sources or {})
    names = sorted(sources)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(names):
        donor_source = sources[names[(i + 1) % len(names)]]
        for c in range(crops_per_source):
            crop = _crop(rng, sources[name], size)
            donor = _crop(rng, donor_source, size)
            for sample in make_samples(rng, crop, donor):
                stem = f"{name}_{c}_{sample.kind}"
                (out_dir / f"{stem}.jpg").write_bytes(jpeg_bytes(sample.image, sample.quality))
                mask_name = ""
                if sample.mask is not None:
                    mask_name = f"{stem}_mask.png"
                    Image.fromarray(sample.mask.astype(np.uint8) * 255).save(out_dir / mask_name)
                rows.append({"path": f"{stem}.jpg", "label": int(sample.kind != "pristine"), "mask": mask_name,
                             "kind": sample.kind, "split": split_of(i), "source": name,
                             "params": json.dumps({"quality": sample.quality, **sample.params}, sort_keys=True)})
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest
