"""``bench predict``: one photo through preprocessing and the model, vs ``model.predict``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import add_json_flag, add_model_flag, percentile, quiet_tensorflow, report


def product_photo(image28):
    """A test image as a 'product photo': 8x larger, dark garment on a white background, RGB."""
    from PIL import Image

    img = Image.fromarray(255 - image28, "L").resize((224, 224), Image.Resampling.BILINEAR)
    return img.convert("RGB")


def phone_photo_jpeg(image28, width: int = 4000, height: int = 3000, seed: int = 0) -> bytes:
    """A synthetic 12 MP phone photo (JPEG bytes): a test garment, dark, on a textured wooden-ish floor.

    Made here (no network, no dev photos needed): a smooth brown background with grain stripes,
    uneven light and sensor noise, the garment upscaled into the middle third.
    """
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small_h, small_w = height // 8, width // 8  # build at 1/8 and upscale: fast, and grain stays smooth
    yy, xx = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    grain = 0.5 + 0.5 * np.sin(yy / 3.0 + 2.0 * np.sin(xx / 40.0))
    light = 0.8 + 0.2 * xx / small_w
    bg = np.stack([150 + 40 * grain, 110 + 30 * grain, 70 + 20 * grain], axis=2) * light[..., None]
    side = int(min(small_h, small_w) * 0.7)
    g = np.asarray(Image.fromarray(image28, "L").resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255
    y0, x0 = (small_h - side) // 2, (small_w - side) // 2
    patch = bg[y0 : y0 + side, x0 : x0 + side]
    bg[y0 : y0 + side, x0 : x0 + side] = patch * (1 - g[..., None]) + g[..., None] * np.array([40, 45, 60])
    bg += rng.normal(0, 4, bg.shape)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Milliseconds per photo through the project's path and through ``model.predict``."""
    quiet_tensorflow()
    import numpy as np

    from ..data import load_dataset
    from ..predict import Predictor
    from ..preprocess import prepare_any
    from ..registry import resolve

    ds = load_dataset("fashion")
    photos = [product_photo(ds.x_test[i]) for i in range(20)]
    predictor = Predictor(resolve(args.model))
    model = predictor.model

    # The product-photo path (the dataset's steps, no segmentation) against model.predict, as before;
    # segmentation is timed on its own below (it costs far more than the model).
    def project(img):
        return predictor.predict_image(img, method="none").probs

    def naive(img):
        x = prepare_any(img, method="none").image.astype("float32").reshape(1, 28, 28, 1) / 255.0
        return model.predict(x, verbose=0)[0]

    def model_only(img):  # noqa: ARG001
        return predictor.probabilities(ds.x_test[:1])

    def timed(fn, calls):
        for i in range(10):  # warm-up: tracing and first-call allocation
            fn(photos[i % len(photos)])
        out = []
        for i in range(calls):
            t = time.perf_counter()
            fn(photos[i % len(photos)])
            out.append((time.perf_counter() - t) * 1e3)
        return out

    # Same answers both ways (the fast path must not change results).
    agree = all(int(np.argmax(project(p))) == int(np.argmax(naive(p))) for p in photos[:5])
    fast = timed(project, args.calls)
    slow = timed(naive, max(20, args.calls // 3))
    core = timed(model_only, args.calls)
    prep = timed(lambda img: prepare_any(img, method="none"), args.calls)
    segmented = timed(lambda img: predictor.predict_image(img), max(10, args.calls // 10))
    # A 12-megapixel phone photo, as uploaded: decode + every preprocessing step incl. segmentation.
    from ..preprocess import load_image

    jpeg = phone_photo_jpeg(ds.x_test[0])
    phone = []
    for i in range(max(6, args.calls // 20) + 1):
        t = time.perf_counter()
        prepare_any(load_image(jpeg))
        if i:  # the first call warms up OpenCV
            phone.append((time.perf_counter() - t) * 1e3)
    # The same photo to both answers (the photo head's and the CNN's own), as an upload gets them:
    # with the model given if it has a photo head, else with the default photo model and its head.
    from ..registry import default_photo_model

    both_by = predictor if predictor.head is not None else Predictor.from_spec(default_photo_model())
    both = []
    for i in range(max(6, args.calls // 20) + 1):
        t = time.perf_counter()
        answer = both_by.predict_image(load_image(jpeg))
        if i:
            both.append((time.perf_counter() - t) * 1e3)
    p50, naive_p50 = percentile(fast, 50), percentile(slow, 50)
    return {
        "target": "predict",
        "model": str(predictor.ref.path),
        "input": "224x224 RGB photo (a test image, dark on white); 4000x3000 JPEG phone photo (synthetic)",
        "calls": args.calls,
        "p50_ms": round(p50, 2),
        "p95_ms": round(percentile(fast, 95), 2),
        "naive_p50_ms": round(naive_p50, 2),
        "naive_p95_ms": round(percentile(slow, 95), 2),
        "ratio": round(naive_p50 / p50, 1),
        "model_only_p50_ms": round(percentile(core, 50), 2),
        "preprocess_p50_ms": round(percentile(prep, 50), 2),
        "segmented_p50_ms": round(percentile(segmented, 50), 2),
        "phone_12mp_preprocess_p50_ms": round(percentile(phone, 50), 1),
        "phone_12mp_preprocess_p95_ms": round(percentile(phone, 95), 1),
        "phone_12mp_calls": len(phone),
        "phone_12mp_both_answers_p50_ms": round(percentile(both, 50), 1),
        "phone_12mp_both_answers_p95_ms": round(percentile(both, 95), 1),
        "both_answers_model": both_by.ref.key,
        "both_answers_head": both_by.head_name,
        "both_answers_given": answer.fashion_mnist_only is not None,
        "same_answers": agree,
    }


def table(out: dict[str, Any]) -> str:
    """The human-readable summary of ``out``."""
    return (
        f"one photo -> prediction: p50 {out['p50_ms']:.2f} ms, p95 {out['p95_ms']:.2f} ms "
        f"(preprocess {out['preprocess_p50_ms']:.2f} ms, model {out['model_only_p50_ms']:.2f} ms); "
        f"model.predict way p50 {out['naive_p50_ms']:.2f} ms: x{out['ratio']:.1f} (no segmentation); "
        f"with segmentation p50 {out['segmented_p50_ms']:.1f} ms; a 12 MP phone photo (JPEG, decode + "
        f"segmentation + steps) p50 {out['phone_12mp_preprocess_p50_ms']:.0f} ms; to both answers (photo head "
        f"{out['both_answers_head']} and the CNN alone) p50 {out['phone_12mp_both_answers_p50_ms']:.0f} ms"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench predict`` to the bench command's subparsers."""
    p = sub.add_parser("predict", help="milliseconds per photo: project path vs model.predict")
    add_json_flag(p)
    add_model_flag(p)
    p.add_argument("--calls", type=int, default=300, help="timed single-image predictions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its report."""
    return report(args, measure, table)
