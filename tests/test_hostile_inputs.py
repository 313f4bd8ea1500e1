"""Hostile and odd image files, everywhere an image enters: the shared loader and the CLI `predict`.

Every bad file must end in one clear line (ImageError in Python; `error: ...` on stderr and a
non-zero exit in the CLI, never a traceback); every valid-but-odd image must be classified.
Nothing may hang: in-process calls run under signal.alarm, CLI calls under a subprocess timeout.
The counts of what was tried go to test-artifacts/reliability-counts.jsonl (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fmnist_core.preprocess import MAX_PIXELS, ImageError, load_image, prepare_any

ROOT = Path(__file__).resolve().parent.parent
COUNTS = ROOT / "test-artifacts" / "reliability-counts.jsonl"
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP")
CALL_SECONDS = 20  # generous on a busy 2-core machine; a hang is minutes, not seconds


def record(test: str, **counts: int) -> None:
    """Append what a test tried to the counts file and print it (pytest -s shows it)."""
    COUNTS.parent.mkdir(exist_ok=True)
    with open(COUNTS, "a") as f:
        f.write(json.dumps({"test": test, **counts}) + "\n")
    print(test, counts)


@contextmanager
def time_limit(seconds: int = CALL_SECONDS):
    """Fail (not hang) if the block takes longer than ``seconds``."""

    def boom(_signum, _frame):
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- the corpus


def garment(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A dark T-shirt-ish shape on a white background (what a product photo looks like)."""
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste((30, 40, 120), (w // 4, h // 5, 3 * w // 4, 4 * h // 5))
    img.paste((30, 40, 120), (w // 10, h // 5, 9 * w // 10, 2 * h // 5))
    return img


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(w: int, h: int, bit_depth: int = 8, colour: int = 2, idat: bytes | None = None) -> bytes:
    """A PNG whose IHDR claims w x h; the pixel data is tiny (or ``idat``)."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour, 0, 0, 0)
    body = idat if idat is not None else zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def png_real_bomb() -> bytes:
    """A 12 kB PNG that really decodes to 10,000 x 10,000 pixels (1-bit, all zero)."""
    row = b"\0" * (1 + 10_000 // 8)
    return png_claiming(10_000, 10_000, bit_depth=1, colour=0, idat=zlib.compress(row * 10_000, 9))


def bmp_claiming(w: int, h: int) -> bytes:
    """BITMAPFILEHEADER + BITMAPINFOHEADER for a 24-bit w x h image, with 64 bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + 40 + 64, 0, 0, 14 + 40)
    return header + info + b"\0" * 64


def gif_claiming(w: int, h: int) -> bytes:
    """GIF89a with a w x h logical screen and image descriptor, a 2-colour table, a few LZW bytes."""
    screen = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, w, h, 0)
    return screen + descriptor + b"\x02\x02\x44\x01\x00;"


def tiff_claiming(w: int, h: int) -> bytes:
    """A little-endian TIFF whose one IFD says w x h, 8-bit grey, uncompressed, one strip of 16 bytes."""
    tags = [
        (256, 4, 1, w),  # ImageWidth (LONG)
        (257, 4, 1, h),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8 + 2 + 12 * 8 + 4),  # StripOffsets: just after the IFD
        (278, 4, 1, h),  # RowsPerStrip
        (279, 4, 1, 16),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags) + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8) + ifd + b"\x80" * 16


def jpeg_claiming(w: int, h: int) -> bytes:
    """A real small JPEG whose SOF0 marker is patched to say w x h."""
    data = bytearray(encode(garment(), "JPEG"))
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def webp_claiming(w: int, h: int) -> bytes:
    """A real animated WebP (VP8X) whose canvas size is patched to w x h."""
    frames = [garment((8, 8)), Image.new("RGB", (8, 8), (0, 0, 0))]
    data = bytearray(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100))
    assert data[12:16] == b"VP8X"
    data[24:27] = (w - 1).to_bytes(3, "little")
    data[27:30] = (h - 1).to_bytes(3, "little")
    return bytes(data)


def bad_files() -> dict[str, bytes]:
    """Files that must be refused with an ImageError (name -> bytes; the name's suffix is a lie)."""
    files: dict[str, bytes] = {
        "empty.png": b"",
        "one-byte.png": b"\x89",
        "text.png": b"This is not an image, it is a shopping list: socks, shirt.\n" * 3,
        "pdf.png": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "html.jpg": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
        "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="50000" height="50000"/>',
        "zip.png": b"PK\x03\x04" + b"\0" * 100,
        "eps.png": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "png-signature-only.png": b"\x89PNG\r\n\x1a\n",
        "bomb-png-50000.png": png_claiming(50_000, 50_000),
        "bomb-png-10000-real.png": png_real_bomb(),
        "bomb-bmp-50000.bmp": bmp_claiming(50_000, 50_000),
        "bomb-gif-50000.gif": gif_claiming(50_000, 50_000),
        "bomb-tiff-50000.tif": tiff_claiming(50_000, 50_000),
        "bomb-jpeg-50000.jpg": jpeg_claiming(50_000, 50_000),
        "bomb-webp-50000.webp": webp_claiming(50_000, 50_000),
        "zero-width-png.png": png_claiming(0, 10),
        "zero-size-bmp.bmp": bmp_claiming(0, 0),
    }
    rng = np.random.default_rng(8)
    for i in range(20):
        files[f"random-{i}.png"] = rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
    for fmt in FORMATS:
        data = encode(garment(), fmt)
        files[f"header-only.{fmt.lower()}"] = data[:16]
        files[f"cut-at-30%.{fmt.lower()}"] = data[: len(data) * 3 // 10]
    return files


def damaged_files() -> dict[str, bytes]:
    """Truncated and byte-flipped files: refused, or (if the decoder copes) a full-size image."""
    files: dict[str, bytes] = {}
    rng = np.random.default_rng(9)
    for fmt in FORMATS:
        data = encode(garment((96, 80)), fmt)
        for frac in (0.5, 0.7, 0.9, 0.99):
            files[f"cut-at-{int(frac * 100)}%.{fmt.lower()}"] = data[: int(len(data) * frac)]
        for k in range(4):
            b = bytearray(data)
            for pos in rng.integers(8, len(b), 5):
                b[pos] ^= int(rng.integers(1, 256))
            files[f"flipped-{k}.{fmt.lower()}"] = bytes(b)
    return files


def odd_valid_files() -> dict[str, bytes]:
    """Valid but unusual images that must be classified."""
    g = garment()
    rgba = g.convert("RGBA")
    rgba.putalpha(Image.new("L", g.size, 0).point(lambda _: 255))
    clear = np.zeros((40, 30, 4), np.uint8)  # fully transparent
    frames = [garment(), Image.new("RGB", (64, 48), (0, 0, 0)), garment((64, 48)).rotate(90)]
    i16 = Image.fromarray((np.asarray(g.convert("L"), np.uint16) * 257).astype(np.uint16))
    f32 = Image.fromarray(np.asarray(g.convert("L"), np.float32) / 255.0, "F")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    return {
        "1x1.png": encode(Image.new("RGB", (1, 1), (128, 128, 128)), "PNG"),
        "1x1-black.gif": encode(Image.new("L", (1, 1), 0), "GIF"),
        "thin-1x800.png": encode(garment((1, 800)), "PNG"),
        "thin-800x1.png": encode(garment((800, 1)), "PNG"),
        "thin-3x2000.bmp": encode(garment((3, 2000)), "BMP"),
        "wide-4000x2.webp": encode(garment((4000, 2)), "WEBP"),
        "palette.png": encode(g.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG"),
        "palette-transparent.gif": encode(g.convert("P"), "GIF", transparency=0),
        "animated.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0),
        "animated.png": encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=80),
        "animated.webp": encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=80),
        "16bit-gray.png": encode(i16, "PNG"),
        "16bit-gray.tif": encode(i16, "TIFF"),
        "float32.tif": encode(f32, "TIFF"),
        "cmyk.jpg": encode(g.convert("CMYK"), "JPEG"),
        "cmyk.tif": encode(g.convert("CMYK"), "TIFF"),
        "gray.jpg": encode(g.convert("L"), "JPEG"),
        "progressive.jpg": encode(g, "JPEG", progressive=True, quality=40),
        "exif-rotated.jpg": encode(g, "JPEG", exif=exif),
        "rgba-opaque.png": encode(rgba, "PNG"),
        "rgba-clear.png": encode(Image.fromarray(clear, "RGBA"), "PNG"),
        "la.png": encode(g.convert("LA"), "PNG"),
        "1bit.bmp": encode(g.convert("1"), "BMP"),
        "1bit.tif": encode(g.convert("1"), "TIFF", compression="group4"),
        "lossless.webp": encode(g, "WEBP", lossless=True),
        "dataset-like-28x28.png": encode(Image.new("L", (28, 28), 0), "PNG"),
        "photo-3000x2000.jpg": encode(garment((3000, 2000)), "JPEG", quality=85),
        "tiff-lzw.tif": encode(g, "TIFF", compression="tiff_lzw"),
        "jpeg-named.png": encode(g, "JPEG"),  # the suffix lies, the content is fine
    }


# ---------------------------------------------------------------- the shared loader (the page uses it too)


def _check_prepared(img: Image.Image) -> None:
    assert img.mode in ("RGB", "L")
    assert img.size[0] >= 1 and img.size[1] >= 1
    prep = prepare_any(img)
    assert prep.image.shape == (28, 28) and prep.image.dtype == np.uint8


def test_bad_files_are_refused_with_one_line():
    files = bad_files()
    for name, data in files.items():
        # bytes (CLI reads them) and BytesIO (Streamlit's UploadedFile is a BytesIO)
        for source in (data, io.BytesIO(data)):
            with time_limit(), pytest.raises(ImageError) as exc:
                load_image(source)
            msg = str(exc.value)
            assert msg and "\n" not in msg and len(msg) < 200, (name, msg)
    record("loader: bad files refused", tried=len(files) * 2, refused=len(files) * 2)


def test_bombs_stop_at_the_header():
    for name, data in bad_files().items():
        if name.startswith("bomb-") and "real" not in name:
            with time_limit(5), pytest.raises(ImageError, match="too large|megapixels"):
                load_image(data)
    assert MAX_PIXELS < 50_000 * 50_000


def test_damaged_files_are_refused_or_read_whole():
    files = damaged_files()
    refused = 0
    for name, data in files.items():
        with time_limit():
            try:
                img = load_image(data)
            except ImageError as exc:
                refused += 1
                assert "\n" not in str(exc)
                continue
            _check_prepared(img)  # a decoder that copes must still give a usable image
            assert img.size == (96, 80), name
    assert refused >= len(files) // 2  # most damage is detected, not silently accepted
    record("loader: truncated/byte-flipped files", tried=len(files), refused=refused, read=len(files) - refused)


def test_odd_valid_images_are_read():
    files = odd_valid_files()
    for name, data in files.items():
        with time_limit():
            img = load_image(data)
            assert img.mode in ("RGB", "L"), name
            _check_prepared(img)
    # The odd ones keep their meaning: EXIF rotation applied, transparency on white, 16-bit stretched.
    assert load_image(files["exif-rotated.jpg"]).size == (48, 64)
    assert load_image(files["rgba-clear.png"]).getpixel((0, 0)) == (255, 255, 255)
    assert np.asarray(load_image(files["16bit-gray.png"])).max() == 255
    assert load_image(files["photo-3000x2000.jpg"]).size[0] <= 1024  # scaled down on load: fast
    record("loader: odd but valid images", tried=len(files), classified=len(files))


def test_paths_that_are_not_files(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would block forever
    cases = [tmp_path, fifo, tmp_path / "missing.png", "/dev/zero", "bad\0name.png", tmp_path / "x\nerror: fake.png"]
    for source in cases:
        with time_limit(5), pytest.raises(ImageError) as exc:
            load_image(source)
        assert "\n" not in str(exc.value)
    with pytest.raises(ImageError):
        load_image(12345)  # not a path, not bytes
    record("loader: paths that are not image files", tried=len(cases) + 1, refused=len(cases) + 1)


def test_oversized_file_is_refused_without_reading_it_all(tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(2 * 1024**3)  # a sparse 2 GB file: reading it whole would take seconds and 2 GB
    with time_limit(5), pytest.raises(ImageError, match="limit is 25 MB"):
        load_image(big)


# ---------------------------------------------------------------- property tests (hypothesis)

_SEEDS = [encode(garment((20, 16)), fmt) for fmt in FORMATS] + [encode(garment((20, 16)).convert("P"), "PNG")]
_tried = {"random": 0, "mutated": 0, "mutated_refused": 0}


def _load_or_refuse(data: bytes) -> bool:
    """True if read (and the result prepares to 28x28), False if refused with ImageError."""
    with time_limit():
        try:
            img = load_image(data)
        except ImageError as exc:
            assert str(exc) and "\n" not in str(exc)
            return False
        _check_prepared(img)
        return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _tried["random"] += 1
    _load_or_refuse(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(
    seed=st.sampled_from(range(len(_SEEDS))),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
    insert=st.binary(max_size=64),
)
def test_mutated_images(seed, edits, cut, insert):
    b = bytearray(_SEEDS[seed])
    for pos, val in edits:
        b[pos % len(b)] = val
    if insert:
        at = edits[0][0] % len(b)
        b[at:at] = insert
    if cut is not None:
        b = b[: int(len(b) * cut)]
    _tried["mutated"] += 1
    if not _load_or_refuse(bytes(b)):
        _tried["mutated_refused"] += 1


def test_zz_record_property_counts():
    """Runs after the property tests in this file (pytest keeps file order)."""
    if _tried["random"] or _tried["mutated"]:
        record(
            "loader: hypothesis random + mutated bytes",
            random=_tried["random"],
            mutated=_tried["mutated"],
            mutated_refused=_tried["mutated_refused"],
        )


# ---------------------------------------------------------------- the CLI


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("FMNIST_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "fmnist_core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _assert_clean_stderr(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-2000:]
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert all(ln.startswith("error: ") for ln in lines), stderr[-2000:]
    return lines


def test_cli_predict_every_hostile_and_odd_file(tmp_path, tiny_run):
    bad = {**bad_files(), **damaged_files()}
    good = odd_valid_files()
    folder = tmp_path / "files"
    folder.mkdir()
    for name, data in {**bad, **good}.items():
        (folder / name).write_bytes(data)
    fifo = folder / "fifo.png"
    os.mkfifo(fifo)
    extra_bad = [str(fifo), str(folder / "missing.png"), str(folder)]
    paths = [str(folder / n) for n in [*bad, *good]] + extra_bad
    proc = _cli("predict", *paths, "--model", str(tiny_run / "model.keras"), "--json")
    assert proc.returncode == 1  # some files were bad
    lines = _assert_clean_stderr(proc.stderr)
    out = {r["path"]: r for r in json.loads(proc.stdout)}
    assert len(out) == len(paths)
    for name in good:
        r = out[str(folder / name)]
        assert "error" not in r, (name, r)
        assert 0 <= r["index"] < 10 and abs(sum(t["probability"] for t in r["top"])) <= 1.0001
    refused = [p for p, r in out.items() if "error" in r]
    for name in bad_files():
        assert "error" in out[str(folder / name)], name
    for p in extra_bad:
        assert "error" in out[p]
    assert len(lines) == len(refused)  # exactly one stderr line per refused file
    record(
        "cli predict: hostile + odd files in one call",
        tried=len(paths),
        refused=len(refused),
        classified=len(paths) - len(refused),
        tracebacks=0,
    )


@pytest.mark.parametrize(
    "name", ["text.png", "pdf.png", "empty.png", "bomb-png-50000.png", "bomb-gif-50000.gif", "cut-at-30%.jpeg"]
)
def test_cli_single_bad_file_exits_nonzero_with_one_line(tmp_path, tiny_run, name):
    path = tmp_path / name
    path.write_bytes(bad_files()[name])
    proc = _cli("predict", str(path), "--model", str(tiny_run / "model.keras"))
    assert proc.returncode != 0
    lines = _assert_clean_stderr(proc.stderr)
    assert len(lines) == 1 and str(path) in lines[0]
    assert proc.stdout == ""


def test_cli_single_odd_file_is_classified(tmp_path, tiny_run):
    path = tmp_path / "animated.gif"
    path.write_bytes(odd_valid_files()["animated.gif"])
    proc = _cli("predict", str(path), "--model", str(tiny_run / "model.keras"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""  # TensorFlow's start-up chatter does not reach the user
    (r,) = json.loads(proc.stdout)
    assert r["label"] and 0 <= r["index"] < 10


# ---------------------------------------------------------------- model files


def _rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes | None], extra: dict[str, bytes] | None = None) -> Path:
    """Copy a .keras zip, replacing (or dropping, with None) members and adding ``extra`` ones."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in replace:
                if replace[info.filename] is not None:
                    zout.writestr(info.filename, replace[info.filename])
            else:
                zout.writestr(info.filename, zin.read(info.filename))
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def _config_with_first_dense(src: Path, **changes) -> bytes:
    import zipfile

    cfg = json.loads(zipfile.ZipFile(src).read("config.json"))
    layer = next(la for la in cfg["config"]["layers"] if la["class_name"] == "Dense")
    layer.update(changes)
    return json.dumps(cfg).encode()


def hostile_models(tmp_path: Path, good: Path) -> dict[str, Path]:
    """Broken and foreign .keras files (name -> path). The markers show that no code from them ran."""
    import keras

    out: dict[str, Path] = {}
    data = good.read_bytes()

    def put(name: str, content: bytes) -> None:
        out[name] = tmp_path / name
        out[name].write_bytes(content)

    put("empty.keras", b"")
    put("text.keras", b"this is not a model\n")
    put("truncated-half.keras", data[: len(data) // 2])
    put("truncated-tail.keras", data[:-200])
    flipped = bytearray(data)
    for pos in range(len(data) // 3, len(data) // 3 + 4000, 500):
        flipped[pos] ^= 0xFF
    put("flipped.keras", bytes(flipped))
    (tmp_path / "folder.keras").mkdir()
    out["folder.keras"] = tmp_path / "folder.keras"
    out["junk-zip.keras"] = _rewrite_zip(
        good, tmp_path / "junk-zip.keras", {"config.json": None}, {"junk.txt": b"x" * 100}
    )
    out["config-not-json.keras"] = _rewrite_zip(good, tmp_path / "config-not-json.keras", {"config.json": b"{{{"})
    out["weights-missing.keras"] = _rewrite_zip(good, tmp_path / "weights-missing.keras", {"model.weights.h5": None})
    out["weights-junk.keras"] = _rewrite_zip(good, tmp_path / "weights-junk.keras", {"model.weights.h5": b"\0" * 4096})
    marker = tmp_path / "PWNED"
    # A layer that asks for os.system / builtins.eval instead of a Keras class.
    out["class-os-system.keras"] = _rewrite_zip(
        good,
        tmp_path / "class-os-system.keras",
        {
            "config.json": _config_with_first_dense(
                good, module="os", class_name="system", registered_name=None, config={"command": f"touch {marker}"}
            )
        },
    )
    out["class-eval.keras"] = _rewrite_zip(
        good,
        tmp_path / "class-eval.keras",
        {"config.json": _config_with_first_dense(good, module="builtins", class_name="eval", registered_name="eval")},
    )
    out["custom-class.keras"] = _rewrite_zip(
        good,
        tmp_path / "custom-class.keras",
        {"config.json": _config_with_first_dense(good, module="evil_pkg.layers", class_name="Backdoor")},
    )
    # A real Lambda layer whose Python code writes the marker when it runs.
    code = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    inp = keras.Input((28, 28, 1))
    lam = keras.layers.Lambda(eval(code), output_shape=(28, 28, 1))(inp)
    lam_model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(lam)))
    lam_model.save(tmp_path / "lambda.keras")
    out["lambda.keras"] = tmp_path / "lambda.keras"
    # A perfectly good Keras model of the wrong shape (CIFAR-like input, 5 classes).
    inp = keras.Input((32, 32, 3))
    wrong = keras.Model(inp, keras.layers.Dense(5)(keras.layers.Flatten()(inp)))
    wrong.save(tmp_path / "wrong-shape.keras")
    out["wrong-shape.keras"] = tmp_path / "wrong-shape.keras"
    marker.unlink(missing_ok=True)  # building the Lambda model above ran its code once
    return out


def test_hostile_model_files_are_refused(tmp_path, tiny_run, monkeypatch):
    from fmnist_core import registry

    models = hostile_models(tmp_path, tiny_run / "model.keras")
    for name, path in models.items():
        with time_limit(60), pytest.raises(registry.ModelError) as exc:
            registry.load_model(path)
        msg = str(exc.value)
        assert "\n" not in msg and len(msg) < 500, (name, msg)
    assert not (tmp_path / "PWNED").exists()  # no code from a model file ever ran
    assert "Lambda" in str(pytest.raises(registry.ModelError, registry.load_model, models["lambda.keras"]).value)
    # Defence in depth: without our own config check, Keras' safe mode still refuses every one of them.
    monkeypatch.setattr(registry, "_foreign_classes", lambda _config: set())
    for name in ["lambda.keras", "class-os-system.keras", "class-eval.keras", "custom-class.keras"]:
        with pytest.raises(registry.ModelError, match="cannot load"):
            registry.load_model(models[name])
    assert not (tmp_path / "PWNED").exists()
    # A zip bomb: members that unpack to more than the limit are refused before Keras opens them.
    monkeypatch.setattr(registry, "MAX_MODEL_BYTES", 1_000_000)
    bomb = _rewrite_zip(tiny_run / "model.keras", tmp_path / "bomb.keras", {}, {"padding.bin": b"\0" * 2_000_000})
    with pytest.raises(registry.ModelError, match="unpacks to more than"):
        registry.load_model(bomb)
    record("models: hostile .keras files refused", tried=len(models) + 1, refused=len(models) + 1, code_executed=0)


def test_cli_refuses_hostile_models_in_one_line(tmp_path, tiny_run):
    models = hostile_models(tmp_path, tiny_run / "model.keras")
    img = tmp_path / "shirt.png"
    garment().save(img)
    for name in ["truncated-half.keras", "flipped.keras", "junk-zip.keras", "class-os-system.keras", "lambda.keras"]:
        proc = _cli("predict", str(img), "--model", str(models[name]))
        assert proc.returncode == 1 and proc.stdout == "", name
        lines = _assert_clean_stderr(proc.stderr)
        assert len(lines) == 1, (name, proc.stderr)
    assert not (tmp_path / "PWNED").exists()
