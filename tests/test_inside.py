"""Inside the CNN (fmnist_core.inside): layer views, filters, channel top images, the test-set map.

The map is made once per test session, on the shipped ``fast`` model (the cheapest), over the
10,000 test images (``fast_map`` in conftest.py: the model's pass, with the positions shipped in
``models/``); the page and browser tests find it cached.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from conftest import ROOT

from fmnist_core import inside
from fmnist_core.evaluate import file_fingerprint, load_scores, predict_proba
from fmnist_core.model import build
from fmnist_core.ood import feature_function

FAST = ROOT / "models" / "fashion_cnn_fast.keras"


@pytest.mark.parametrize(
    ("architecture", "names"),
    [
        ("paper_cnn", ["conv1", "conv2", "conv3"]),
        ("wide_cnn", ["relu12", "relu22", "relu32"]),
        ("lean_cnn", ["relu11", "relu22", "relu32"]),
    ],
)
def test_blocks_are_the_last_relu_before_each_pool(architecture, names):
    assert [layer.name for layer in inside.block_layers(build(architecture))] == names


def test_layer_views_have_exact_shapes_and_match_the_layers(fast_model, dataset):
    import keras

    image = dataset.x_test[7]
    view = inside.Inside(fast_model).view(image)
    assert [(v.name, v.shape) for v in view.layers] == [
        ("relu11", (28, 28, 16)),
        ("relu22", (14, 14, 32)),
        ("relu32", (7, 7, 64)),
    ]
    x = image.reshape(1, 28, 28, 1).astype(np.float32) / 255
    for v in view.layers:
        direct = np.asarray(keras.Model(fast_model.inputs, fast_model.get_layer(v.name).output)(x))[0]
        assert v.maps.shape == (16, *v.shape[:2])
        np.testing.assert_allclose(v.maps, np.moveaxis(direct[:, :, v.channels], -1, 0), atol=1e-5)
        peaks = direct.max(axis=(0, 1))
        assert list(v.channels) == list(np.argsort(-peaks, kind="stable")[:16])  # strongest first
        assert v.fired == pytest.approx(float(np.mean(direct > 0)))
    assert view.dense_name == "fc" and view.dense_size == 128 and view.features.shape == (128,)
    assert list(view.dense_values) == sorted(view.dense_values, reverse=True)
    np.testing.assert_allclose(view.probs, predict_proba(fast_model, image[None])[0], atol=1e-5)


def test_first_layer_filters_are_its_kernels(fast_model):
    filters = inside.Inside(fast_model).filters()
    kernel = fast_model.get_layer("conv11").get_weights()[0]
    assert filters.shape == (16, 3, 3)
    np.testing.assert_array_equal(filters[5], kernel[:, :, 0, 5])


def test_a_flip_tta_model_answers_with_the_mirror_averaged_features(dataset):
    from fmnist_core.registry import load_model

    best = load_model(ROOT / "models" / "fashion_cnn_best.keras")  # the flip-TTA wrapper
    probe = inside.Inside(best)
    view = probe.view(dataset.x_test[3])
    np.testing.assert_allclose(view.features, feature_function(best)(dataset.x_test[3:4])[0], atol=1e-4)
    np.testing.assert_allclose(view.probs, predict_proba(best, dataset.x_test[3:4])[0], atol=1e-5)
    assert view.layers[0].shape == (28, 28, 32)


def test_top_images_are_the_argmax_over_the_set(fast_map, fast_model, dataset):
    import keras

    layer, channel = "relu22", 5
    top = fast_map.top_images(layer, channel, k=16)
    acts = keras.Model(fast_model.inputs, fast_model.get_layer(layer).output)
    some = np.arange(0, 10_000, 25)  # 400 images: enough to check the maxima are the layer's own
    direct = np.asarray(acts(dataset.x_test[some, :, :, None].astype(np.float32) / 255))[..., channel].max(axis=(1, 2))
    cached = fast_map.channel_max[1][some, channel].astype(np.float32)
    np.testing.assert_allclose(cached, direct, rtol=2e-3, atol=2e-3)  # stored as float16
    column = fast_map.channel_max[1][:, channel]
    assert len(top) == 16 and column[top[0]] == column.max()
    assert set(column[top]) >= set(np.sort(column)[-15:])  # the 16 highest (ties aside)


def test_the_map_keeps_feature_space_neighbours(fast_map):
    assert fast_map.xy.shape == (10_000, 2) and fast_map.features.shape == (10_000, 128)
    on_map, in_features = fast_map.neighbours(10, "map"), fast_map.neighbours(10, "features")
    shared = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(on_map, in_features, strict=True)])
    # Chance is 10 / 9,999 = 0.001; a 2-D map of 128-D features keeps a good share, not all.
    assert shared > 0.2, shared


def test_a_test_image_placed_on_the_map_lands_on_its_own_point(fast_map, fast_model, dataset):
    probe = inside.Inside(fast_model)
    idx = [0, 123, 9_999]
    placed = fast_map.place(probe.features(dataset.x_test[idx]))
    np.testing.assert_allclose(placed, fast_map.xy[idx], atol=1e-4)
    # A new input (a test image shifted by 2 pixels) lands among its neighbours' points.
    shifted = np.roll(dataset.x_test[123], 2, axis=1)
    point = fast_map.place(probe.view(shifted).features)[0]
    lo, hi = fast_map.xy.min(0), fast_map.xy.max(0)
    assert np.all(point >= lo) and np.all(point <= hi)


def test_the_map_is_cached_beside_the_scores(fast_map, dataset):
    fp = file_fingerprint(FAST)
    assert inside.map_path(fp).parent.name == "scores"
    t0 = time.perf_counter()
    again = inside.load_or_compute_map(FAST, dataset.x_test, load_model=_never)
    assert time.perf_counter() - t0 < 3.0
    np.testing.assert_array_equal(again.xy, fast_map.xy)
    assert load_scores(fp, "fashion", 10_000) is not None  # the same pass gave Evaluate its scores


def test_a_damaged_or_foreign_map_file_counts_as_absent(tmp_path, fast_map):
    path = tmp_path / "m.npz"
    inside.save_map(fast_map, path)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left
    assert inside.load_map(path, 10_000) is not None
    assert inside.load_map(path, 9_999) is None  # another test set
    path.write_bytes(path.read_bytes()[:5000])
    assert inside.load_map(path) is None
    with pytest.raises(ValueError):
        inside.map_path("../etc")


def test_a_small_set_gets_a_map_and_progress(fast_model, dataset):
    seen = []
    tm = inside.compute_map(fast_model, dataset.x_test[:300], progress=lambda f, _t: seen.append(f))
    assert tm.xy.shape == (300, 2) and [m.shape for m in tm.channel_max] == [(300, 16), (300, 32), (300, 64)]
    assert seen[0] < 0.5 and seen[-1] == 1.0 and seen == sorted(seen)
    assert inside.embed(tm.features, "pca").shape == (300, 2)


def _never():
    raise AssertionError("the cached map must not load the model")


@pytest.mark.parametrize("model", sorted((ROOT / "models").glob("*.keras")), ids=lambda p: p.stem)
def test_every_shipped_model_ships_its_map_positions(model):
    xy = inside.load_shipped_xy(model, 10_000)
    assert xy is not None, f"missing or stale: python -m scripts.ship_maps models/{model.name}"


def test_shipped_positions_replace_the_embedding_and_others_are_ignored(tmp_path, monkeypatch, fast_model, dataset):
    model = tmp_path / "m.keras"
    shutil.copy(FAST, model)
    shutil.copy(inside.shipped_map_path(FAST), inside.shipped_map_path(model))
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))

    def no_embedding(*_a, **_k):
        raise AssertionError("shipped positions must be used, not computed")

    monkeypatch.setattr(inside, "embed", no_embedding)
    seen = []
    tm = inside.load_or_compute_map(model, dataset.x_test, lambda: fast_model, progress=lambda _f, t: seen.append(t))
    np.testing.assert_array_equal(tm.xy, inside.load_shipped_xy(FAST, 10_000))
    assert tm.features.shape == (10_000, 128) and "shipped" in seen[-1]
    assert inside.load_map(inside.map_path(file_fingerprint(model)), 10_000) is not None  # cached as usual
    # Positions of another model file, of another test set, or a damaged file: not used.
    shutil.copy(inside.shipped_map_path(ROOT / "models" / "fashion_cnn_paper.keras"), inside.shipped_map_path(model))
    assert inside.load_shipped_xy(model, 10_000) is None
    shutil.copy(inside.shipped_map_path(FAST), inside.shipped_map_path(model))
    assert inside.load_shipped_xy(model, 9_999) is None
    inside.shipped_map_path(model).write_bytes(inside.shipped_map_path(FAST).read_bytes()[:3000])
    assert inside.load_shipped_xy(model, 10_000) is None


def test_cli_writes_every_png_and_refuses_a_bad_image(fast_map, tmp_path):  # noqa: ARG001 (map cached)
    import subprocess
    import sys

    from PIL import Image

    photo = next((ROOT / "tests" / "fixtures" / "photos" / "pants").glob("*.jpg"))
    out = tmp_path / "handout"
    cmd = [sys.executable, "-m", "fmnist_core", "inside", str(photo), "--model", "fashion_cnn_fast", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names = ["input", "block1_relu11", "block2_relu22", "block3_relu32", "dense", "filters", "map"]
    assert done.stdout.split() == [str(out / f"{n}.png") for n in names]
    for n in names:
        with Image.open(out / f"{n}.png") as img:
            assert img.format == "PNG" and min(img.size) > 100
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    done = subprocess.run([*cmd[:4], str(bad), "--no-map", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error:")


def test_bench_reports_every_figure(capsys, dataset):  # noqa: ARG001 (data present)
    import argparse
    import json
    import os

    from fmnist_core.bench import inside as bench_inside

    before = os.environ.get("FMNIST_CACHE_DIR")
    args = argparse.Namespace(model="fashion_cnn_fast", views=3, map_images=300, json=True)
    assert bench_inside.run(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["map_points"] == 300 and result["view_ms_p50"] > 0 and result["map_later_open_s"] < 3
    assert "family" in result["cpu"]
    assert os.environ.get("FMNIST_CACHE_DIR") == before  # its temporary cache folder is gone again
