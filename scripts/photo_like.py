"""Render Fashion-MNIST images as product photos: dark garment on a light, tinted, uneven background.

Used by the preprocessing tests (does a photo come back close to the original?) and as a command
that writes an evaluation set for ``python -m fmnist_core predict ... --json``::

    python -m scripts.photo_like OUT_DIR [--n 200] [--seed 0]   # writes OUT_DIR/*.jpg + labels.csv

Each photo: negated garment (the dataset is light-on-black), upscaled 200-400 px with a smooth
filter, a garment colour tint, a light background that is not pure white and is unevenly lit,
margins that put the garment off-centre, an optional soft drop shadow, sensor noise and a JPEG
round trip.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def render_photo(
    img28: np.ndarray, rng: np.random.Generator, shadow: bool | None = None, colour: bool = True
) -> Image.Image:
    """One 28x28 uint8 dataset image -> an RGB product photo (JPEG-decoded).

    ``shadow``: add a drop shadow (None: at random, half of the time); ``colour``: tint the garment.
    """
    size = int(rng.integers(200, 401))
    garment = Image.fromarray(np.asarray(img28, np.uint8), "L").resize((size, size), Image.Resampling.BICUBIC)
    g = np.asarray(garment, np.float32) / 255.0  # 1 where the garment is bright in the dataset
    # Margins 5-35% of the garment size per side: the garment ends up off-centre.
    left, right, top, bottom = (int(size * rng.uniform(0.05, 0.35)) for _ in range(4))
    h, w = size + top + bottom, size + left + right
    cover = np.zeros((h, w), np.float32)
    cover[top : top + size, left : left + size] = g
    # Background: light, slightly tinted, brighter on one side (uneven studio light).
    bg_colour = rng.uniform(225, 255) * rng.uniform(0.94, 1.0, size=3)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 - 0.05 * (np.cos(angle) * xx + np.sin(angle) * yy)
    bg = bg_colour[None, None, :] * light[..., None]
    if shadow if shadow is not None else rng.random() < 0.5:
        # A soft drop shadow: the silhouette, blurred and offset down-right, darkening the background.
        sil = Image.fromarray((np.clip(cover * 4, 0, 1) * 255).astype(np.uint8), "L")
        dx, dy = (int(size * rng.uniform(0.01, 0.04)) for _ in range(2))
        sil = sil.transform(sil.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy))
        sil = sil.filter(ImageFilter.GaussianBlur(size * 0.02))
        bg = bg * (1.0 - rng.uniform(0.05, 0.12) * np.asarray(sil, np.float32)[..., None] / 255.0)
    # Garment: dark where the dataset image is bright, in a colour (navy, brown, grey ...).
    hue = rng.uniform(0.6, 1.0, size=3) if colour else np.ones(3)
    rgb = bg * (1.0 - cover[..., None] * hue[None, None, :])
    rgb += rng.normal(0, 2.0, rgb.shape)  # sensor noise
    photo = Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8), "RGB")
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=int(rng.integers(60, 96)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def main(argv: list[str] | None = None) -> int:
    """Write N photo-like JPEGs of test images (stratified over classes) and labels.csv."""
    from fmnist_core.classes import class_names
    from fmnist_core.data import load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    ds = load_dataset("fashion")
    rng = np.random.default_rng(args.seed)
    names = class_names("fashion")
    per_class = max(1, args.n // 10)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = ["file,label,index,test_index"]
    for c in range(10):
        for i in rng.choice(np.flatnonzero(ds.y_test == c), per_class, replace=False):
            name = f"{names[c].replace('/', '-').replace(' ', '_')}_{i:05d}.jpg"
            render_photo(ds.x_test[i], rng).save(args.out_dir / name, quality=95)
            rows.append(f"{name},{names[c]},{c},{i}")
    (args.out_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    print(f"wrote {per_class * 10} photos and labels.csv to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
