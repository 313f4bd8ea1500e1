"""Command line: ``python -m fmnist_core {data,train,estimate,evaluate,predict,photos,runs,sweep,bench} ... [--json]``.

Errors the user can fix print one line to stderr and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .cli import teach as _teach
from .segment import DEFAULT_METHOD, METHODS

EXIT_ERROR = 1
EXIT_USAGE = 2


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _emit(obj: Any) -> None:
    print(json.dumps(obj, indent=None, default=str))


def _progress(i: int, n: int, label: str) -> None:
    """A one-line progress bar on stderr (only when it is a terminal)."""
    if not sys.stderr.isatty():
        return
    w = 30
    done = int(w * i / max(n, 1))
    print(f"\r{label} [{'#' * done}{'.' * (w - done)}] {i}/{n}", end="" if i < n else "\n", file=sys.stderr)


# ---------------------------------------------------------------- data


def cmd_data(args: argparse.Namespace) -> int:
    from .data import DataError, class_counts, download, load_dataset

    try:
        if args.download:
            download(args.dataset, quiet=args.json)
        ds = load_dataset(args.dataset)
    except DataError as exc:
        if args.json:
            _emit({"ok": False, "dataset": args.dataset, "error": str(exc)})
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    out = {
        "ok": all(c.ok for c in ds.checks),
        "dataset": ds.name,
        "folder": str(ds.folder),
        "files": [{"name": c.name, "path": c.path, "md5": c.md5, "ok": c.ok, "matched": c.matched} for c in ds.checks],
        "train": {"images": int(len(ds.x_train)), "per_class": class_counts(ds.y_train)},
        "test": {"images": int(len(ds.x_test)), "per_class": class_counts(ds.y_test)},
        "class_names": list(ds.class_names),
    }
    if args.json:
        _emit(out)
    else:
        print(f"{ds.name} data found in {ds.folder}")
        for c in ds.checks:
            how = {"gz": "matches the .gz checksum", "raw": "uncompressed bytes match"}.get(c.matched, "MISMATCH")
            print(f"  {'ok ' if c.ok else 'BAD'} {c.name:26s} md5 {c.md5} ({how})")
        print(f"  train: {out['train']['images']:,} images, test: {out['test']['images']:,} images")
        print("  per class (train / test):")
        for name, a, b in zip(ds.class_names, out["train"]["per_class"], out["test"]["per_class"], strict=True):
            print(f"    {name:12s} {a:6,d} / {b:5,d}")
    return 0 if out["ok"] else EXIT_ERROR


# ---------------------------------------------------------------- train


def _config_from_args(args: argparse.Namespace):
    """The TrainConfig that ``train``/``estimate`` arguments describe (--config or --preset + overrides)."""
    from .config import TrainConfig, preset

    if getattr(args, "config", None):
        return TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
    return preset(
        args.preset,
        epochs=args.epochs,
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        dataset=args.dataset,
        augment=False if args.no_augment else None,
    )


def cmd_estimate(args: argparse.Namespace) -> int:
    """How long a run of the config takes on this machine (measures a few training steps once, cached)."""
    _quiet_tf()
    from .estimate import cached_speed, estimate, format_duration, measured_speed, speed_key

    try:
        config = _config_from_args(args)
    except (ValueError, OSError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    remeasure = getattr(args, "remeasure", False)
    root = Path(args.runs_dir) if getattr(args, "runs_dir", None) else None
    if not args.json and (remeasure or (measured_speed(config, root) is None and cached_speed(config) is None)):
        print(f"measuring a few training steps here: {speed_key(config)} ...", file=sys.stderr)
    est = estimate(config, runs_root=root, remeasure=remeasure)
    out = {
        "preset": config.preset,
        "seconds": round(est.seconds, 1),
        "images_per_s": round(est.images_per_s, 1),
        "measured_here": est.measured,
        "source": est.source,
        "n_train": est.n_train,
        "n_val": est.n_val,
        "epochs": config.epochs,
        "steps_per_epoch": est.steps_per_epoch,
        "key": speed_key(config),
    }
    if args.json:
        _emit(out)
    else:
        upto = "up to " if config.patience else ""
        print(
            f"{config.preset}: {upto}about {format_duration(est.seconds)} on this machine "
            f"({est.n_train:,} training + {est.n_val:,} validation images x {config.epochs} epochs)\n"
            f"speed: {est.source}"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    _quiet_tf()
    from . import runs
    from .train import train

    if args.estimate_only:
        return cmd_estimate(args)
    try:
        config = _config_from_args(args)
    except (ValueError, OSError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    run_dir = Path(args.run_dir) if args.run_dir else runs.default_runs_root() / runs.new_run_id(config)
    if (run_dir / "run.json").exists() and not args.config:
        print(f"error: {run_dir} already holds a finished run; choose a new --run-dir", file=sys.stderr)
        return EXIT_USAGE
    verbose = 0 if (args.quiet or args.json) else (1 if sys.stdout.isatty() else 2)
    if not args.quiet and not args.json:
        print(f"training preset {config.preset!r} into {run_dir}", file=sys.stderr)
    try:
        result = train(config, run_dir, verbose=verbose, install_signals=True)
    except runs.RunBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the status file has the traceback
        from .data import DataError

        msg = str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"
        print(f"error: training failed: {msg}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        _dispatch_on_exit(run_dir)
    summary = {
        "run_dir": str(run_dir),
        "status": result["status"],
        "epochs_completed": result["epochs_completed"],
        "test_accuracy": result["test_accuracy"],
        "test_loss": result["test_loss"],
        "train_seconds": result["train_seconds"],
    }
    if args.json:
        _emit(summary)
    elif not args.quiet:
        print(
            f"{result['status']}: {result['epochs_completed']} epochs, test accuracy "
            f"{result['test_accuracy']:.2%}, test loss {result['test_loss']:.4f}, "
            f"{result['train_seconds']:.0f} s training -> {run_dir / 'model.keras'}"
        )
    return 0


def _dispatch_on_exit(run_dir: Path) -> None:
    """A trainer started from the queue starts the next queued run when it ends (no daemon needed)."""
    if os.environ.get("FMNIST_DISPATCH_ON_EXIT") != "1":
        return
    from . import runqueue

    try:
        runqueue.dispatch(run_dir.resolve().parent)
    except Exception as exc:  # noqa: BLE001 - the next page poll or CLI call will dispatch instead
        print(f"warning: could not start the next queued run: {exc}", file=sys.stderr)


# ---------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    _quiet_tf()
    from .data import DataError, load_dataset
    from .evaluate import predict_proba, report
    from .registry import ModelError, load_model, model_class_names, resolve

    try:
        ref = resolve(args.model)
        names = model_class_names(ref)
        dataset = ref.meta().get("dataset", "fashion")
        model = load_model(ref.path)
        ds = load_dataset(dataset)
    except (ModelError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    t0 = time.time()
    probs = []
    n, step = len(ds.x_test), 1000
    for i in range(0, n, step):
        probs.append(predict_proba(model, ds.x_test[i : i + step]))
        if not args.json:
            _progress(min(i + step, n), n, "evaluating")
    import numpy as np

    rep = report(ds.y_test, np.concatenate(probs), names)
    seconds = time.time() - t0
    out = {
        "model": str(ref.path),
        "dataset": dataset,
        "test_accuracy": rep["test_accuracy"],
        "test_loss": rep["test_loss"],
        "n_test": rep["n_test"],
        "per_class": rep["per_class"],
        "macro_avg": rep["macro_avg"],
        "confusion_matrix": rep["confusion_matrix"],
        "seconds": round(seconds, 2),
        "images_per_s": round(n / seconds, 1),
    }
    if args.json:
        _emit(out)
        return 0
    print(
        f"{ref.path}: test accuracy {out['test_accuracy']:.2%}, loss {out['test_loss']:.4f} "
        f"({n:,} images, {out['images_per_s']:,.0f} images/s)"
    )
    print(f"  {'class':12s} precision recall    f1 support")
    for name, m in out["per_class"].items():
        print(f"  {name:12s} {m['precision']:9.3f} {m['recall']:6.3f} {m['f1']:5.3f} {int(m['support']):7d}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    _quiet_tf()
    import numpy as np

    from . import ood
    from .data import DataError, load_dataset
    from .registry import ModelError, default_photo_model, load_model, resolve

    try:
        ref = resolve(args.model or default_photo_model())
        model = load_model(ref.path)
        ds = load_dataset(ref.meta().get("dataset", "fashion"))
    except (ModelError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not ood.has_feature_layer(model):
        print(f"error: {ref.path} has no {ood.FEATURE_LAYER!r} layer to take statistics from", file=sys.stderr)
        return EXIT_ERROR
    _, hi = ref.meta().get("input_range", [0, 1])
    t0 = time.time()
    if not args.json:
        print(f"{ref.label}: its {len(ds.x_train):,} training images, as augmented in training ...", flush=True)
    # The images as the model saw them in training (for the photo model: its photo augmentation).
    x, y = ood.training_view(ds.x_train, ds.y_train, ref.meta().get("config"), seed=args.seed)
    stats = ood.fit_model_stats(
        model,
        x,
        y,
        scale=1.0 / 255.0 if hi == 1 else 1.0,
        progress=None if args.json else lambda i, n: _progress(i, n, "features"),
    )
    out_path = ood.stats_path(ref.path)
    try:
        stats.save(out_path)
    except OSError as exc:
        print(f"error: cannot write {out_path}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    out = {
        "model": str(ref.path),
        "statistics": str(out_path),
        "limits": [round(float(v), 3) for v in stats.limits],
        "seconds": round(time.time() - t0, 1),
    }
    if args.json:
        _emit(out)
    else:
        print(
            f"wrote {out_path} in {out['seconds']} s; 99th-percentile distance per class: {np.round(stats.limits, 1)}"
        )
    return 0


# ---------------------------------------------------------------- predict


def _one_line(text: object, limit: int = 300) -> str:
    """Any message as one printable line (file names may hold newlines or control characters)."""
    flat = " ".join(str(text).split())
    flat = "".join(ch if ch.isprintable() else "?" for ch in flat)
    return flat[:limit] or "unknown error"


@contextlib.contextmanager
def _native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while TensorFlow loads.

    TensorFlow's C++ start-up prints INFO/ERROR lines (oneDNN, CUDA) that TF_CPP_MIN_LOG_LEVEL does
    not reach; they would bury the one-line answer. Our own messages are printed after this block.
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


def cmd_predict(args: argparse.Namespace) -> int:
    _quiet_tf()
    from .preprocess import ImageError, load_image, prepare_any

    # Images first: a bad file is answered in a fraction of a second, before TensorFlow is imported.
    results: list[dict[str, Any]] = []
    prepared: dict[int, Any] = {}
    for i, path in enumerate(args.images):
        try:
            prep = prepare_any(load_image(path), args.invert, method=args.segment, box=args.box)
            prep.steps = []  # the CLI shows no steps; do not hold every original image in memory
            prepared[i] = prep
            results.append({"path": path})
        except ImageError as exc:
            results.append({"path": path, "error": _one_line(exc)})
        except Exception as exc:  # noqa: BLE001 - never a traceback for one bad file
            results.append(
                {"path": path, "error": _one_line(f"cannot prepare the image ({type(exc).__name__}: {exc})")}
            )
    if prepared:
        from .registry import ModelError

        try:
            with _native_stderr_silenced(not os.environ.get("FMNIST_DEBUG")):
                from .predict import Predictor
                from .registry import default_photo_model

                predictor = Predictor.from_spec(args.model or default_photo_model())
                for i, prep in prepared.items():
                    results[i].update(predictor.predict_prepared(prep, top_k=args.top_k).as_dict())
        except ModelError as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as exc:  # noqa: BLE001 - a model that loads but cannot run, etc.
            print(f"error: the model could not classify: {_one_line(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
            return EXIT_ERROR
    failed = [r for r in results if "error" in r]
    if args.json:
        _emit(results)
    else:
        for r in results:
            if "error" not in r:
                tops = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"])
                answer = f"{r['label']} ({r['probability']:.1%})"
                if r.get("rejected"):
                    answer = f"none of the ten classes ({r['reason']}; closest {answer})"
                print(f"{r['path']}: {answer}  [{tops}]")
    for r in failed:  # one line per bad file, on stderr in both modes
        print(f"error: {_one_line(r['path'], 120)}: {r['error']}", file=sys.stderr)
    return EXIT_ERROR if failed else 0


def _box(text: str) -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' -> four floats (argparse type)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
        raise argparse.ArgumentTypeError("give the box as x0,y0,x1,y1 with x1 > x0 and y1 > y0")
    return values  # type: ignore[return-value]


# ---------------------------------------------------------------- photos


def cmd_photos(args: argparse.Namespace) -> int:
    """Strict / lenient accuracy, per folder, confusion table and reject rates on labelled photos."""
    _quiet_tf()
    from .photos import evaluate_photos
    from .registry import ModelError

    def progress(i: int, n: int, _res: Any) -> None:
        if i == n or i % 25 == 0:
            print(f"{i}/{n} photos", file=sys.stderr, flush=True)

    try:
        with _native_stderr_silenced(not os.environ.get("FMNIST_DEBUG")):
            from .predict import Predictor
            from .registry import default_photo_model

            predictor = Predictor.from_spec(args.model or default_photo_model())
        out = evaluate_photos(args.dir, predictor, args.segment, not args.no_reject, progress)
    except (FileNotFoundError, ModelError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    if not out["photos"]:
        print(f"error: no photos in labelled folders under {args.dir}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        _emit(out)
        return 0

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    print(
        f"{out['photos']} photos ({out['in_scope']} in scope, {out['out_of_scope']} out of scope), model {out['model']}"
    )
    print(f"  strict accuracy {pct(out['strict_accuracy'])}, lenient {pct(out['lenient_accuracy'])}")
    print(
        f"  rejected as none of the ten: in scope {pct(out['reject_rate_in_scope'])}, "
        f"out of scope {pct(out['reject_rate_out_of_scope'])}"
    )
    print(f"  time per photo: p50 {out['seconds_per_photo']['p50'] * 1000:.0f} ms")
    print("  folder        photos  strict lenient rejected")
    for name, p in out["per_folder"].items():
        strict = pct(p["strict_accuracy"]) if p["in_scope"] else "-"
        lenient = pct(p["lenient_accuracy"]) if p["in_scope"] else "-"
        print(f"  {name:12s} {p['photos']:7d} {strict:>7s} {lenient:>7s} {pct(p['reject_rate']):>8s}")
    cols = out["columns"]
    short = [c.split("/")[0][:7] for c in cols]
    print("  confusion (folder x answer):")
    print("  " + " " * 12 + "".join(f"{c:>8s}" for c in short))
    for name, row in out["confusion"].items():
        print(f"  {name:12s}" + "".join(f"{row.get(c, 0):8d}" for c in cols))
    if out["skipped_folders"]:
        print(f"  skipped folders (no class known): {', '.join(out['skipped_folders'])}")
    return 0


# ---------------------------------------------------------------- runs


def _num(x: Any) -> float | None:
    """``x`` if it is a real number (run files may be hand-edited or torn), else None."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _use_ray(args: argparse.Namespace) -> None:
    """``--ray ADDRESS`` is the same as ``FMNIST_RAY_ADDRESS=ADDRESS``."""
    if getattr(args, "ray", None):
        os.environ["FMNIST_RAY_ADDRESS"] = args.ray


def cmd_runs(args: argparse.Namespace) -> int:
    from . import access, runqueue, runs

    _use_ray(args)
    root = Path(args.root) if args.root else runs.default_runs_root()
    if args.root and (not root.exists() or not root.is_dir()):
        print(f"error: runs folder {_one_line(root, 200)} does not exist", file=sys.stderr)
        return EXIT_ERROR
    if args.action != "list":
        # The command line acts as the machine's admin: whoever has a shell has the files anyway.
        if args.action != "clear" and not args.run_id:
            print(f"error: runs {args.action} needs a run id", file=sys.stderr)
            return EXIT_USAGE
        try:
            if args.action == "cancel":
                runqueue.cancel(args.run_id, root, access.ADMIN)
                done = f"cancelled {args.run_id}"
            elif args.action == "stop":
                done = f"{runqueue.stop(args.run_id, root, access.ADMIN)} {args.run_id}"
            elif args.action == "delete":
                runqueue.delete(args.run_id, root, access.ADMIN)
                done = f"deleted {args.run_id}"
            else:
                done = f"cancelled {len(runqueue.clear_queue(root, access.ADMIN))} waiting runs"
        except (runs.RunError, access.AccessError) as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
        runqueue.dispatch(root)
        if args.json:
            _emit({"ok": True, "done": done})
        else:
            print(done)
        return 0
    try:
        runqueue.dispatch(root)  # every CLI call moves the queue on (no daemon)
        infos = runs.list_runs(root)
        queue = {q.run_id: q for q in runqueue.queue_view(root, infos)}
    except (OSError, ValueError) as exc:
        print(f"error: cannot read runs folder {_one_line(root, 200)}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    rows = []
    for r in infos:
        duration = _num(r.duration_s)
        q = queue.get(r.run_id)
        rows.append(
            {
                "run_id": r.run_id,
                "path": str(r.path),
                "status": r.status,  # checked against the live process: a dead trainer is 'failed'
                "preset": str(r.preset),
                "epochs_done": r.epochs_done,
                "best_val_accuracy": _num(r.best_val_accuracy),
                "test_accuracy": _num(r.test_accuracy),
                "duration_s": None if duration is None else round(duration, 1),
                "pid": r.status_data.get("pid"),
                "error": None if r.status_data.get("error") is None else _one_line(r.status_data.get("error")),
                "has_model": r.has_model,
                "owner": r.owner,
                "sweep": r.sweep,
                # The queue: 0 = training now, 1 = next, ...; None = not in the queue (ended).
                "queue_position": None if q is None else q.position,
                "eta_start": None if q is None or q.eta_start is None else round(q.eta_start, 1),
                "ray_job": r.status_data.get("ray_job"),
            }
        )
    if args.json:
        _emit(rows)
        return 0
    if not rows:
        print(f"no runs in {root}")
    for r in rows:
        acc = f"{r['test_accuracy']:.2%}" if r["test_accuracy"] is not None else "-"
        where = ""
        if r["queue_position"]:
            where = (
                f"  #{r['queue_position']} in queue, starts ~{time.strftime('%H:%M', time.localtime(r['eta_start']))}"
            )
        print(
            f"{r['run_id']:32s} {r['status']:9s} {r['preset']:6s} epochs {r['epochs_done']:3d}  test {acc}"
            + (f"  by {r['owner']}" if r["owner"] else "")
            + where
            + (f"  ({r['error']})" if r["error"] and r["status"] == "failed" else "")
        )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import runs
    from .config import preset
    from .sweep import parse_grid, queue_sweep

    _use_ray(args)
    root = Path(args.root) if args.root else runs.default_runs_root()
    try:
        base = preset(args.preset, epochs=args.epochs, limit=args.limit, seed=args.seed)
        grid = parse_grid(args.grid)
        sweep_id, dirs = queue_sweep(base, grid, root, owner=args.owner or "")
    except (ValueError, runs.RunError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _emit({"sweep": sweep_id, "runs": [d.name for d in dirs], "grid": grid})
    else:
        print(f"sweep {sweep_id}: queued {len(dirs)} runs in {root}")
        for d in dirs:
            print(f"  {d.name}")
    return 0


# ---------------------------------------------------------------- figures


def cmd_figures(args: argparse.Namespace) -> int:
    from .figures import confusion_png, curves_png

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for meta in args.results:
        path = Path(meta)
        if path.suffix == ".keras":
            path = path.with_suffix(".json")
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        stem = path.stem if path.name != "run.json" else path.parent.name
        title = f"{stem}: test accuracy {result['test_accuracy']:.2%}"
        for fig in (
            curves_png(result, out / f"{stem}_curves.png", title),
            confusion_png(result, out / f"{stem}_confusion.png", title),
        ):
            print(fig)
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fmnist_core", description="Fashion-MNIST CNN Studio command line")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="find, verify (and download) the dataset")
    d.add_argument("--check", action="store_true", help="verify checksums and count images (the default)")
    d.add_argument("--download", action="store_true", help="download into ./data/ if not found")
    d.add_argument("--dataset", default="fashion", choices=["fashion", "mnist"])
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_data)

    t = sub.add_parser("train", help="train a model into a run directory")
    t.add_argument("--preset", default="paper", help="paper | fast | best")
    t.add_argument("--config", help="a config.json to train (used by the app)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--limit", type=int, help="use only N training images (stratified)")
    t.add_argument("--seed", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--dataset", choices=["fashion", "mnist"])
    t.add_argument("--no-augment", action="store_true")
    t.add_argument("--run-dir", help="output folder (default runs/<timestamp>-<preset>)")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--json", action="store_true")
    t.add_argument("--estimate-only", action="store_true", help="print the run time on this machine, do not train")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("estimate", help="run time of a preset on this machine (measured here once, cached)")
    s.add_argument("--preset", default="paper", help="paper | fast | best")
    s.add_argument("--config", help="a config.json")
    for flag, kind in (("--epochs", int), ("--limit", int), ("--seed", int), ("--batch-size", int), ("--lr", float)):
        s.add_argument(flag, type=kind)
    s.add_argument("--dataset", choices=["fashion", "mnist"])
    s.add_argument("--no-augment", action="store_true")
    s.add_argument("--runs-dir", help="runs folder whose finished runs count as measurements (default ./runs)")
    s.add_argument("--remeasure", action="store_true", help="measure again even if a cached figure exists")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_estimate)

    e = sub.add_parser("evaluate", help="test accuracy, loss and per-class report of a model")
    e.add_argument("model", nargs="?", help="shipped name, run id or .keras path (default: paper model)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    fe = sub.add_parser(
        "features", help="fit the feature-space statistics of a model's training images (photo reject rule)"
    )
    fe.add_argument("model", nargs="?", help="shipped name, run id or .keras path (default: the photo model)")
    fe.add_argument("--seed", type=int, default=3, help="seed of the augmentation pass (default 3)")
    fe.add_argument("--json", action="store_true")
    fe.set_defaults(func=cmd_features)

    q = sub.add_parser("predict", help="classify image files")
    q.add_argument("images", nargs="+")
    q.add_argument("--model", help="shipped name, run id or .keras path (default: the photo model)")
    q.add_argument("--top-k", type=int, default=3)
    q.add_argument("--invert", default="auto", choices=["auto", "on", "off"])
    q.add_argument(
        "--segment", default=DEFAULT_METHOD, choices=METHODS, help=f"segmentation (default {DEFAULT_METHOD})"
    )
    q.add_argument("--box", type=_box, help="x0,y0,x1,y1 around the garment (image pixels): re-seeds the mask")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_predict)

    ph = sub.add_parser("photos", help="accuracy on a folder tree of labelled real photos (folder = label)")
    ph.add_argument("dir", type=Path)
    ph.add_argument("--model", help="shipped name, run id or .keras path (default: the photo model)")
    ph.add_argument("--segment", default=DEFAULT_METHOD, choices=METHODS)
    ph.add_argument("--no-reject", action="store_true", help="never answer 'none of the ten'")
    ph.add_argument("--json", action="store_true")
    ph.set_defaults(func=cmd_photos)

    r = sub.add_parser("runs", help="list runs and the queue; stop, cancel or delete a run; clear the queue")
    r.add_argument("action", nargs="?", default="list", choices=["list", "cancel", "stop", "delete", "clear"])
    r.add_argument("run_id", nargs="?", help="the run to act on")
    r.add_argument("--root", help="runs folder (default ./runs)")
    r.add_argument("--ray", metavar="ADDRESS", help="run queued runs on this Ray cluster (as FMNIST_RAY_ADDRESS)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)

    w = sub.add_parser("sweep", help="queue one run per combination of a grid of settings")
    w.add_argument("--preset", default="fast", help="paper | fast | best")
    w.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2", help="e.g. learning_rate=1e-3,3e-3")
    w.add_argument("--epochs", type=int)
    w.add_argument("--limit", type=int, help="use only N training images (stratified)")
    w.add_argument("--seed", type=int)
    w.add_argument("--owner", help="display name recorded as the runs' owner")
    w.add_argument("--root", help="runs folder (default ./runs)")
    w.add_argument("--ray", metavar="ADDRESS", help="run the sweep on this Ray cluster (as FMNIST_RAY_ADDRESS)")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_sweep)

    f = sub.add_parser("figures", help="PNG curves and confusion matrix from model JSON files (for docs)")
    f.add_argument("results", nargs="+", help="models/NAME.json, NAME.keras or a run's run.json")
    f.add_argument("--out", default="docs/figures")
    f.set_defaults(func=cmd_figures)

    _teach.register(sub)
    try:
        from .bench import add_parser as add_bench
    except ImportError:
        pass
    else:
        add_bench(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "top_k", 1) is not None and getattr(args, "top_k", 1) < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
