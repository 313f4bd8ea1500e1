"""Draw the photo pipeline's steps for a few photos into one PNG (for docs/PHOTOS.md).

    python -m scripts.photo_steps_figure OUT.png PHOTO [PHOTO ...] [--model fashion_cnn_photo]

One row per photo: every step the Predict page shows, captioned, and the model's answer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from fmnist_core.predict import Predictor
from fmnist_core.preprocess import load_image, prepare_photo

TILE = 120


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--model", default="fashion_cnn_photo")
    args = ap.parse_args()
    predictor = Predictor.from_spec(args.model)
    rows = []
    for path in args.photos:
        prep = prepare_photo(load_image(path))
        pred = predictor.predict_prepared(prep)
        answer = f"none of the ten ({pred.label} {pred.probability:.0%})" if pred.rejected else pred.label
        answer += f" [{pred.probability:.0%}]" if not pred.rejected else ""
        tiles = []
        for caption, img in prep.steps:
            im = img.convert("RGB")
            scale = TILE / max(im.size)
            resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), resample)
            tile = Image.new("RGB", (TILE, TILE + 28), "white")
            tile.paste(im, ((TILE - im.width) // 2, (TILE - im.height) // 2))
            d = ImageDraw.Draw(tile)
            d.text((2, TILE + 2), caption[:22], fill="black")
            d.text((2, TILE + 14), caption[22:44], fill="black")
            tiles.append(tile)
        row = Image.new("RGB", (TILE * len(tiles), TILE + 44), "white")
        for i, t in enumerate(tiles):
            row.paste(t, (i * TILE, 0))
        ImageDraw.Draw(row).text((4, TILE + 30), f"{path.parent.name}/{path.name[:12]}: {answer}", fill="darkred")
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
