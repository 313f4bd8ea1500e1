"""Take a model anywhere: a zip with the model as ONNX, LiteRT (float or quantized) or Keras,
its JSON card, the preprocessing contract and a short example script that classifies a PNG.

Conversion goes through Keras' own ``model.export``: ``format="onnx"`` (Keras drives the
``tf2onnx`` converter, which needs ``tf2onnx`` + ``onnx`` installed: requirements-export.txt)
and ``format="litert"`` (TensorFlow's own TFLiteConverter, installed with TensorFlow; the
quantized variants pass converter settings through the same call). No separate converter is
needed; ``keras`` is the ``.keras`` file itself (``model.export`` has no such format).

What the file computes: the whole Keras graph, so a flip-TTA model (``model.with_flip_tta``:
a mirror Dense layer, the backbone twice, an average) exports as the averaged answer it gives.
What it leaves out, said in the card: the photo steps (segmentation etc., pure Python), the
"none of the ten" rule for photos and any photo head (separate files beside the backbone).

Every float export is checked at export time against Keras on test images, every quantized one
measured on the whole 10,000-image test set; the figures go in the card. Output: written to a
temporary file in the target folder, then renamed, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import archive
from .registry import ModelError, ModelRef, load_model, model_class_names, resolve

FORMATS = ("keras", "onnx", "litert")
QUANTIZE = ("dynamic", "int8")  # dynamic range (int8 weights, float activations); int8 weights + activations
SUFFIX = {"keras": ".keras", "onnx": ".onnx", "litert": ".tflite"}
CHECK_IMAGES = 1000  # test images a float export is compared on at export time
BATCH = 500  # images per interpreter call (activations of 500 images stay ~50 MB)
CALIBRATION_IMAGES = 500  # training images the int8 converter sees to set activation ranges
INSTALL = "pip install -r requirements-export.txt"
Progress = Callable[[str], None]


class ExportError(RuntimeError):
    """The export cannot be made; the message is one line that says how to fix it."""


# ---------------------------------------------------------------- the contract and the examples

CONTRACT = """Preprocessing contract of {name}
{underline}

Input:  float32 tensor (N, 28, 28, 1): N 28x28 grayscale images, one channel, pixels in [0, 1]
        (uint8 value / 255), a LIGHT garment on a BLACK background, as in Fashion-MNIST.
Output: float32 tensor (N, 10): softmax probabilities in this class order:
        {classes}
        The answer is the index of the largest probability.
{computes}
A 28x28 grayscale PNG (light on black, e.g. a Fashion-MNIST image or the app's "28x28 input")
is used as it is: that is what the example script does, and what the app does with such a file.
A drawing (light strokes on black) is cropped to its strokes (pixels brighter than 20), scaled
so its longest edge is 28 px (Lanczos) and pasted centred on a black 28x28 square.

A photo goes through the app's photo steps first (fmnist_core/preprocess.py, prepare_photo;
`python -m fmnist_core predict PHOTO` runs them):
 1. decode upright (EXIF), transparency onto white, longest edge at most 1024 px, box-averaged
    to at most 640 px;
 2. find the garment: GrabCut segmentation seeded from the borders, keeping the largest, most
    central item; everything outside its mask becomes white (dark, for a light garment on a
    dark background);
 3. level the background: per colour channel, the background colour (median of the corners)
    becomes pure white (or pure black);
 4. grayscale (ITU-R 601 luma);
 5. trim to the garment: crop the border within 5% of the background colour;
 6. resize so the longest edge is 28 px (Lanczos), sharpen (unsharp mask, sigma 1, amount 0.5);
 7. pad to 28x28, centred, with the background colour;
 8. negate if the background is light (the dataset is a light garment on black);
 9. stretch so the brightest pixel is 255;
10. flat lay: squeeze a segmented photo to 0.9 of its width, centred.
Then / 255. For photos the app also answers "none of the ten classes" when the answer is unsure
(top probability under 20%, a Bag under 85%, or a garment far from its class's training images
in feature space): that rule is not in this file (see "left_out" in {name}.json).
"""

_EXAMPLE_HEAD = '''"""Classify a 28x28 PNG with {file} as the app does: python {script} IMAGE.png

Needs: pip install {needs} pillow numpy. The PNG must be 28x28 grayscale, a light garment on
black (a Fashion-MNIST image, or the app's 28x28 input); a photo needs the steps in PREPROCESSING.txt.
"""
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image
here = Path(__file__).parent
names = json.loads((here / "{name}.json").read_text())["class_names"]
img = Image.open(sys.argv[1])
if img.size != (28, 28) or img.mode != "L" or np.asarray(img)[[0, 0, -1, -1], [0, -1, 0, -1]].mean() > 127:
    sys.exit("not a 28x28 grayscale image, light on black: see PREPROCESSING.txt for photos")
x = np.asarray(img, np.float32).reshape(1, 28, 28, 1) / 255.0
'''

_EXAMPLE_TAIL = """i = int(np.argmax(probs))
print(f"{names[i]} ({probs[i]:.1%})")
"""

_RUN = {
    "onnx": (
        "onnxruntime",
        """import onnxruntime as ort
session = ort.InferenceSession(str(here / "{file}"), providers=["CPUExecutionProvider"])
probs = session.run(None, {{session.get_inputs()[0].name: x}})[0][0]
""",
    ),
    "litert": (
        "ai-edge-litert (or tensorflow)",
        """try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    import tensorflow as tf
    Interpreter = tf.lite.Interpreter
net = Interpreter(model_path=str(here / "{file}"))
net.allocate_tensors()
net.set_tensor(net.get_input_details()[0]["index"], x)
net.invoke()
probs = net.get_tensor(net.get_output_details()[0]["index"])[0]
""",
    ),
    "keras": (
        "keras tensorflow",
        """import keras
probs = keras.models.load_model(here / "{file}", compile=False).predict(x, verbose=0)[0]
""",
    ),
}


def example_script(fmt: str, name: str, file: str) -> str:
    """The short script of the archive that classifies a 28x28 PNG with the exported file."""
    needs, run = _RUN[fmt]
    script = f"classify_{fmt}.py"
    head = _EXAMPLE_HEAD.format(file=file, script=script, needs=needs, name=name)
    return head + run.format(file=file) + _EXAMPLE_TAIL


def contract_text(name: str, class_names: tuple[str, ...], tta: bool) -> str:
    """PREPROCESSING.txt: the input the file expects and the steps that make it from a photo."""
    computes = (
        "\nThe file includes the flip test-time augmentation: it averages the answers on the image and\n"
        "on its mirror image, as the app does.\n"
        if tta
        else ""
    )
    return CONTRACT.format(
        name=name, underline="=" * (len(name) + 27), classes=", ".join(class_names), computes=computes
    )


# ---------------------------------------------------------------- running exported files


def onnx_probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    """(N, 10) probabilities of an ONNX file under onnxruntime, for float32 (N, 28, 28, 1) input."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)])


def litert_probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    """(N, 10) probabilities of a LiteRT file under its interpreter (ai_edge_litert, else TensorFlow's)."""
    if _installed("ai_edge_litert"):
        from ai_edge_litert.interpreter import Interpreter
    else:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    net = Interpreter(model_path=str(path))
    inp, out = net.get_input_details()[0]["index"], net.get_output_details()[0]["index"]
    results, size = [], None
    for i in range(0, len(x), BATCH):
        batch = x[i : i + BATCH]
        if len(batch) != size:  # the file says batch 1; one resize per batch size
            size = len(batch)
            net.resize_tensor_input(inp, list(batch.shape))
            net.allocate_tensors()
        net.set_tensor(inp, batch)
        net.invoke()
        results.append(net.get_tensor(out).copy())
    return np.concatenate(results)


def file_probabilities(fmt: str, path: Path, x: np.ndarray) -> np.ndarray:
    """Probabilities of an exported ``onnx`` or ``litert`` file."""
    return onnx_probabilities(path, x) if fmt == "onnx" else litert_probabilities(path, x)


# ---------------------------------------------------------------- conversion


def check_tools(fmt: str, quantize: str | None = None) -> None:
    """Raise ExportError (saying what to install) if the format or its tools are missing."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise ExportError(f"unknown quantization {quantize!r}: choose one of {', '.join(QUANTIZE)}")
    if quantize is not None and fmt != "litert":
        raise ExportError(f"--quantize applies to LiteRT only, not to {fmt}: use --format litert")
    if fmt == "onnx":
        missing = [m for m in ("tf2onnx", "onnx") if not _installed(m)]
        if missing:
            raise ExportError(f"ONNX export needs {' and '.join(missing)}: {INSTALL} (or pip install tf2onnx onnx)")


def _installed(module: str) -> bool:
    """True if ``module`` can be imported (a ``None`` in sys.modules blocks it, as Python's import does)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _convert(model, fmt: str, path: Path, quantize: str | None, calibration: np.ndarray | None) -> str:
    """Write ``model`` as ``fmt`` to ``path`` with Keras' ``model.export``; return the tool's name."""
    model(np.zeros((1, 28, 28, 1), np.float32))  # the ONNX path refuses a model never called
    if fmt == "onnx":
        import tf2onnx

        model.export(str(path), format="onnx", verbose=False)
        return f"keras {_version('keras')} model.export(format='onnx') via tf2onnx {tf2onnx.__version__}"
    import tensorflow as tf

    settings: dict[str, Any] = {}
    if quantize:
        settings["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        if calibration is None:
            raise ExportError("int8 quantization needs training images to calibrate: install the dataset (make data)")

        def representative():
            for i in range(len(calibration)):
                yield [calibration[i : i + 1]]

        settings["representative_dataset"] = representative
        # Integer kernels only; input and output stay float32, so the same example script works.
        settings["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    model.export(str(path), format="litert", verbose=False, **settings)
    return f"keras {_version('keras')} model.export(format='litert'), TensorFlow {tf.__version__} TFLiteConverter"


def _version(module: str) -> str:
    return __import__(module).__version__


def _test_images(progress: Progress):
    """The test set (for the checks in the card), or None with a note when the dataset is missing."""
    from .data import DataError, load_dataset

    try:
        return load_dataset("fashion")
    except DataError as exc:
        progress(f"no check against the test set: {str(exc).splitlines()[0]}")
        return None


def _measure(fmt: str, path: Path, keras_model, ds, quantize: str | None, progress: Progress) -> dict[str, Any]:
    """How the exported file compares with the Keras model: class agreement, probability gap, accuracy."""
    from .evaluate import predict_proba

    n = len(ds.x_test) if quantize else CHECK_IMAGES
    progress(f"checking the {fmt} file against Keras on {n:,} test images ...")
    x_u8 = ds.x_test[:n]
    ref = predict_proba(keras_model, x_u8)
    got = file_probabilities(fmt, path, x_u8.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0)
    y = ds.y_test[:n]
    out = {
        "test_images": int(n),
        "same_class": int((got.argmax(1) == ref.argmax(1)).sum()),
        "max_probability_difference": float(np.abs(got - ref).max()),
        "runtime": "onnxruntime" if fmt == "onnx" else "LiteRT interpreter",
    }
    if quantize:
        acc_keras, acc_file = float((ref.argmax(1) == y).mean()), float((got.argmax(1) == y).mean())
        out.update(
            test_accuracy_float=acc_keras,
            test_accuracy_quantized=acc_file,
            accuracy_change_points=round(100 * (acc_file - acc_keras), 2),
        )
    return out


# ---------------------------------------------------------------- the archive


def export_archive(
    ref: ModelRef, fmt: str, quantize: str | None = None, progress: Progress | None = None
) -> tuple[str, bytes]:
    """(file name, zip bytes) of ``ref`` exported as ``fmt``: model file, card, contract, example.

    Raises ExportError (one line) for an unknown format, a missing tool or a damaged model.
    """
    say = progress or (lambda _msg: None)
    check_tools(fmt, quantize)
    base = archive.archive_name(ref)
    tag = fmt + (f"-{quantize}" if quantize else "")
    folder = f"{base}-{tag}"
    meta = ref.meta()
    names = model_class_names(ref)
    say(f"loading {ref.label} ...")
    try:
        model = load_model(ref.path)
    except ModelError as exc:
        raise ExportError(str(exc)) from None
    from .explain import backbone_of

    tta = backbone_of(model) is not model
    file = f"{base}{SUFFIX[fmt]}"
    card: dict[str, Any] = {
        **meta,
        "class_names": list(names),
        "export": {
            "format": fmt,
            "quantize": quantize,
            "file": file,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "input": {"shape": [None, 28, 28, 1], "dtype": "float32", "range": [0, 1], "polarity": "light on black"},
            "output": {"shape": [None, 10], "dtype": "float32", "meaning": "softmax probabilities, class_names order"},
            "includes": ["flip test-time augmentation (mean of image and mirror image)"] if tta else [],
            "left_out": [
                "the photo steps (segmentation, trimming, ...): see PREPROCESSING.txt",
                "the 'none of the ten classes' rule the app applies to photos",
                "any photo head (models/NAME.npz): a separate file, not part of this network",
            ],
        },
    }
    contract = contract_text(base, names, tta)
    if fmt == "keras":
        card["export"]["tool"] = f"the .keras file as saved (keras {_version('keras')})"
        say("packing the .keras file ...")
        extra = [("PREPROCESSING.txt", contract), ("classify_keras.py", example_script("keras", base, file))]
        return f"{folder}.zip", archive.model_archive(ref, extra=extra, meta=card)
    ds = _test_images(say)
    calibration = None
    if quantize == "int8" and ds is not None:
        calibration = ds.x_train[:CALIBRATION_IMAGES].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    with tempfile.TemporaryDirectory(prefix="fmnist-export-") as tmp:
        path = Path(tmp) / file
        say(f"converting to {tag} with Keras' model.export ...")
        try:
            card["export"]["tool"] = _convert(model, fmt, path, quantize, calibration)
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise anything; the user gets one line
            first = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ExportError(f"the {fmt} conversion failed: {first}") from None
        card["export"]["check"] = None if ds is None else _measure(fmt, path, model, ds, quantize, say)
        model_bytes = path.read_bytes()
    card["export"]["bytes"] = len(model_bytes)
    members: list[tuple[str, bytes | str]] = [
        (file, model_bytes),
        (f"{base}.json", json.dumps(card, indent=1, default=str)),
        ("PREPROCESSING.txt", contract),
        (f"classify_{fmt}.py", example_script(fmt, base, file)),
    ]
    return f"{folder}.zip", archive.pack([(f"{folder}/{n}", c) for n, c in members])


def check_destination(out: Path, default_name: str = "model.zip") -> Path:
    """The file to write (a folder gets ``default_name`` inside); ExportError if it cannot be written."""
    out = Path(out)
    target = out / default_name if out.is_dir() else out
    parent = target.parent
    if not parent.is_dir():
        raise ExportError(f"folder {parent} does not exist: create it first or choose another --out")
    if target.is_dir():
        raise ExportError(f"{target} is a folder: give a file name such as {target / default_name}")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ExportError(f"cannot write to {parent} ({exc.strerror or exc}): choose another --out") from None
    os.close(fd)
    os.unlink(probe)
    return target


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, then rename it: never half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def export(
    spec: str, fmt: str, out: Path, quantize: str | None = None, progress: Progress | None = None
) -> tuple[Path, dict[str, Any]]:
    """Export the model named by ``spec`` (shipped name, run id, path) to the zip ``out``.

    Returns the written path and the export section of the card. Everything that can be
    checked cheaply (format, tools, destination, the model file) is checked before converting.
    """
    check_tools(fmt, quantize)
    try:
        ref = resolve(spec)
    except ModelError as exc:
        raise ExportError(str(exc)) from None
    tag = fmt + (f"-{quantize}" if quantize else "")
    target = check_destination(out, f"{archive.archive_name(ref)}-{tag}.zip")
    _, data = export_archive(ref, fmt, quantize, progress)
    write_atomic(target, data)
    return target, card_of(data)["export"]


def card_of(data: bytes) -> dict[str, Any]:
    """The JSON card inside an export archive (the ``.json`` member)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        name = next(n for n in z.namelist() if n.endswith(".json"))
        return json.loads(z.read(name))
