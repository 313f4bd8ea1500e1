"""The report's CNN layer by layer, the presets and the config contract."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.config import PRESETS, TrainConfig, preset
from fmnist_core.model import build, parameter_count, with_flip_tta


def test_paper_cnn_layers_match_the_report():
    m = build("paper_cnn")
    convs = [layer for layer in m.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [64, 128, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" and c.activation.__name__ == "relu" for c in convs)
    drops = [layer.rate for layer in m.layers if layer.__class__.__name__ == "Dropout"]
    assert drops == pytest.approx([0.2, 0.3, 0.4, 0.5])
    kinds = [layer.__class__.__name__ for layer in m.layers]
    assert kinds.count("BatchNormalization") == 4 and kinds.count("MaxPooling2D") == 3
    dense = [layer for layer in m.layers if layer.__class__.__name__ == "Dense"]
    assert [d.units for d in dense] == [128, 10] and dense[-1].activation.__name__ == "softmax"
    assert m.input_shape == (None, 28, 28, 1) and m.output_shape == (None, 10)
    assert parameter_count(m) == {"total": 668_298, "trainable": 667_146}


def test_flip_tta_wrapper_is_exactly_the_mean_of_both_views():
    backbone = build("wide_cnn")
    wrapped = with_flip_tta(backbone)
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    expected = (np.asarray(backbone(x)) + np.asarray(backbone(x[:, :, ::-1]))) / 2
    assert np.allclose(np.asarray(wrapped(x)), expected, atol=1e-6)


def test_paper_preset_is_the_report():
    p = PRESETS["paper"]
    assert (p.batch_size, p.epochs, p.patience, p.learning_rate) == (32, 20, 5, 1e-3)
    assert p.augment and (p.rotation_deg, p.shift, p.zoom) == (10.0, 0.1, 0.1)
    assert p.architecture == "paper_cnn" and p.val_fraction == 0.2 and p.label_smoothing == 0


def test_config_roundtrip_validation_and_overrides():
    c = preset("fast", epochs=2, limit=500, seed=3)
    assert TrainConfig.from_dict({**c.to_dict(), "unknown_future_field": 1}) == c
    assert (c.epochs, c.limit, c.seed, c.preset) == (2, 500, 3, "fast")
    with pytest.raises(ValueError, match="epochs"):
        preset("paper", epochs=0)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("nope")
    assert TrainConfig().problems() == []


def test_quick_cnn_is_wide_cnn_without_the_second_full_resolution_conv():
    wide, quick = build("wide_cnn"), build("quick_cnn")
    convs = lambda m: [(layer.name, layer.filters) for layer in m.layers if layer.name.startswith("conv")]  # noqa: E731
    assert convs(wide)[0:2] == [("conv11", 32), ("conv12", 32)]
    assert convs(quick) == [c for c in convs(wide) if c[0] != "conv12"]
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    assert quick(x).shape == (2, 10) and np.allclose(np.asarray(quick(x)).sum(1), 1, atol=1e-5)


def test_lean_cnn_is_quick_cnn_at_half_the_channels():
    quick, lean = build("quick_cnn"), build("lean_cnn")
    convs = lambda m: [(layer.name, layer.filters) for layer in m.layers if layer.name.startswith("conv")]  # noqa: E731
    assert convs(lean) == [(name, filters // 2) for name, filters in convs(quick)]
    assert lean.get_layer("fc").units == quick.get_layer("fc").units // 2
    assert lean.count_params() < quick.count_params() / 3
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    assert lean(x).shape == (2, 10) and np.allclose(np.asarray(lean(x)).sum(1), 1, atol=1e-5)
    assert PRESETS["fast"].architecture == "lean_cnn"
