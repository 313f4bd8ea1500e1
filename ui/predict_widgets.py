"""Pieces of the Predict page: the input widgets, the steps strip, the probability chart, Grad-CAM.

Each input function returns ``(original image, Prepared)`` or ``None`` when there is nothing to
classify yet; a bad file shows one clear message and returns ``None`` so the page keeps working.
"""

from __future__ import annotations

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from fmnist_core.head import NONE_NAME
from fmnist_core.predict import Prediction
from fmnist_core.preprocess import (
    ImageError,
    PixelStats,
    Prepared,
    load_image,
    prepare_array28,
    prepare_drawing,
    prepare_photo,
)
from fmnist_core.segment import DEFAULT_METHOD
from ui.common import dataset_arrays

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
CANVAS_PX = 280
BOX_CANVAS_PX = 320  # longest side of the photo shown for drawing a box around the garment

Source = tuple[Image.Image, Prepared] | None
CURRENT_INPUT = "current_input"  # the one input shared by Predict and Inside (format: share_input)


def share_input(source: str, label: str, prepared: Prepared, photo_bytes: bytes | None = None) -> None:
    """Keep the prepared input for the other page: ``{"source", "label", "x28", "photo_bytes"}``.

    Also points the Inside page's input choice at this source (before its widget exists: allowed).
    """
    st.session_state[CURRENT_INPUT] = {
        "source": source,
        "label": label,
        "x28": np.asarray(prepared.image, np.uint8).reshape(28, 28),
        "photo_bytes": photo_bytes,
    }
    if st.session_state.get("inside_source") != source:
        st.session_state["inside_source"] = source


@st.cache_data(show_spinner=False)
def training_stats() -> PixelStats:
    """Range of mean intensity, foreground fraction and border brightness over the 60,000 training images."""
    return PixelStats.from_images(dataset_arrays()["x_train"])


def box_canvas(original: Image.Image, key: str) -> tuple[float, float, float, float] | None:
    """The photo on a canvas in rectangle mode: a box drawn around the garment, in photo pixels, or None.

    The last rectangle drawn counts; the box re-seeds the segmentation (outside = background).
    """
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as exc:  # the component needs the Streamlit server's asset registry
        st.caption(f"(Box correction unavailable here: {type(exc).__name__}.)")
        return None
    scale = BOX_CANVAS_PX / max(original.size)
    w, h = max(1, round(original.width * scale)), max(1, round(original.height * scale))
    shown = original.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    st.caption("Wrong mask? Drag a box around the garment on the photo: the mask is found again inside it.")
    try:
        result = st_canvas(
            fill_color="rgba(255, 140, 0, 0.12)",
            stroke_width=2,
            stroke_color="#ff8c00",
            background_image=shown,
            height=h,
            width=w,
            drawing_mode="rect",
            key=f"predict_box_{key}",
        )
    except Exception as exc:  # noqa: BLE001 - the box is optional: the page works without it
        st.caption(f"(Box correction unavailable here: {type(exc).__name__}.)")
        return None
    # Fabric 7 (drawable-canvas 0.13) names the type "Rect"; older versions "rect".
    objects = [o for o in ((result.json_data or {}).get("objects") or []) if str(o.get("type", "")).lower() == "rect"]
    if not objects:
        return None
    o = objects[-1]
    bw, bh = o.get("width", 0) * o.get("scaleX", 1), o.get("height", 0) * o.get("scaleY", 1)
    left = o.get("left", 0) - (bw / 2 if o.get("originX") == "center" else 0)
    top = o.get("top", 0) - (bh / 2 if o.get("originY") == "center" else 0)
    if bw < 4 or bh < 4:  # a click, not a box
        return None
    return (left / scale, top / scale, (left + bw) / scale, (top + bh) / scale)


def _uploaded_photo(data: bytes, invert: str, tolerance: float, method: str = DEFAULT_METHOD) -> Source:
    try:
        original = load_image(data)
    except ImageError as exc:
        st.error(f"This image cannot be used: {exc}")
        return None
    except Exception as exc:  # an odd file must never take the page down
        st.error(f"This image could not be processed ({type(exc).__name__}). Try another file.")
        return None
    box = box_canvas(original, hashlib.sha1(data).hexdigest()[:12])  # a new photo gets a fresh canvas
    try:
        return original, prepare_photo(original, invert, tolerance, method, box)
    except Exception as exc:  # an odd file must never take the page down
        st.error(f"This image could not be processed ({type(exc).__name__}). Try another file.")
    return None


def upload_input(invert: str, tolerance: float, method: str = DEFAULT_METHOD) -> Source:
    """A file upload (PNG, JPEG, WebP, GIF, BMP, TIFF) through the photo pipeline."""
    up = st.file_uploader(
        "Upload a photo of one garment",
        type=UPLOAD_TYPES,
        key="predict_upload",
        help="One garment, the whole garment in view; any background (the garment is found by segmentation).",
    )
    got = _uploaded_photo(up.getvalue(), invert, tolerance, method) if up is not None else None
    if got is not None:
        share_input("Upload", f"upload {up.name}", got[1], up.getvalue())
    return got


def camera_input(invert: str, tolerance: float, method: str = DEFAULT_METHOD) -> Source:
    """A camera shot through the photo pipeline."""
    shot = st.camera_input("Photograph one garment, the whole garment in view", key="predict_camera")
    got = _uploaded_photo(shot.getvalue(), invert, tolerance, method) if shot is not None else None
    if got is not None:
        share_input("Camera", "camera shot", got[1], shot.getvalue())
    return got


def drawing_input() -> Source:
    """The canvas: white strokes on black, as the dataset's garments are light on black."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as exc:  # the component needs the Streamlit server's asset registry
        st.error(f"The drawing canvas is unavailable here ({type(exc).__name__}).")
        return None
    c1, c2 = st.columns(2)
    mode = c1.radio(
        "Tool",
        ["freedraw", "polygon"],
        format_func={"freedraw": "Free drawing", "polygon": "Filled polygon"}.get,
        horizontal=True,
        key="predict_tool",
        help="Polygon: click the corners, click the first corner again to close and fill it.",
    )
    width = c2.slider("Stroke width", 5, 60, 25, key="predict_stroke")
    st.caption("Draw the garment's silhouette in white and fill it in; undo and clear are in the canvas toolbar.")
    result = st_canvas(
        fill_color="#FFFFFF",
        stroke_width=width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_PX,
        width=CANVAS_PX,
        drawing_mode=mode,
        return_image_data=True,
        key="predict_canvas",
    )
    data = result.image_data if result is not None else None
    if data is None or not np.asarray(data).any():
        st.info("Draw something to classify it.")
        return None
    try:
        prepared = prepare_drawing(np.asarray(data))
    except ImageError as exc:
        st.info(str(exc))
        return None
    share_input("Draw", "drawing", prepared)
    return prepared.steps[0][1], prepared


def test_image_input(class_names: tuple[str, ...]) -> Source:
    """A random Fashion-MNIST test image, with its true label."""
    data = dataset_arrays()
    if st.button("Pick a random test image", key="predict_pick"):
        st.session_state["predict_test_index"] = int(np.random.default_rng().integers(len(data["x_test"])))
    i = st.session_state.get("predict_test_index")
    if i is None:
        st.info("Press the button to pick one of the 10,000 test images.")
        return None
    label = class_names[int(data["y_test"][i])] if int(data["y_test"][i]) < len(class_names) else "?"
    st.markdown(f"Test image **#{i}** — true label: **{label}**")
    prepared = prepare_array28(data["x_test"][i])
    share_input("Test image", f"test image #{i} ({label})", prepared)
    return prepared.steps[0][1], prepared


def _thumb(img: Image.Image, px: int = 112) -> Image.Image:
    """Small images blown up with hard pixels (so 28x28 is readable), large ones shrunk."""
    img = img.convert("RGB") if img.mode not in ("L", "RGB") else img
    scale = px / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    method = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return img.resize(size, method)


def steps_strip(prepared: Prepared) -> None:
    """Every intermediate image of the pipeline, left to right, with its caption."""
    st.subheader("Preprocessing steps")
    # Fixed-width columns, so a 4-step drawing strip is not blown up to page width.
    cols = st.columns(max(len(prepared.steps), 8))
    for col, (caption, img) in zip(cols, prepared.steps, strict=False):
        col.image(_thumb(img), caption=caption, width="stretch")


def probability_chart(
    probs: np.ndarray, class_names: tuple[str, ...], none: float | None = None, title: str = "All class probabilities"
) -> go.Figure:
    """Horizontal bars of all class probabilities, the winner highlighted; ``none``: a photo head's
    "None of the ten" output, drawn as an 11th bar."""
    if none is not None:
        probs, class_names = np.append(probs, none), (*class_names, NONE_NAME)
    best = int(np.argmax(probs))
    colours = ["#d62728" if i == best else "#1f77b4" for i in range(len(probs))]
    fig = go.Figure(
        go.Bar(
            x=[float(p) for p in probs],
            y=list(class_names),
            orientation="h",
            marker_color=colours,
            text=[f"{p:.1%}" for p in probs],
            textposition="outside",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=330,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"range": [0, 1.15], "tickformat": ".0%", "title": "probability"},
        yaxis={"autorange": "reversed"},
        title=title,
    )
    return fig


def answer_metric(pred: Prediction, label: str = "Prediction") -> None:
    """One answer as a metric: the class and its probability, or "None of the ten" and the closest class."""
    if pred.rejected:
        st.metric(label, "None of the ten", f"closest: {pred.label} {pred.probability:.1%}", delta_color="off")
    else:
        st.metric(label, pred.label, f"{pred.probability:.1%} confident", delta_color="off")


def two_answers(pred: Prediction, photos: int | None) -> None:
    """The photo head's answer and the CNN's own (Fashion-MNIST only) side by side, each with its chart."""
    own = pred.fashion_mnist_only
    taught = f"{photos:,} real photos" if photos else "real photos"
    st.subheader("What learning from real photos changes")
    st.caption(
        "The same CNN, two answers. Left: a small photo head on the CNN's features, taught on "
        f"{taught}; it is the answer above. Right: the CNN's own answer, taught on Fashion-MNIST's "
        "product shots only, which never show a garment lying on a bed or a floor."
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(f"**With the photo head taught on {taught}**")
        answer_metric(pred, "Photo head")
        if pred.rejected:
            st.caption(pred.reason)
        st.plotly_chart(
            probability_chart(pred.probs, pred.class_names, pred.none_probability, "Photo head"),
            key="predict_probs_head",
        )
    with right:
        st.markdown("**The CNN taught on Fashion-MNIST only**")
        answer_metric(own, "CNN alone")
        if own.rejected:
            st.caption(own.reason)
        st.plotly_chart(probability_chart(own.probs, own.class_names, title="CNN alone"), key="predict_probs")


@st.cache_data(show_spinner=False)
def class_examples(class_index: int, n: int = 6) -> list[np.ndarray]:
    """A few training images of one class (fixed choice, so they do not jump on every rerun)."""
    data = dataset_arrays()
    idx = np.flatnonzero(data["y_train"] == class_index)
    pick = np.random.default_rng(class_index).choice(idx, min(n, len(idx)), replace=False)
    return [data["x_train"][i] for i in pick]
