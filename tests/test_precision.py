"""bfloat16 on every machine: which precision is picked for which CPU, and the forced bf16 numerics.

The choice is tested with other CPUs' flags injected (no skip on machines without bf16). The
numerics run the mixed_bfloat16 path on whatever CPU this is (emulated where it has no bf16
instructions, so the sizes are tiny) and compare it with float32 on the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.config import preset
from fmnist_core.machine import cpu_flags, cpu_has_bf16, cpu_isa, resolve_precision

# Excerpts of /proc/cpuinfo of the two machine kinds this project meets (both report 'AMD EPYC').
AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n"
AVX512_BF16 = (
    "processor\t: 0\nmodel name\t: AMD EPYC\n"
    "flags\t\t: fpu sse2 avx fma avx2 avx512f avx512bw avx512vl avx512_bf16 avx512_vnni\n"
)
AMX = "model name\t: Intel Xeon\nflags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n"


def test_flags_are_parsed_as_words():
    assert {"avx2", "fma"} <= cpu_flags(AVX2_ONLY)
    assert "avx512_bf16" not in cpu_flags(AVX2_ONLY)
    # A flag that merely contains the name is not the flag: only whole words count.
    assert not cpu_has_bf16("flags\t: avx2 xavx512_bf16x\n")
    assert cpu_flags("") == set()


@pytest.mark.parametrize(
    "cpuinfo, bf16, isa",
    [(AVX2_ONLY, False, "AVX2"), (AVX512_BF16, True, "AVX-512 + BF16"), (AMX, True, "AVX-512 + BF16")],
)
def test_bf16_and_isa_detection(cpuinfo, bf16, isa):
    assert cpu_has_bf16(cpuinfo) is bf16
    assert cpu_isa(cpuinfo) == isa


def test_this_machine_is_described():
    assert cpu_isa() in {"AVX-512 + BF16", "AVX-512", "AVX2", "older"}
    assert isinstance(cpu_has_bf16(), bool)


@pytest.mark.parametrize(
    "name, batch, has_bf16, expected",
    [
        ("fast", 128, True, "mixed_bfloat16"),  # auto, big batches, bf16 hardware: bf16
        ("fast", 128, False, "float32"),  # auto without bf16 instructions: emulated bf16 is slow
        ("fast", 32, True, "float32"),  # auto with small batches: bf16 measured no faster
        ("best", 128, True, "mixed_bfloat16"),
        ("best", 128, False, "float32"),
        ("paper", 32, True, "float32"),  # the report's recipe is float32 everywhere
        ("paper", 32, False, "float32"),
    ],
)
def test_precision_choice_for_each_cpu_kind(name, batch, has_bf16, expected):
    config = preset(name, batch_size=batch)
    assert resolve_precision(config, has_bf16=has_bf16) == expected


def test_an_explicit_precision_is_kept_on_any_cpu():
    forced = preset("paper", precision="mixed_bfloat16")
    assert resolve_precision(forced, has_bf16=False) == "mixed_bfloat16"
    assert resolve_precision(preset("fast", precision="float32"), has_bf16=True) == "float32"


def test_auto_follows_this_machines_flags():
    config = preset("fast")
    assert resolve_precision(config) == resolve_precision(config, has_bf16=cpu_has_bf16())


@pytest.mark.bf16
def test_bfloat16_copy_predicts_like_float32(dataset):
    """A shipped model's weights in a mixed_bfloat16 network: the same classes, close probabilities."""
    from fmnist_core.evaluate import predict_proba
    from fmnist_core.model import with_dtype
    from fmnist_core.registry import load_model, resolve

    ref = resolve("fashion_cnn_fast")
    fp32 = load_model(ref.path)
    bf16 = with_dtype(fp32, ref.meta()["architecture"], "mixed_bfloat16")
    assert bf16.layers[1].compute_dtype == "bfloat16" and fp32.layers[1].compute_dtype == "float32"
    x = dataset.x_test[:200]
    p32, p16 = predict_proba(fp32, x), predict_proba(bf16, x)
    assert p16.dtype == np.float32 and np.allclose(p16.sum(1), 1, atol=1e-3)
    # bfloat16 keeps 8 bits of mantissa: a confident trained model keeps its classes (measured 200/200;
    # a flip needs two classes within ~1% of each other) and its probabilities within a few points.
    assert np.mean(p32.argmax(1) == p16.argmax(1)) >= 0.97
    assert np.max(np.abs(p32 - p16)) < 0.1


@pytest.mark.bf16
def test_bfloat16_training_steps_track_float32(dataset):
    """The forced mixed_bfloat16 training path: same start, same batches, the loss falls alike.

    8 steps on one fixed batch of 32 images: tiny, because bf16 is emulated (slow) on AVX2 CPUs.
    """
    import keras

    from fmnist_core.model import build
    from fmnist_core.train import compile_for_training

    x = (dataset.x_train[:32] / 255.0).astype("float32")[..., None]
    y = dataset.y_train[:32]
    config = preset("paper", augment=False)
    losses = {}
    keras.utils.set_random_seed(0)
    start = build("paper_cnn").get_weights()
    for dtype in ("float32", "mixed_bfloat16"):
        model = build("paper_cnn", dtype=dtype)
        model.set_weights(start)
        compile_for_training(model, config, steps_per_epoch=8)
        assert model.layers[1].compute_dtype == ("bfloat16" if dtype != "float32" else "float32")
        # Dropout off: both runs must see the same network; only the arithmetic differs.
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        hist = model.fit(x, y, batch_size=32, epochs=8, shuffle=False, verbose=0)
        losses[dtype] = np.array(hist.history["loss"])
        assert all(w.dtype == "float32" for w in model.weights)  # variables stay float32 under mixed precision
    f32, b16 = losses["float32"], losses["mixed_bfloat16"]
    assert np.isfinite(b16).all()
    assert f32[-1] < 0.5 * f32[0] and b16[-1] < 0.5 * b16[0], (f32, b16)  # 8 steps on one batch: memorised
    assert np.allclose(b16, f32, rtol=0.15, atol=0.05), (f32, b16)


def test_fmnist_cpuinfo_makes_this_machine_the_avx2_kind(monkeypatch):
    # make test-avx2 relies on this: every CPU question goes through the one file it names.
    from pathlib import Path

    from fmnist_core.machine import cpu_model, cpuinfo_text

    avx2 = Path(__file__).parent / "fixtures" / "cpuinfo-avx2.txt"
    monkeypatch.setenv("FMNIST_CPUINFO", str(avx2))
    assert cpuinfo_text() == avx2.read_text()
    assert (cpu_isa(), cpu_has_bf16(), cpu_model()) == ("AVX2", False, "AMD EPYC")
    assert resolve_precision(preset("fast")) == "float32"
    monkeypatch.setenv("FMNIST_CPUINFO", str(avx2.parent / "no-such-file"))
    assert cpu_flags() == set() and cpu_isa() == "older"
