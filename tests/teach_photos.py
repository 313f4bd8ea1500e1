"""A tiny labelled photo set for the teach tests: 3 hats and 2 pants from tests/fixtures/photos,
plus one generated pair of trousers (dark shape on a light, noisy floor) so each class has 3."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "photos"


def generated_trousers(seed: int = 0) -> bytes:
    """A 240x320 JPEG of two dark legs on a light textured background."""
    rng = np.random.default_rng(seed)
    bg = np.clip(200 + rng.normal(0, 12, (320, 240, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(bg, "RGB")
    d = ImageDraw.Draw(img)
    d.polygon([(70, 40), (170, 40), (175, 290), (130, 290), (120, 110), (110, 290), (65, 290)], fill=(40, 50, 90))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_folder(root: Path) -> Path:
    """``root/hat`` (3 photos) and ``root/pants`` (3); returns root."""
    for folder in ("hat", "pants"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for f in sorted((FIXTURES / folder).glob("*.jpg")):
            shutil.copy(f, root / folder / f.name)
    (root / "pants" / "generated.jpg").write_bytes(generated_trousers())
    return root


def make_zip(root: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """The folder as a zip (inside a wrapping folder, as 'compress folder' makes it), plus ``extra`` members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(root.rglob("*.jpg")):
            zf.write(f, f"my-class/{f.relative_to(root)}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()
