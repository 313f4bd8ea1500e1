"""The photo pipeline: dataset images rendered as product photos come back close to the originals.

Also: odd file formats, drawings, the invert switch, and the "unlike the training data" check.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_core.preprocess import (
    ImageError,
    PixelStats,
    load_image,
    prepare_any,
    prepare_drawing,
    prepare_photo,
    unusual_input,
)
from scripts.photo_like import render_photo


def _sample(dataset, per_class: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(dataset.y_test == c), per_class, replace=False) for c in range(10)]
    )


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


@pytest.fixture(scope="module")
def round_trip(dataset):
    """(indices, originals, photos, prepared 28x28) for 40 test images, 4 per class."""
    idx = _sample(dataset)
    photos = [render_photo(dataset.x_test[i], np.random.default_rng(int(i))) for i in idx]
    prepared = np.stack([prepare_photo(p).image for p in photos])
    return idx, dataset.x_test[idx], photos, prepared


def test_product_photos_come_back_close_to_the_originals(round_trip):
    _, originals, photos, prepared = round_trip
    assert all(p.size[0] >= 200 for p in photos)  # really a photo-sized image, not a 28x28
    mad = np.abs(prepared.astype(float) - originals.astype(float)).mean(axis=(1, 2))
    corr = np.array([_corr(a, b) for a, b in zip(prepared, originals, strict=True)])
    # Measured with seed 0: mean abs diff ~17 of 255 (mostly half-pixel edge shifts), correlation ~0.92.
    assert mad.mean() < 25, mad
    assert np.median(corr) > 0.88, corr
    assert corr.min() > 0.5, corr


def test_product_photos_are_classified_like_the_originals(round_trip):
    """The shipped paper model (fixed weights, so a fixed answer) gives the photos the originals' classes."""
    from fmnist_core.predict import Predictor

    _, originals, _, prepared = round_trip
    predictor = Predictor.from_path(Path("models/fashion_cnn_paper.keras"))
    p_orig = predictor.probabilities(originals)
    p_photo = predictor.probabilities(prepared)
    # Compared with the model's own answers on the originals, not with the labels.
    agree = float((p_orig.argmax(1) == p_photo.argmax(1)).mean())
    assert agree >= 0.8, agree
    assert float(np.abs(p_orig - p_photo).sum(axis=1).mean()) < 0.5


def test_photo_steps_and_geometry(round_trip):
    _, _, photos, _ = round_trip
    prep = prepare_photo(photos[0])
    captions = [c for c, _ in prep.steps]
    assert captions[0].startswith("original (")
    # A plain studio background: the mask step says so and the dataset's own trim does the work.
    assert captions[1] == "mask: whole photo (plain background)"
    assert captions[2:4] == ["background levelled", "grayscale"]
    assert captions[4].startswith("trimmed (") and captions[5].startswith("longest edge 28")
    assert captions[6:] == ["sharpened", "padded 28x28", "negated", "8-bit, brightest = 255"]
    assert prep.segmentation is not None and prep.segmentation.fallback == "plain background"
    plain = prepare_photo(photos[0], method="none")
    assert [c for c, _ in plain.steps] == captions[:1] + captions[2:]  # without segmentation: the same
    assert np.array_equal(plain.image, prep.image)
    assert prep.inverted and prep.image.dtype == np.uint8 and prep.image.shape == (28, 28)
    assert prep.image.max() == 255  # stretched like the dataset
    left, top, right, bottom = prep.crop_box
    assert 0 < left < right < photos[0].width and 0 < top < bottom < photos[0].height  # the margins were cut
    fl, ft, fr, fb = prep.frame_box
    assert max(fr - fl, fb - ft) == 28  # longest edge fills the frame, as in the dataset
    assert prep.image[:, :fl].max(initial=0) == 0 and prep.image[:, fr:].max(initial=0) == 0  # padding is black


def test_dataset_centring_convention():
    """Odd leftover pixels go left/top, as in the dataset, so a photo of a narrow garment lines up."""
    narrow = np.zeros((280, 110), np.uint8)
    narrow[:, :] = 200
    prep = prepare_drawing(np.pad(narrow, ((0, 0), (85, 85))))
    cols = np.flatnonzero(prep.image.max(axis=0))
    assert (cols[0], 27 - cols[-1]) == (9, 8)  # 11 px wide: 9 left, 8 right


def test_dark_background_photo_is_not_negated(dataset):
    x = dataset.x_test[3]
    big = Image.fromarray(np.pad(x, 10), "L").resize((480, 480), Image.Resampling.BICUBIC).convert("RGB")
    prep = prepare_photo(big)
    assert not prep.inverted
    assert _corr(prep.image, x) > 0.9


def test_invert_switch(dataset):
    photo = render_photo(dataset.x_test[5], np.random.default_rng(5))
    auto, on, off = (prepare_photo(photo, invert=v) for v in ("auto", "on", "off"))
    assert auto.inverted and on.inverted and not off.inverted
    assert np.array_equal(auto.image, on.image)
    assert off.image[0, 0] == 255  # white background kept
    with pytest.raises(ValueError):
        prepare_photo(photo, invert="sometimes")


def test_trim_tolerance_changes_the_crop(dataset):
    photo = render_photo(dataset.x_test[7], np.random.default_rng(7), shadow=True)
    tight, loose = prepare_photo(photo, tolerance=0.02), prepare_photo(photo, tolerance=0.25)
    tw = tight.crop_box[2] - tight.crop_box[0]
    lw = loose.crop_box[2] - loose.crop_box[0]
    assert lw < tw  # a higher tolerance counts faint pixels (shadow, halo) as background


def test_big_photo_is_reduced_first_and_matches_the_small_one(dataset):
    photo = render_photo(dataset.x_test[9], np.random.default_rng(9))
    big = photo.resize((photo.width * 8, photo.height * 8), Image.Resampling.BICUBIC)
    small_prep, big_prep = prepare_photo(photo), prepare_photo(big)
    assert "reduced" in big_prep.steps[0][0]
    assert np.abs(small_prep.image.astype(float) - big_prep.image).mean() < 12


# ---------------------------------------------------------------- odd formats through load_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def boot(dataset) -> tuple[Image.Image, np.ndarray]:
    """A product photo (RGB, on a light background) and its prepared image from lossless RGB PNG."""
    photo = render_photo(dataset.x_test[0], np.random.default_rng(0), shadow=False)
    return photo, prepare_photo(load_image(_encode(photo, "PNG"))).image


def _exif_rotated(photo: Image.Image) -> bytes:
    # Stored rotated; EXIF orientation 6 ("rotate 90 CW to view") brings it back upright.
    stored = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def _rgba_on_transparent(photo: Image.Image) -> bytes:
    arr = np.asarray(photo.convert("L"), np.float32)
    alpha = np.clip((250 - arr) * 8, 0, 255).astype(np.uint8)  # background transparent
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha, "L"))
    return _encode(rgba, "PNG")


def _sixteen_bit(photo: Image.Image) -> bytes:
    arr = np.asarray(photo.convert("L"), np.uint16) * 257
    return _encode(Image.fromarray(arr.astype(np.uint16)), "PNG")


ODD = {
    "palette GIF": lambda p: _encode(p.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "GIF"),
    "CMYK JPEG": lambda p: _encode(p.convert("CMYK"), "JPEG", quality=95),
    "CMYK TIFF": lambda p: _encode(p.convert("CMYK"), "TIFF"),
    "16-bit PNG": _sixteen_bit,
    "RGBA PNG": _rgba_on_transparent,
    "EXIF-rotated JPEG": _exif_rotated,
    "WebP": lambda p: _encode(p, "WEBP", quality=90),
    "BMP": lambda p: _encode(p, "BMP"),
    "grayscale JPEG": lambda p: _encode(p.convert("L"), "JPEG", quality=95),
}


@pytest.mark.parametrize("kind", list(ODD))
def test_odd_formats_give_the_same_input(boot, kind):
    photo, expected = boot
    img = load_image(ODD[kind](photo))
    assert img.mode in ("RGB", "L")
    assert img.size == photo.size  # upright again for the EXIF case
    # Decoding is what is checked here. The 16-bit file's range is stretched on load, which lifts
    # its border just over the plain-background threshold: it is segmented, and the flat-lay
    # narrowing of segmented photos (tested in test_photos.py) would then change its shape.
    prep = prepare_photo(img, flat_lay=False)
    assert prep.inverted
    assert np.abs(prep.image.astype(float) - expected).mean() < 12, kind
    assert _corr(prep.image, expected) > 0.93, kind


def test_broken_file_is_a_clear_error(boot):
    photo, _ = boot
    data = _encode(photo, "PNG")
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 3])


def test_dataset_sized_file_is_used_as_is(dataset):
    x = dataset.x_test[11]
    prep = prepare_any(Image.fromarray(x, "L"))
    assert np.array_equal(prep.image, x) and len(prep.steps) == 1


# ---------------------------------------------------------------- drawings


def test_drawing_is_cropped_scaled_and_centred():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[100:200, 60:120] = (255, 255, 255, 255)  # a white block, off-centre, 100 tall x 60 wide
    prep = prepare_drawing(canvas)
    rows, cols = np.flatnonzero(prep.image.max(1)), np.flatnonzero(prep.image.max(0))
    assert (rows[0], rows[-1]) == (0, 27)  # longest edge fills 28
    assert abs((cols[0] + cols[-1]) / 2 - 13.5) <= 0.5  # centred
    assert len(cols) in (16, 17, 18)  # 60/100 * 28 = 16.8
    assert prep.crop_box == (60, 100, 120, 200)
    assert [c for c, _ in prep.steps][-1] == "centred 28x28"


def test_transparent_canvas_background_counts_as_black():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., :3] = 255  # white but fully transparent everywhere ...
    canvas[50:60, 50:200, 3] = 255  # ... except one opaque stroke
    prep = prepare_drawing(canvas)
    assert prep.crop_box == (50, 50, 200, 60)


def test_empty_canvas_is_a_clear_error():
    with pytest.raises(ImageError, match="empty"):
        prepare_drawing(np.zeros((280, 280, 4), np.uint8))


# ---------------------------------------------------------------- unlike the training data?


@pytest.fixture(scope="module")
def stats(dataset) -> PixelStats:
    return PixelStats.from_images(dataset.x_train)


def test_training_like_images_raise_no_warning(stats, dataset, round_trip):
    flagged = sum(bool(unusual_input(x, stats)) for x in dataset.x_test[:1000])
    assert flagged <= 30, flagged  # the range covers 99% per statistic
    _, _, _, prepared = round_trip
    assert sum(bool(unusual_input(x, stats)) for x in prepared) <= 3


def test_unlike_inputs_are_flagged(stats, dataset):
    not_negated = 255 - dataset.x_test[0]  # a white background: bright edges
    assert any("edges" in r for r in unusual_input(not_negated, stats))
    speck = np.zeros((28, 28), np.uint8)
    speck[13:15, 13:15] = 255
    assert any("garment pixels" in r for r in unusual_input(speck, stats))
    assert any("unsure" in r for r in unusual_input(dataset.x_test[0], stats, confidence=0.3))
    assert unusual_input(dataset.x_test[0], stats, confidence=0.9) == []


def test_dark_edges_pass_and_a_flagged_value_never_prints_as_its_bound(stats, dataset):
    dark = dataset.x_test[0].copy()
    dark[:2], dark[-2:], dark[:, :2], dark[:, -2:] = 0, 0, 0, 0  # a segmented photo's edges: pure black
    assert not any("edges" in r for r in unusual_input(dark, stats))
    tight = PixelStats(
        {"mean": 0.0, "foreground": 0.0, "border": 0.0}, {"mean": 1.0, "foreground": 1.0, "border": 0.0104}, {}
    )
    faint = np.zeros((28, 28), np.uint8)
    faint[0, :6] = 102  # border mean 6 * 102 / 255 / 208 = 0.0115: "0.01" at two decimals, like the bound
    (reason,) = unusual_input(faint, tight)
    assert "(0.012)" in reason and "0.000-0.010" in reason
