"""``python -m fmnist_core inside IMAGE [--model M] --out DIR``: the Inside page as PNG files for a handout.

Writes ``input.png`` (the prepared 28x28 input), ``block<N>_<layer>.png`` (the 16 strongest
activation maps of each convolution block), ``dense.png`` (the dense layer's strongest units and
the ten outputs), ``filters.png`` (the first layer's 3x3 filters) and ``map.png`` (the 10,000 test
images placed by the model's features, the input as a star). The map is computed once per model
(about a minute, progress on stderr) and kept beside the model's cached test scores.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_ERROR = 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``inside`` subcommand."""
    p = sub.add_parser("inside", help="activation maps, filters and the test-set map of one image, as PNG files")
    p.add_argument("image", help="a photo, a drawing or a 28x28 image file")
    p.add_argument("--model", help="shipped name, run id or .keras path (default: the paper model)")
    p.add_argument("--out", required=True, type=Path, help="folder for the PNG files (created if missing)")
    p.add_argument("--no-map", action="store_true", help="skip the test-set map (it takes a minute the first time)")
    p.set_defaults(func=run)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:300] or "unknown error"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Prepare the image, look inside the model, write the PNG files and print their paths."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fmnist_core.preprocess import ImageError, load_image, prepare_any
    from fmnist_core.registry import ModelError, load_model, model_class_names, resolve

    try:  # the image first: a bad file is answered before TensorFlow is imported
        prepared = prepare_any(load_image(args.image))
    except ImageError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - never a traceback for one bad file
        print(f"error: cannot prepare {args.image} ({type(exc).__name__}: {_one_line(exc)})", file=sys.stderr)
        return EXIT_ERROR
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create {args.out} ({_one_line(exc)}); give a writable --out folder", file=sys.stderr)
        return EXIT_ERROR
    try:
        ref = resolve(args.model)
        _say(f"loading {ref.label} ...")
        model = load_model(ref.path)
    except ModelError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR

    from fmnist_core import inside
    from fmnist_core import inside_png as png

    names = model_class_names(ref)
    probe = inside.Inside(model)
    view = probe.view(prepared.image)
    written = [png.input_png(prepared.image, args.out / "input.png", names[int(view.probs.argmax())])]
    for layer in view.layers:
        written.append(png.block_png(layer, args.out / f"block{layer.block}_{layer.name}.png"))
    written.append(png.dense_png(view, names, args.out / "dense.png"))
    written.append(png.filters_png(probe.filters(), args.out / "filters.png"))
    if not args.no_map:
        from fmnist_core.data import DataError, load_dataset

        try:
            ds = load_dataset("fashion")
        except DataError as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
        shown = [-1]

        def progress(fraction: float, text: str) -> None:
            percent = int(fraction * 100)
            if percent // 10 != shown[0] // 10 or fraction >= 1:  # every 10%: a log, not a flood
                shown[0] = percent
                _say(f"map {percent:3d}%: {text}")

        tm = inside.load_or_compute_map(ref.path, ds.x_test, lambda: model, progress=progress)
        star = tm.place(view.features)[0]
        written.append(png.map_png(tm, ds.y_test, names, star, args.out / "map.png", ref.label))
    for path in written:
        print(path)
    return 0
