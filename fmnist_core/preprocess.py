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

from .segment import DEFAULT_METHOD, Segmentation, segment

MAX_PIXELS = 40_000_000  # refuse larger images (decompression bombs); a 12 MP photo is 12 M
MAX_BYTES = 25 * 1024 * 1024  # matches .streamlit/config.toml server.maxUploadSize
# The formats Image.open may try; others (EPS runs Ghostscript, ...) are refused.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP", "DIB")
WORK_SIDE = 1024  # larger images are scaled down on load: the model sees 28x28, and a 12 MP photo took 12 s
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
DEFAULT_TOLERANCE = 0.05  # trim: the paper's 5% of the corner colour
WORK_SIZE = 1600  # photos larger than this (longest edge, px) are box-averaged down first
# ... and to this when segmented: the garment ends as 28 px, the mask is found at 160 px anyway,
# and the steps after it cost time in proportion to the pixels (12 MP photo: p50 <= 300 ms).
WORK_SIZE_SEGMENTED = 640
SHARPEN_AMOUNT = 0.5  # unsharp-mask strength; measured in tests/test_preprocess.py
# A garment lying flat (a segmented photo) spreads its sleeves and skirt: in the 28x28 input it is
# much wider for its height than the dataset's product shots (docs/PHOTOS.md). The finished input
# of a segmented photo is squeezed to this share of its width, centred. Measured on clothing-dev
# with four photo models: +1.3 to +2.3 points strict at 0.9; 0.8 gains less.
FLAT_LAY_WIDTH = 0.9


class ImageError(ValueError):
    """The input is not an image we can use; the message is one line a user understands."""


@dataclass
class Prepared:
    """The 28x28 uint8 model input (light garment on black) and the steps that produced it."""

    image: np.ndarray
    steps: list[tuple[str, Image.Image]] = field(default_factory=list)
    inverted: bool = False
    source_size: tuple[int, int] = (0, 0)
    # Where the 28x28 came from, so a heat map can be drawn back onto the source image:
    # the crop box (left, top, right, bottom) in source pixels, and the box (left, top, right,
    # bottom) in the 28x28 frame that the crop was scaled into.
    crop_box: tuple[int, int, int, int] | None = None
    frame_box: tuple[int, int, int, int] | None = None
    # The garment mask of a photo and what it found (None: not segmented, e.g. a drawing).
    segmentation: Segmentation | None = None
    # True for an upload or camera shot (``prepare_photo``): the photo head answers those.
    photo: bool = False

    @property
    def note(self) -> str | None:
        """One line for the user about the segmentation ("picked one of 2 items", ...), or None."""
        seg = self.segmentation
        if seg is None:
            return None
        if seg.fallback:
            return f"Segmentation kept the whole photo ({seg.fallback})."
        if seg.n_items > 1:
            return f"Picked one of {seg.n_items} items (the largest, most central one)."
        return None


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
                # Decode big JPEGs at 1/2, 1/4 or 1/8 scale (at least WORK_SIDE / 2 px): a 12 MP photo
                # decodes straight to 1000x750, with no resize after it.
                img.draft(None, (WORK_SIDE // 2, WORK_SIDE // 2))
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


def corner_colour(arr: np.ndarray) -> np.ndarray:
    """The background colour: median of four small corner patches, then the median over corners.

    Patches (not single pixels) so JPEG noise does not decide it; the median over the four corners
    so one corner covered by the garment (an off-centre shot) does not either.
    """
    a = arr if arr.ndim == 3 else arr[..., None]
    h, w = a.shape[:2]
    k = max(1, min(h, w) // 25)
    patches = [a[:k, :k], a[:k, -k:], a[-k:, :k], a[-k:, -k:]]
    per_corner = np.array([np.median(p.reshape(-1, a.shape[2]), axis=0) for p in patches])
    return np.median(per_corner, axis=0)


def level_background(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Map the background colour to pure white (light backgrounds) or pure black (dark ones).

    Per channel, so a tinted background (warm light, grey paper) becomes neutral and the garment
    keeps its brightness relative to the background -- as in the studio photos the dataset came from.
    """
    x = rgb.astype(np.float32)
    bg = np.maximum(np.asarray(background, np.float32), 1.0)
    if float(np.mean(bg)) > 127:
        return np.clip(x * (255.0 / bg), 0, 255)
    return np.clip((x - bg) * (255.0 / np.maximum(255.0 - bg, 1.0)), 0, 255)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the same weights as Pillow's convert('L')."""
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def trim_box(gray: np.ndarray, tolerance: float = 0.05, reference: float | None = None) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of pixels farther than ``tolerance`` from the corner colour.

    Large images are median-filtered first so JPEG noise and dust do not widen the box. The whole
    image is returned when nothing stands out.
    """
    arr = np.asarray(gray, dtype=np.float32)
    h, w = arr.shape
    ref = float(corner_colour(arr)[0]) if reference is None else float(reference)
    factor = -(-max(h, w) // 1024)
    if factor > 1:
        # Big photos: find the box on a box-averaged copy (fast, and averaging removes noise too);
        # the box is off by at most ``factor`` pixels, far below one pixel of the 28x28 result.
        small = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").reduce(factor)
        left, top, right, bottom = trim_box(np.asarray(small), tolerance, ref)
        return (left * factor, top * factor, min(w, right * factor), min(h, bottom * factor))
    diff = np.abs(arr - ref)
    if min(h, w) >= 64:
        size = 5 if min(h, w) >= 400 else 3
        diff_img = Image.fromarray(np.clip(diff, 0, 255).astype(np.uint8), "L")
        diff = np.asarray(diff_img.filter(ImageFilter.MedianFilter(size)), dtype=np.float32)
    mask = diff > tolerance * 255
    if not mask.any():
        return (0, 0, w, h)
    ys, xs = np.nonzero(mask)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def trim(gray: Image.Image, tolerance: float = 0.05) -> Image.Image:
    """Crop away the border whose colour is within ``tolerance`` (0-1) of the corner colour."""
    return gray.crop(trim_box(np.asarray(gray.convert("L")), tolerance))


def _fit_28(img: Image.Image, box: int = 28) -> Image.Image:
    w, h = img.size
    scale = box / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Two-stage resize (box filter then Lanczos): antialiased like an area average, without ringing.
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _pad_centre(img: Image.Image, fill: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    canvas = Image.new("L", (28, 28), fill)
    w, h = img.size
    # An odd leftover pixel goes left/top, as in the dataset (measured on the training images:
    # left margin minus right margin is 0 or +1, never -1, apart from a handful).
    x, y = (29 - w) // 2, (29 - h) // 2
    canvas.paste(img, (x, y))
    return canvas, (x, y, x + w, y + h)


def sharpen(img: Image.Image, amount: float = SHARPEN_AMOUNT) -> Image.Image:
    """Light unsharp masking with a Gaussian of sigma 1 (the dataset's 'sharpen' step)."""
    arr = np.asarray(img, np.float32)
    blurred = np.asarray(img.filter(ImageFilter.GaussianBlur(1)), np.float32)
    return Image.fromarray(np.clip(arr + amount * (arr - blurred), 0, 255).round().astype(np.uint8), "L")


def stretch(img: Image.Image) -> Image.Image:
    """Scale so the brightest pixel is 255, as in the dataset (every training image peaks at 250-255).

    Undoes a dim photo or a coloured garment that turned mid-grey; the background stays 0.
    """
    arr = np.asarray(img, np.float32)
    top = float(arr.max())
    if top <= 0 or top >= 255:
        return img
    return Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8), "L")


def background_is_light(gray: Image.Image) -> bool:
    """True if the corner colour is lighter than mid-grey (a product photo, not the dataset)."""
    return float(np.mean(corner_colour(np.asarray(gray.convert("L"), np.float32)))) > 127


def mask_image(rgb: np.ndarray, seg: Segmentation) -> Image.Image:
    """The mask as the page shows it: the kept item in full colour, other found items dimmed, the rest grey."""
    out = np.full(rgb.shape, 128, np.uint8)
    if seg.all_parts is not None:
        out[seg.all_parts] = (rgb[seg.all_parts] * 0.35 + 128 * 0.65).astype(np.uint8)
    out[seg.mask] = rgb[seg.mask]
    return Image.fromarray(out, "RGB")


def prepare_photo(
    img: Image.Image,
    invert: str = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
    method: str = DEFAULT_METHOD,
    box: tuple[float, float, float, float] | None = None,
    flat_lay: bool = True,
) -> Prepared:
    """Segmentation, then the dataset's own steps, each kept: original, mask, garment only,
    background levelled, grayscale, trimmed, longest edge 28, sharpened, padded to 28x28, negated;
    then, for a segmented photo, the flat-lay narrowing (``flat_lay``; see ``FLAT_LAY_WIDTH``).

    ``invert``: 'auto' negates when the background is light, 'on' always, 'off' never.
    ``tolerance`` (0-1): how far from the corner colour a pixel must be to count as garment.
    ``method``: the segmentation (see ``segment.METHODS``; 'none' = the dataset's steps only).
    ``box``: (x0, y0, x1, y1) around the garment in ``img``'s pixels; re-seeds the segmentation.
    """
    if invert not in ("auto", "on", "off"):
        raise ValueError(f"invert must be 'auto', 'on' or 'off', not {invert!r}")
    rgb_img = img.convert("RGB")
    caption = f"original ({img.size[0]}x{img.size[1]})"
    segmented = method != "none" or box is not None
    factor = -(-max(img.size) // (WORK_SIZE_SEGMENTED if segmented else WORK_SIZE))
    if factor > 1:
        # A 12 MP phone photo ends as 28x28 anyway: box-average it down first (fast, and it
        # averages away sensor noise). The geometry below is in these reduced pixels.
        rgb_img = rgb_img.reduce(factor)
        caption += f", reduced {factor}x"
    steps: list[tuple[str, Image.Image]] = [(caption, rgb_img)]
    rgb = np.asarray(rgb_img, dtype=np.float32)
    bg = corner_colour(rgb)
    seg = None
    if segmented:
        rgb8 = np.asarray(rgb_img, np.uint8)
        seg = segment(rgb8, method, None if box is None else tuple(v / factor for v in box))
        if seg.fallback:
            steps.append((f"mask: whole photo ({seg.fallback})", mask_image(rgb8, seg)))
        else:
            items = f", 1 of {seg.n_items} items" if seg.n_items > 1 else ""
            steps.append((f"mask ({seg.method}, {seg.coverage:.0%}{items})", mask_image(rgb8, seg)))
            # Everything outside the mask becomes the background colour: the dataset's steps
            # below then see a plain background, as in the studio photos they were made for.
            # The dataset is a garment on white, negated: garment brightness = how much darker
            # than white it is. So the background becomes white (measured: +6 points strict on
            # clothing-dev over keeping its own colour), unless a light garment lies on a dark
            # background: then dark (not negated) keeps the garment bright instead of faint.
            garment = float(_luma(rgb[seg.mask]).mean())
            if not (float(_luma(bg[None]).mean()) < 127 and garment > float(_luma(bg[None]).mean())):
                bg = np.array([255.0, 255.0, 255.0], np.float32)
            rgb = np.where(seg.mask[..., None], rgb, bg[None, None, :].astype(np.float32))
            steps.append(("garment only", Image.fromarray(rgb.round().astype(np.uint8), "RGB")))
    light = float(np.mean(bg)) > 127
    levelled = level_background(rgb, bg)
    steps.append(("background levelled", Image.fromarray(levelled.round().astype(np.uint8), "RGB")))
    gray_arr = _luma(levelled)
    gray = Image.fromarray(np.clip(gray_arr.round(), 0, 255).astype(np.uint8), "L")
    steps.append(("grayscale", gray))
    if seg is not None and not seg.fallback:
        # Only inside the mask's box: the rest is flat fill (and the median filter costs per pixel).
        x0, y0, x1, y1 = seg.box
        inner = trim_box(np.asarray(gray)[y0:y1, x0:x1], tolerance, reference=255.0 if light else 0.0)
        crop = (x0 + inner[0], y0 + inner[1], x0 + inner[2], y0 + inner[3])
    else:
        crop = trim_box(np.asarray(gray), tolerance, reference=255.0 if light else 0.0)
    cropped = gray.crop(crop)
    steps.append((f"trimmed ({cropped.size[0]}x{cropped.size[1]})", cropped))
    small = _fit_28(cropped)
    steps.append((f"longest edge 28 ({small.size[0]}x{small.size[1]})", small))
    sharpened = sharpen(small)
    steps.append(("sharpened", sharpened))
    padded, frame = _pad_centre(sharpened, 255 if light else 0)
    steps.append(("padded 28x28", padded))
    do_invert = {"auto": light, "on": True, "off": False}[invert]
    negated = ImageOps.invert(padded) if do_invert else padded
    steps.append(("negated" if do_invert else "not negated", negated))
    final = stretch(negated)
    steps.append(("8-bit, brightest = 255", final))
    if seg is not None and not seg.fallback and flat_lay:
        final, frame = narrow(final, frame, FLAT_LAY_WIDTH)
        steps.append((f"flat lay: width x{FLAT_LAY_WIDTH:g}", final))
    return Prepared(
        np.asarray(final, dtype=np.uint8).copy(), steps, do_invert, rgb_img.size, crop, frame, seg, photo=True
    )


def narrow(
    img: Image.Image, frame: tuple[int, int, int, int], factor: float
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Squeeze a finished 28x28 input to ``factor`` of its width, centred; and its frame box with it."""
    w = max(1, round(28 * factor))
    out = Image.new("L", (28, 28), 0)
    left = (28 - w) // 2
    out.paste(img.resize((w, 28), Image.Resampling.BILINEAR), (left, 0))
    x0, y0, x1, y1 = frame
    k = w / 28
    return out, (left + round(x0 * k), y0, left + round(x1 * k), y1)


def prepare_drawing(rgba: np.ndarray, threshold: int = 20) -> Prepared:
    """A canvas drawing (H x W x 4, light strokes on dark) -> 28x28: crop to strokes, scale, centre.

    Transparent pixels count as black (the canvas background), so it does not matter whether the
    canvas returns its background colour or only the strokes.
    """
    arr = np.asarray(rgba)
    if arr.ndim == 3 and arr.shape[2] == 4:
        rgb = arr[..., :3].astype(np.float32)
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        gray_arr = (rgb.mean(axis=2, keepdims=True) * alpha)[..., 0]
    elif arr.ndim == 3:
        gray_arr = arr[..., :3].astype(np.float32).mean(axis=2)
    elif arr.ndim == 2:
        gray_arr = arr.astype(np.float32)
    else:
        raise ImageError(f"a drawing must be an H x W (x 3 or 4) array, not shape {arr.shape}")
    gray = Image.fromarray(np.clip(gray_arr, 0, 255).astype(np.uint8), "L")
    steps: list[tuple[str, Image.Image]] = [("drawing", gray)]
    mask = np.asarray(gray) > threshold
    if not mask.any():
        raise ImageError("the canvas is empty: draw a garment first")
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    cropped = gray.crop(box)
    steps.append((f"cropped to strokes ({cropped.size[0]}x{cropped.size[1]})", cropped))
    small = _fit_28(cropped)
    steps.append((f"longest edge 28 ({small.size[0]}x{small.size[1]})", small))
    final, frame = _pad_centre(small, 0)
    steps.append(("centred 28x28", final))
    return Prepared(np.asarray(final, dtype=np.uint8).copy(), steps, False, gray.size, box, frame)


def prepare_array28(arr: np.ndarray) -> Prepared:
    """An image that is already a 28x28 dataset image (e.g. a test image): used as is."""
    a = np.asarray(arr, dtype=np.uint8).reshape(28, 28)
    return Prepared(
        a.copy(), [("dataset image", Image.fromarray(a, "L"))], False, (28, 28), (0, 0, 28, 28), (0, 0, 28, 28)
    )


def prepare_any(
    img: Image.Image,
    invert: str = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
    method: str = DEFAULT_METHOD,
    box: tuple[float, float, float, float] | None = None,
) -> Prepared:
    """28x28 grayscale files that already look like the dataset are used as is; others are photos."""
    if img.size == (28, 28) and img.mode == "L" and not background_is_light(img) and invert == "auto":
        return prepare_array28(np.asarray(img))
    return prepare_photo(img, invert, tolerance, method, box)


# ---------------------------------------------------------------- is the input like the training data?

FOREGROUND_LEVEL = 32  # a pixel brighter than this (of 255) counts as garment in a 28x28 input


def image_stats(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image statistics of (N, 28, 28) uint8 inputs: mean intensity, foreground fraction, border mean.

    All three are in [0, 1]. The border is the outer two-pixel ring, black in the dataset.
    """
    x = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28) / 255.0
    ring = np.ones((28, 28), bool)
    ring[2:-2, 2:-2] = False
    return {
        "mean": x.mean(axis=(1, 2)),
        "foreground": (x > FOREGROUND_LEVEL / 255.0).mean(axis=(1, 2)),
        "border": x[:, ring].mean(axis=1),
    }


@dataclass(frozen=True)
class PixelStats:
    """The range (low, high quantiles) of each image statistic over the training set."""

    low: dict[str, float]
    high: dict[str, float]
    median: dict[str, float]

    @classmethod
    def from_images(cls, images: np.ndarray, q: float = 0.005) -> PixelStats:
        """Quantiles ``q`` and ``1 - q`` of the statistics of ``images`` (e.g. the 60,000 training images)."""
        s = image_stats(images)
        return cls(
            {k: float(np.quantile(v, q)) for k, v in s.items()},
            {k: float(np.quantile(v, 1 - q)) for k, v in s.items()},
            {k: float(np.median(v)) for k, v in s.items()},
        )


LOW_CONFIDENCE = 0.5
_STAT_WORDS = {
    "mean": "overall brightness",
    "foreground": "share of garment pixels",
    "border": "brightness at the edges",
}


# Edges darker than the dataset's are harmless (a segmented photo's are pure black); only bright
# edges mean trouble (an image that was not negated, or background left in).
_UPPER_BOUND_ONLY = ("border",)


def unusual_input(image: np.ndarray, stats: PixelStats, confidence: float | None = None) -> list[str]:
    """Reasons the input is unlike the training data (empty list if it looks like it).

    Checks the model's confidence (below ``LOW_CONFIDENCE``) and whether the image's mean
    intensity, foreground fraction or border brightness falls outside the training range.
    """
    reasons = []
    if confidence is not None and confidence < LOW_CONFIDENCE:
        reasons.append(f"the model is unsure (top probability {confidence:.0%})")
    s = {k: float(v[0]) for k, v in image_stats(image).items()}
    for key, value in s.items():
        lo, hi = stats.low[key], stats.high[key]
        too_low = value < lo and key not in _UPPER_BOUND_ONLY
        if too_low or value > hi:
            side, bound = ("lower", lo) if too_low else ("higher", hi)
            # Enough decimals that the value does not print as the bound it lies beyond (0.01 vs 0.01).
            d = 2
            while d < 5 and f"{value:.{d}f}" == f"{bound:.{d}f}":
                d += 1
            reasons.append(
                f"its {_STAT_WORDS[key]} ({value:.{d}f}) is {side} than in 99% of training images "
                f"({lo:.{d}f}-{hi:.{d}f})"
            )
    return reasons
