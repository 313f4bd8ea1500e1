"""``bench tta``: time to accuracy.

For each preset, wall seconds from process start (data loading included) to 90 ... 95% test
accuracy, scored at each epoch end outside the training clock, and the same figures as fractions
of the faithful ``paper`` recipe's 20 epochs timed on a slice of this machine in the same
invocation.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..machine import machine_info
from .common import add_json_flag, add_training_flags, report, say
from .fast import run_preset_worker

TTA_GOALS = (0.90, 0.91, 0.92, 0.93, 0.94, 0.945, 0.95)


def paper_reference(quick: bool) -> dict[str, Any]:
    """Seconds of the faithful ``paper`` recipe's 20 epochs here, from timed steps on this machine.

    Times 100 training steps of the paper preset (batch 32, its augmentation; 20 with ``quick``)
    after warm-up, with ``estimate.measure_speed`` (not cached: this is a benchmark), and scales
    the speed to 20 epochs of 48,000 images (the 80% split) plus validation of 12,000 at about a
    third of a training step each: the denominator of every fraction in ``tta``.
    """
    from ..config import preset
    from ..estimate import measure_speed

    steps = 20 if quick else 100
    measured = measure_speed(preset("paper"), steps=steps, cache=False)
    ips = float(measured["images_per_s"])
    n_train, n_val = 48_000, 12_000
    epoch_s = n_train / ips + n_val / (3 * ips)  # validation: forward only, ~1/3 of a training step
    return {
        "timed_steps": measured["steps"],
        "train_images_per_s": round(ips, 1),
        "load_during_measurement": measured["load"],
        "epoch_s": round(epoch_s, 1),
        "twenty_epochs_s": round(20 * epoch_s, 1),
    }


def time_to_goals(epochs: list[dict[str, Any]], reference_s: float) -> dict[str, dict[str, Any] | None]:
    """For each goal in ``TTA_GOALS``: the first epoch record at or above it (seconds, epoch, and
    seconds as a fraction of ``reference_s``), or None if no epoch reached it."""
    reached: dict[str, dict[str, Any] | None] = {}
    for goal in TTA_GOALS:
        hit = next((e for e in epochs if e["test_accuracy"] >= goal), None)
        reached[f"{goal:.3f}".rstrip("0")] = (
            None
            if hit is None
            else {
                "seconds": hit["seconds"],
                "epoch": hit["epoch"],
                "fraction_of_paper_20_epochs": round(hit["seconds"] / reference_s, 4),
            }
        )
    return reached


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Time to 90 ... 95% test accuracy for each preset, and as a fraction of the paper's 20 epochs."""
    say(args, "paper reference: one epoch of the report's recipe on a slice ...")
    ref = paper_reference(args.quick)
    say(args, f"  paper: {ref['train_images_per_s']:,.0f} images/s -> 20 epochs = {ref['twenty_epochs_s']:,.0f} s")
    presets = []
    for name in args.preset or ["fast", "best"]:
        for seed in args.seed or [None]:
            spec: dict[str, Any] = {"preset": name, "seed": seed, "budget_s": args.budget}
            # Time a variant of a preset, e.g. another architecture (was silently ignored before).
            spec["overrides"] = json.loads(args.overrides or "{}")
            if args.epochs:
                spec["epochs"] = args.epochs
            if args.quick:
                spec.update({"limit": 1000, "epochs": 1})
            epochs, final, wall = run_preset_worker(args, spec)
            reached = time_to_goals(epochs, ref["twenty_epochs_s"])
            presets.append(
                {
                    "preset": name,
                    "seed": final["config"]["seed"],
                    "final_test_accuracy": final["test_accuracy"],  # with test-time flips if the preset has them
                    "epochs_completed": final.get("epochs_completed"),
                    "seconds_total": wall,
                    "fraction_total": round(wall / ref["twenty_epochs_s"], 4),
                    "reached": reached,
                    "epochs": epochs,
                    "precision_used": final["precision_used"],
                    "budget_s": args.budget,
                    "overrides": spec["overrides"],
                    "architecture": final["config"]["architecture"],
                }
            )
    return {
        "target": "tta",
        "quick": bool(args.quick),
        "cpu": f"{machine_info().get('cpu')} ({machine_info().get('isa')})",
        "paper_reference": ref,
        "presets": presets,
    }


def table(out: dict[str, Any]) -> str:
    """The human-readable summary of ``out``."""
    ref = out["paper_reference"]
    lines = [
        f"time to accuracy on {out['cpu']}" + (" (quick: tiny runs, accuracy means nothing)" if out["quick"] else ""),
        f"  paper recipe, 20 epochs here: {ref['twenty_epochs_s']:,.0f} s "
        f"({ref['train_images_per_s']:,.0f} images/s over {ref['timed_steps']} timed steps of batch 32)",
    ]
    for p in out["presets"]:
        hits = ", ".join(
            f"{g}: {h['seconds']:.0f} s ({h['fraction_of_paper_20_epochs']:.3f}x)"
            for g, h in p["reached"].items()
            if h is not None
        )
        lines.append(
            f"  {p['preset']} seed {p['seed']}: final {p['final_test_accuracy']:.2%} after {p['seconds_total']:.0f} s "
            f"({p['fraction_total']:.3f}x); reached {hits or 'none of 90-95%'}"
        )
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench tta`` to the bench command's subparsers."""
    p = sub.add_parser("tta", help="time to 90 ... 95%% test accuracy per preset, against the paper's 20 epochs")
    add_json_flag(p)
    add_training_flags(p)
    p.add_argument("--preset", action="append", help="preset to time (repeatable; default: fast and best)")
    p.add_argument("--seed", action="append", type=int, help="seed (repeatable: one run per seed and preset)")
    p.add_argument("--budget", type=float, help="stop each run after this many seconds of training (best kept)")
    p.add_argument(
        "--quick", action="store_true", help="tiny runs (1,000 images, 1 epoch): checks the tool, not accuracy"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its report."""
    return report(args, measure, table)
