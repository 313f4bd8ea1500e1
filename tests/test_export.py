"""Exports give the Keras answers: ONNX and LiteRT files of a shipped model checked with
onnxruntime and TensorFlow's LiteRT interpreter on 2,000 test images; the quantized card states
its measured accuracy change; the example scripts give the app's class; bad inputs are one line
and leave nothing behind; every run writes TensorBoard events; the Train page downloads a format.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import screenshot
from PIL import Image
from test_browser_classroom import select_history
from test_cli import cli

from fmnist_core import export, registry
from fmnist_core.bench.browser import wait_for_app

ROOT = Path(__file__).resolve().parent.parent
MODEL = "fashion_cnn_best"  # wide_cnn inside the flip-TTA wrapper: the hardest shipped graph
N_CHECK = 2000


def unpack(zip_path: Path, dest: Path) -> Path:
    """Extract an export zip; return its one top folder."""
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
        (top,) = {n.split("/")[0] for n in z.namelist()}
    return dest / top


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The shipped model as ONNX (through the CLI), LiteRT and Keras; the fast model as quantized LiteRT."""
    out = tmp_path_factory.mktemp("exports")
    r = cli("export", MODEL, "--format", "onnx", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert "converting" in r.stderr and "wrote" in r.stderr  # progress lines
    folders = {"onnx": unpack(Path(json.loads(r.stdout)["path"]), out)}
    for key, spec, fmt, quantize in (
        ("litert", MODEL, "litert", None),
        ("keras", MODEL, "keras", None),
        ("litert-dynamic", "fashion_cnn_fast", "litert", "dynamic"),
    ):
        path, _ = export.export(spec, fmt, out, quantize)
        folders[key] = unpack(path, out)
    return folders


def card(folder: Path) -> dict:
    (path,) = folder.glob("*.json")
    return json.loads(path.read_text())


def test_onnx_and_litert_give_the_keras_answers(exported, dataset):
    import onnxruntime as ort
    import tensorflow as tf

    from fmnist_core.evaluate import predict_proba

    x_u8 = dataset.x_test[:N_CHECK]
    x = x_u8.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    keras_p = predict_proba(registry.load_model(registry.resolve(MODEL).path), x_u8)

    session = ort.InferenceSession(str(exported["onnx"] / f"{MODEL}.onnx"), providers=["CPUExecutionProvider"])
    onnx_p = session.run(None, {session.get_inputs()[0].name: x})[0]

    net = tf.lite.Interpreter(model_path=str(exported["litert"] / f"{MODEL}.tflite"))
    net.resize_tensor_input(net.get_input_details()[0]["index"], list(x.shape))
    net.allocate_tensors()
    net.set_tensor(net.get_input_details()[0]["index"], x)
    net.invoke()
    lite_p = net.get_tensor(net.get_output_details()[0]["index"])

    for name, probs in (("onnx", onnx_p), ("litert", lite_p)):
        same = int((probs.argmax(1) == keras_p.argmax(1)).sum())
        gap = float(np.abs(probs - keras_p).max())
        print(f"{name}: same class on {same}/{N_CHECK}, max probability difference {gap:.2e}")
        assert same == N_CHECK and gap < 1e-4, name
        check = card(exported[name])["export"]["check"]  # the export's own check says the same
        assert check["same_class"] == check["test_images"] and check["max_probability_difference"] < 1e-4


def test_quantized_card_states_the_measured_accuracy_change(exported, dataset):
    folder = exported["litert-dynamic"]
    meta = card(folder)["export"]
    check = meta["check"]
    assert meta["quantize"] == "dynamic" and check["test_images"] == 10000
    probs = export.litert_probabilities(
        folder / "fashion_cnn_fast.tflite", dataset.x_test.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    )
    accuracy = float((probs.argmax(1) == dataset.y_test).mean())
    assert accuracy == pytest.approx(check["test_accuracy_quantized"], abs=1e-9)
    float_acc = json.loads(registry.resolve("fashion_cnn_fast").meta_path.read_text())["test_accuracy"]
    assert check["test_accuracy_float"] == pytest.approx(float_acc, abs=1e-3)
    expected = round(100 * (check["test_accuracy_quantized"] - check["test_accuracy_float"]), 2)
    assert check["accuracy_change_points"] == expected
    print(f"quantized (dynamic range) fast model: {check['test_accuracy_float']:.2%} -> {accuracy:.2%}")
    assert (folder / "fashion_cnn_fast.tflite").stat().st_size < 0.4 * registry.resolve(
        "fashion_cnn_fast"
    ).path.stat().st_size


def test_archive_holds_card_contract_and_says_what_it_leaves_out(exported):
    for key, folder in exported.items():
        meta = card(folder)
        assert meta["class_names"][0] == "T-shirt/top" and len(meta["class_names"]) == 10
        assert meta["export"]["input"] == {
            "shape": [None, 28, 28, 1],
            "dtype": "float32",
            "range": [0, 1],
            "polarity": "light on black",
        }
        assert any("none of the ten" in item for item in meta["export"]["left_out"]), key
        text = (folder / "PREPROCESSING.txt").read_text()
        assert "(N, 28, 28, 1)" in text and "[0, 1]" in text and "LIGHT garment on a BLACK" in text
        assert "GrabCut" in text and "negate" in text
    assert "flip test-time augmentation" in card(exported["onnx"])["export"]["includes"][0]
    assert card(exported["litert-dynamic"])["export"]["includes"] == []  # the fast model has no TTA


def test_example_scripts_give_the_apps_class(exported, dataset, tmp_path):
    from fmnist_core.predict import Predictor
    from fmnist_core.preprocess import load_image

    pngs = []
    for i in (0, 1, 2):
        path = tmp_path / f"test{i}.png"
        Image.fromarray(dataset.x_test[i], "L").save(path)
        pngs.append(path)
    predictor = Predictor.from_spec(MODEL)
    app = {p: predictor.predict_image(load_image(p)).label for p in pngs}
    for key in ("onnx", "litert", "keras"):
        (script,) = exported[key].glob("classify_*.py")
        assert len(script.read_text().splitlines()) <= 30, script
        for png in pngs if key != "keras" else pngs[:1]:  # keras: one run (imports TensorFlow)
            r = subprocess.run([sys.executable, str(script), str(png)], capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr
            assert r.stdout.split(" (")[0] == app[png], (key, png, r.stdout)
    # Without ai_edge_litert the LiteRT script falls back to TensorFlow's own interpreter.
    script = exported["litert"] / "classify_litert.py"
    code = "import runpy, sys; sys.modules['ai_edge_litert'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    r = subprocess.run(
        [sys.executable, "-c", code, str(script), str(pngs[0])], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 and r.stdout.split(" (")[0] == app[pngs[0]], r.stderr
    photo = tmp_path / "photo.png"
    Image.new("RGB", (300, 200), (240, 240, 240)).save(photo)
    r = subprocess.run(
        [sys.executable, str(exported["onnx"] / "classify_onnx.py"), str(photo)], capture_output=True, text=True
    )
    assert r.returncode != 0 and "PREPROCESSING.txt" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _one_line_and_nothing_left(folder: Path, before: set[str], call) -> str:
    with pytest.raises(export.ExportError) as err:
        call()
    msg = str(err.value)
    assert "\n" not in msg and msg, msg
    assert {p.name for p in folder.iterdir()} == before, "something was left behind"
    return msg


def test_bad_inputs_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(registry.resolve("fashion_cnn_fast").path.read_bytes()[:50_000])
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a model at all")
    target = out / "m.zip"
    for spec in (damaged, garbage):
        msg = _one_line_and_nothing_left(out, set(), lambda s=spec: export.export(str(s), "litert", target))
        assert "re-download" in msg or "retrain" in msg
    msg = _one_line_and_nothing_left(out, set(), lambda: export.export("fashion_cnn_fast", "tflite", target))
    assert "keras, onnx, litert" in msg
    msg = _one_line_and_nothing_left(
        out, set(), lambda: export.export("fashion_cnn_fast", "onnx", out / "no" / "m.zip")
    )
    assert "does not exist" in msg
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # root ignores folder modes: use a folder no one may write to
        read_only = Path("/sys")
    msg = _one_line_and_nothing_left(
        read_only,
        {p.name for p in read_only.iterdir()},
        lambda: export.export("fashion_cnn_fast", "onnx", read_only / "m.zip"),
    )
    assert "cannot write" in msg
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if tf2onnx were not installed
    msg = _one_line_and_nothing_left(out, set(), lambda: export.export("fashion_cnn_fast", "onnx", target))
    assert "pip install" in msg and "tf2onnx" in msg
    r = cli("export", str(garbage), "--format", "onnx", "--out", str(target))
    lines = r.stderr.splitlines()  # progress lines, then exactly one error line
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[-1].startswith("error: ") and sum(line.startswith("error") for line in lines) == 1, lines
    assert not any(out.iterdir())


def test_every_run_writes_tensorboard_events(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    metrics = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    logs = tiny_run / "tensorboard"
    train = EventAccumulator(str(logs / "train"))
    train.Reload()
    val = EventAccumulator(str(logs / "validation"))
    val.Reload()
    tags = train.Tags()
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(tags["tensors"]), tags
    assert train.Graph() is not None  # the traced train step
    assert "keras" in tags["tensors"]  # Keras' own model summary (TensorBoard's conceptual graph)

    def series(acc, tag):
        return [float(make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]

    assert series(train, "epoch_loss") == pytest.approx([m["loss"] for m in metrics], rel=1e-5)
    assert series(train, "epoch_learning_rate") == pytest.approx([m["lr"] for m in metrics], rel=1e-5)
    assert series(val, "epoch_accuracy") == pytest.approx([m["val_accuracy"] for m in metrics], rel=1e-5)
    assert series(val, "epoch_loss") == pytest.approx([m["val_loss"] for m in metrics], rel=1e-5)


@pytest.mark.browser
@pytest.mark.slow
def test_train_page_downloads_the_chosen_format(app_server, page):
    page.goto(app_server + "/Train", timeout=180_000)
    page.get_by_role("button", name="Start training").wait_for(timeout=180_000)
    wait_for_app(page, timeout=180_000)
    page.get_by_text("tensorboard --logdir").first.wait_for()
    # The server's runs folder is shared with other modules: pick the finished tiny run (it has a model).
    select_history(page, "tiny")
    wait_for_app(page)
    box = page.locator(".st-key-train_download_format")
    box.scroll_into_view_if_needed()
    box.get_by_role("combobox").click()
    page.get_by_role("option", name="ONNX", exact=True).click()
    wait_for_app(page)
    # The button's label names the format, so waiting for it proves the rerun after the choice has
    # rendered; clicking earlier downloads the previous format's zip.
    button = page.locator(".st-key-train_download").get_by_role("button", name="Download ONNX (.zip)")
    button.wait_for(timeout=60_000)
    with page.expect_download(timeout=180_000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "tiny-onnx.zip"
    path = Path(download.path())
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert set(names) == {f"tiny-onnx/tiny.{n}" for n in ("onnx", "json")} | {
        "tiny-onnx/PREPROCESSING.txt",
        "tiny-onnx/classify_onnx.py",
    }
    screenshot(page, "train-download-onnx")
