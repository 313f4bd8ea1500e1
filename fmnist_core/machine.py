"""Facts about this machine's CPU, read once from ``/proc/cpuinfo``, for training, estimates and benchmarks.

Flags, instruction level (ISA), bfloat16 support, the model name, TensorFlow's thread pools,
the precision a config trains in here, a paper estimate of the CPU's peak FLOP/s, and importing
TensorFlow without its GPU-probing lines on a machine without a GPU. Importing this module
imports neither TensorFlow nor Keras (only the functions that need them do, when called).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import TrainConfig


def cpuinfo_text() -> str:
    """This machine's ``/proc/cpuinfo``, or the file named by ``$FMNIST_CPUINFO``.

    The variable lets one machine kind take the other's code paths end to end (``make
    test-avx2``: no bfloat16, AVX2 labels and caches, with oneDNN held to AVX2 as well), since
    the next machine can be either kind and nobody can choose. '' when unreadable.
    """
    try:
        return Path(os.environ.get("FMNIST_CPUINFO") or "/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpuinfo_field(key: str, cpuinfo: str | None = None) -> str | None:
    """The first value of ``key`` (e.g. 'model name', 'bogomips') in ``/proc/cpuinfo`` text, or None."""
    if cpuinfo is None:
        cpuinfo = cpuinfo_text()
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return None


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags from ``/proc/cpuinfo`` text (``cpuinfo_text()`` when None)."""
    if cpuinfo is None:
        cpuinfo = cpuinfo_text()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            flags.update(line.split(":", 1)[1].split())
    return flags


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True if the CPU advertises fast bfloat16 math (AVX512-BF16 or AMX-BF16).

    ``cpuinfo`` is ``/proc/cpuinfo``'s text; None reads this machine's (tests pass other CPUs').
    """
    flags = cpu_flags(cpuinfo)
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_isa(cpuinfo: str | None = None) -> str:
    """The vector instruction level that sets training speed: 'AVX-512 + BF16', 'AVX-512', 'AVX2' or 'older'.

    The CPU model name alone does not tell machines apart (virtual machines of both kinds report
    'AMD EPYC'), so caches and labels use this too.
    """
    flags = cpu_flags(cpuinfo)
    if "avx512f" in flags:
        return "AVX-512 + BF16" if cpu_has_bf16(cpuinfo) else "AVX-512"
    return "AVX2" if "avx2" in flags else "older"


def cpu_model(cpuinfo: str | None = None) -> str:
    """This machine's CPU model name (``cpuinfo_text()``), e.g. 'AMD EPYC 7B13'."""
    return cpuinfo_field("model name", cpuinfo) or platform.processor() or "unknown CPU"


def resolve_precision(config: TrainConfig, has_bf16: bool | None = None) -> str:
    """The dtype policy to train with. 'auto' picks bfloat16 only where it was measured faster:
    a CPU with bf16 instructions and batches of at least 128 (at 32 it gains nothing here).
    ``has_bf16`` overrides this machine's CPU flags (None: ask ``cpu_has_bf16``)."""
    if config.precision != "auto":
        return config.precision
    if has_bf16 is None:
        has_bf16 = cpu_has_bf16()
    return "mixed_bfloat16" if has_bf16 and config.batch_size >= 128 else "float32"


def configure_threads(intra: int | None = None, inter: int | None = None) -> None:
    """Set TensorFlow's op thread pools; must run before TensorFlow executes its first op.

    None keeps TensorFlow's default (one thread per core for both pools). Used by the benchmark's
    thread ablation; training keeps the defaults, which measured as good as any setting here.
    """
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def machine_info() -> dict[str, Any]:
    """What ran the training: CPU model, cores, library versions."""
    import keras
    import tensorflow as tf

    return {
        "cpu": cpu_model(),
        "isa": cpu_isa(),
        "cores": os.cpu_count(),
        "bf16": cpu_has_bf16(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def this_machine() -> str:
    """'CPU model, N cores, ISA', the machine part of every cache key and label."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {cpu_isa()}"


def same_machine(info: dict[str, Any] | None) -> bool:
    """True if a run's or model's ``machine`` record (``machine_info``) describes this machine's kind."""
    if not isinstance(info, dict):
        return False
    same = (
        info.get("cpu") == cpu_model()
        and info.get("cores") == os.cpu_count()
        and bool(info.get("bf16")) == cpu_has_bf16()
    )
    # Records older than the 'isa' field cannot tell AVX2 from AVX-512 machines: only bf16 ones can.
    return same and (info.get("isa") == cpu_isa() if "isa" in info else cpu_has_bf16())


def cpu_peak_gflops() -> dict[str, Any]:
    """A paper estimate of this CPU's peak: cores x clock x FLOP/cycle (AVX-512 FMA).

    Clock: the TSC rate (BogoMIPS / 2 on Linux), the base clock; boost clocks in a VM are unknown.
    FLOP/cycle per core: 2 FMA pipes x 16 float32 lanes (512-bit) x 2 (multiply + add) = 64 when the
    CPU has AVX-512 (Zen 4 splits 512-bit ops into two 256-bit halves: 32); bfloat16 dot products
    (VDPBF16PS) do twice the float32 work per instruction.
    """
    text = cpuinfo_text()
    family = cpuinfo_field("cpu family", text)
    bogomips = cpuinfo_field("bogomips", text)
    info: dict[str, Any] = {
        "cores": os.cpu_count() or 1,
        "model": cpuinfo_field("model name", text) or "",
        "family": int(family) if family is not None else None,
    }
    mhz = float(bogomips) / 2 if bogomips is not None else None
    flags = cpu_flags(text)
    amd = cpuinfo_field("vendor_id", text) == "AuthenticAMD"
    # AMD family 25 = Zen 3/4 (512-bit ops in two halves), 26 = Zen 5 (full 512-bit datapath).
    per_cycle = 64 if "avx512f" in flags and not (amd and info["family"] == 25) else 32
    ghz = (mhz or 2500.0) / 1000
    fp32 = info["cores"] * ghz * per_cycle
    info.update(
        ghz=round(ghz, 3),
        flop_per_cycle_fp32=per_cycle,
        peak_fp32_gflops=round(fp32, 1),
        peak_bf16_gflops=round(2 * fp32, 1) if cpu_has_bf16(text) else None,
    )
    return info


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (Python's own exceptions still show after it).

    TensorFlow's C++ start-up prints INFO/ERROR lines (oneDNN, absl, "failed call to cuInit" on a
    machine without a GPU) that TF_CPP_MIN_LOG_LEVEL does not reach; they would bury a one-line answer.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and let it probe for devices with its start-up lines off stderr.

    The device probe is where the CUDA line comes from, so it happens here too. Call it before
    anything else imports TensorFlow; ``$FMNIST_DEBUG`` set keeps the lines (to see what TF says).
    Never before ``configure_threads``: the thread pools must be set before the probe.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced(not os.environ.get("FMNIST_DEBUG")):
        import tensorflow as tf

        tf.config.list_physical_devices()
