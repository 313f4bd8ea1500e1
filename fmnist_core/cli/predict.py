"""``predict``: classify image files through the photo pipeline."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..machine import native_stderr_silenced
from .common import EXIT_ERROR, EXIT_USAGE, add_json_flag, add_photo_flags, emit, one_line, photo_model_checked


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict`` to the CLI's subparsers."""
    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("images", nargs="+")
    add_photo_flags(p)
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--invert", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--box", type=_box, help="x0,y0,x1,y1 around the garment (image pixels): re-seeds the mask")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Classify image files: the top answers, or 'none of the ten' with the reason."""
    from ..preprocess import ImageError, load_image, prepare_any

    if args.top_k < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return EXIT_USAGE

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
            results.append({"path": path, "error": one_line(exc)})
        except Exception as exc:  # noqa: BLE001 - never a traceback for one bad file
            results.append({"path": path, "error": one_line(f"cannot prepare the image ({type(exc).__name__}: {exc})")})
    if prepared:
        from ..head import HeadError
        from ..registry import ModelError

        try:
            ref = photo_model_checked(args)  # before TensorFlow is imported, like the images
            with native_stderr_silenced(not os.environ.get("FMNIST_DEBUG")):
                from ..predict import Predictor

                predictor = Predictor(ref, args.head)
                for i, prep in prepared.items():
                    results[i].update(predictor.predict_prepared(prep, top_k=args.top_k).as_dict())
        except (ModelError, HeadError) as exc:
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as exc:  # noqa: BLE001 - a model that loads but cannot run, etc.
            print(f"error: the model could not classify: {one_line(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
            return EXIT_ERROR
    failed = [r for r in results if "error" in r]
    if args.json:
        emit(results)
    else:
        for r in results:
            if "error" not in r:
                tops = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"])
                answer = f"{r['label']} ({r['probability']:.1%})"
                if r.get("rejected"):
                    answer = f"none of the ten classes ({r['reason']}; closest {answer})"
                own = r.get("fashion_mnist_only")
                if own:
                    answer += f" by head {r['head']}; the CNN alone: {own['label']} ({own['probability']:.1%})"
                print(f"{r['path']}: {answer}  [{tops}]")
    for r in failed:  # one line per bad file, on stderr in both modes
        print(f"error: {one_line(r['path'], 120)}: {r['error']}", file=sys.stderr)
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
