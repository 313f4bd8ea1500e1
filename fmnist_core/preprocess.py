"""Turn an uploaded photo, a camera shot or a canvas drawing into a Fashion-MNIST input.

Photos follow the steps that made the dataset (Xiao et al. 2017, section 2): trim the background
by the corner colour, resize the longest edge to 28, sharpen, pad to 28x28 centred, negate
(the dataset is a light garment on black), 8-bit grayscale. Every intermediate image is kept so
the page can show the strip of steps. Drawings are light strokes on dark already: crop to the
strokes, scale the longest edge to 28, centre.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # refuse larger images (decompression bombs); a 12 MP photo is 12 M
MAX_BYTES = 25 * 1024 * 1024  # matches .streamlit/config.toml server.maxUploadSize
# The formats Image.open may try; others (EPS runs Ghostscript, ...) are refused.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP", "DIB")
WORK_SIDE = 1024  # larger images are scaled down on load: the model sees 28x28, and a 12 MP photo took 12 s
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """The input is not an image we can use; the message is one line a user understands."""


@dataclass
class Prepared:
    """The 28x28 uint8 model input (light garment on black) and the steps that produced it."""

    image: np.ndarray
    steps: list[tuple[str, Image.Image]] = field(default_factory=list)
    inverted: bool = False
    source_size: tuple[int, int] = (0, 0)


def load_image(source: str | Path | bytes | bytearray | memoryview | io.IOBase) -> Image.Image:
    """Open an image file or bytes safely and return it upright in RGB (or L).

    Handles EXIF orientation, transparency (composited on white), palette, CMYK, 16-bit and
    animated images (first frame). Anything else - empty, truncated, not an image, too large,
    a decompression bomb - raises ImageError with one line a user understands; nothing else escapes.
    """
    data = _read_limited(source)
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"the file is over {MAX_BYTES // 2**20} MB; the limit is {MAX_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            # Corrupt EXIF etc. only warn (the image is still usable): keep stderr to our one line.
            warnings.simplefilter("ignore")
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only the formats a photo or screenshot comes in: no EPS (runs Ghostscript), no exotic decoders.
            img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            w, h = img.size
            if w < 1 or h < 1:
                raise ImageError("the image has no pixels")
            # Checked from the header, before any pixel is decoded: a 50,000 x 50,000 claim stops here.
            if w * h > MAX_PIXELS:
                raise ImageError(f"the image is {w}x{h} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels")
            img.seek(0)  # animated GIF/WebP/PNG: the first frame
            if img.format == "JPEG":
                img.draft(None, (WORK_SIDE, WORK_SIDE))  # decode big JPEGs at 1/2, 1/4 or 1/8 scale: fast
            img.load()
            img = _normalise_mode(ImageOps.exif_transpose(img) or img)
            if max(img.size) > WORK_SIDE:
                img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
            return img
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"the image is too large (over {MAX_PIXELS // 1_000_000} megapixels; possible decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError("not an image file we can read (use PNG, JPEG, WebP, GIF, BMP or TIFF)") from None
    except MemoryError:
        raise ImageError("the image needs too much memory to decode") from None
    except Exception as exc:  # noqa: BLE001 - hostile files make Pillow's decoders raise anything
        detail = " ".join(str(exc).split())[:80] or type(exc).__name__
        raise ImageError(f"the image is broken or truncated ({detail})") from None


def _read_limited(source: str | Path | bytes | bytearray | memoryview | io.IOBase) -> bytes:
    """The bytes of ``source``, reading at most MAX_BYTES + 1 (a huge file or /dev/zero never fills memory)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            if not path.is_file():  # a folder, a FIFO or a device would block or never end
                raise ImageError(f"{_short(path)} is not a file" if path.exists() else f"{_short(path)} does not exist")
            with open(path, "rb") as f:
                return f.read(MAX_BYTES + 1)
        except ImageError:
            raise
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
            raise ImageError(f"cannot read {_short(path)}: {getattr(exc, 'strerror', None) or exc}") from None
    if isinstance(source, io.BytesIO):  # Streamlit's UploadedFile is one
        return source.getvalue()[: MAX_BYTES + 1]
    if hasattr(source, "read"):
        data = source.read(MAX_BYTES + 1)
        return data if isinstance(data, bytes) else b""
    raise ImageError(f"cannot read an image from a {type(source).__name__}")


def _short(path: Path) -> str:
    """A file name fit for a one-line message (no control characters, not endless)."""
    text = str(path).encode("unicode_escape").decode("ascii")
    return text if len(text) <= 80 else "..." + text[-77:]


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB or L; transparency is flattened onto white."""
    if img.mode.startswith("I") or img.mode == "F":
        # 16/32-bit and float images: stretch their own range to 0-255 (NaN/inf count as 0).
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode in ("P", "PA", "LA", "RGBa") or (img.mode == "RGB" and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        alpha = np.asarray(img)[..., 3]
        if alpha.min() < 255:
            # Transparent product shots: put them on white, like the dataset's studio photos.
            bg = Image.new("RGB", img.size, (255, 255, 255))
            bg.paste(img, mask=img.getchannel("A"))
            return bg
        return img.convert("RGB")
    if img.mode in ("RGB", "L"):
        return img
    try:
        return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1, RGBX, ...
    except ValueError:
        raise ImageError(f"unsupported colour mode {img.mode}") from None


def trim(gray: Image.Image, tolerance: float = 0.05) -> Image.Image:
    """Crop away the border whose colour is within ``tolerance`` (0-1) of the corner colour."""
    arr = np.asarray(gray, dtype=np.int16)
    corners = np.array([arr[0, 0], arr[0, -1], arr[-1, 0], arr[-1, -1]])
    ref = int(np.median(corners))
    mask = np.abs(arr - ref) > tolerance * 255
    if not mask.any():
        return gray
    ys, xs = np.nonzero(mask)
    return gray.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def _fit_28(img: Image.Image, box: int = 28) -> Image.Image:
    w, h = img.size
    scale = box / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _pad_centre(img: Image.Image, fill: int) -> Image.Image:
    canvas = Image.new("L", (28, 28), fill)
    w, h = img.size
    canvas.paste(img, ((28 - w) // 2, (28 - h) // 2))
    return canvas


def background_is_light(gray: Image.Image) -> bool:
    """True if the border pixels are lighter than mid-grey (a product photo, not the dataset)."""
    arr = np.asarray(gray)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    return float(np.median(border)) > 127


def prepare_photo(img: Image.Image, invert: str = "auto", tolerance: float = 0.05) -> Prepared:
    """The dataset's own steps, each kept: original, grayscale, trimmed, 28 px, sharpened, padded, negated.

    ``invert``: 'auto' negates when the background is light, 'on' always, 'off' never.
    """
    steps: list[tuple[str, Image.Image]] = [("original", img.convert("RGB"))]
    gray = img.convert("L")
    steps.append(("grayscale", gray))
    light = background_is_light(gray)
    do_invert = {"auto": light, "on": True, "off": False}[invert]
    cropped = trim(gray, tolerance)
    steps.append((f"trimmed ({cropped.size[0]}x{cropped.size[1]})", cropped))
    small = _fit_28(cropped)
    steps.append((f"longest edge 28 ({small.size[0]}x{small.size[1]})", small))
    sharp = small.filter(ImageFilter.GaussianBlur(1))
    # Unsharp-style sharpening: original + (original - blurred), as the dataset's "sharpen".
    arr = np.clip(2 * np.asarray(small, np.float32) - np.asarray(sharp, np.float32), 0, 255)
    sharpened = Image.fromarray(arr.astype(np.uint8), "L")
    steps.append(("sharpened", sharpened))
    fill = 255 if light else 0
    padded = _pad_centre(sharpened, fill)
    steps.append(("padded 28x28", padded))
    final = ImageOps.invert(padded) if do_invert else padded
    steps.append(("negated" if do_invert else "not negated", final))
    return Prepared(np.asarray(final, dtype=np.uint8).copy(), steps, do_invert, img.size)


def prepare_drawing(rgba: np.ndarray, threshold: int = 20) -> Prepared:
    """A canvas drawing (H x W x 4, light strokes on dark) -> 28x28: crop to strokes, scale, centre."""
    arr = np.asarray(rgba)
    if arr.ndim == 3 and arr.shape[2] == 4:
        rgb = arr[..., :3].astype(np.float32)
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        gray_arr = (rgb.mean(axis=2, keepdims=True) * alpha)[..., 0]
    elif arr.ndim == 3:
        gray_arr = arr[..., :3].astype(np.float32).mean(axis=2)
    else:
        gray_arr = arr.astype(np.float32)
    gray = Image.fromarray(np.clip(gray_arr, 0, 255).astype(np.uint8), "L")
    steps: list[tuple[str, Image.Image]] = [("drawing", gray)]
    mask = np.asarray(gray) > threshold
    if not mask.any():
        raise ImageError("the canvas is empty: draw a garment first")
    ys, xs = np.nonzero(mask)
    cropped = gray.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    steps.append((f"cropped ({cropped.size[0]}x{cropped.size[1]})", cropped))
    small = _fit_28(cropped)
    steps.append((f"longest edge 28 ({small.size[0]}x{small.size[1]})", small))
    final = _pad_centre(small, 0)
    steps.append(("centred 28x28", final))
    return Prepared(np.asarray(final, dtype=np.uint8).copy(), steps, False, gray.size)


def prepare_array28(arr: np.ndarray) -> Prepared:
    """An image that is already a 28x28 dataset image (e.g. a test image): used as is."""
    a = np.asarray(arr, dtype=np.uint8).reshape(28, 28)
    return Prepared(a.copy(), [("dataset image", Image.fromarray(a, "L"))], False, (28, 28))


def prepare_any(img: Image.Image, invert: str = "auto", tolerance: float = 0.05) -> Prepared:
    """28x28 grayscale files that already look like the dataset are used as is; others are photos."""
    if img.size == (28, 28) and img.mode == "L" and not background_is_light(img) and invert == "auto":
        return prepare_array28(np.asarray(img))
    return prepare_photo(img, invert, tolerance)
