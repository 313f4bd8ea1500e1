"""Predict: draw, upload or photograph a garment; see each preprocessing step and why the model decided."""

import streamlit as st

from fmnist_core.explain import overlay, overlay_on_source
from fmnist_core.preprocess import DEFAULT_TOLERANCE, unusual_input
from fmnist_core.registry import ModelError, default_photo_model, model_class_names, resolve
from fmnist_core.segment import DEFAULT_METHOD, METHODS
from ui import predict_widgets
from ui.common import HEAD_KEY, active_model, predictor_for
from ui.frame import frame

frame("Predict")

SOURCES = ["Upload", "Draw", "Camera", "Test image"]
st.session_state.setdefault("predict_source", "Upload")
st.session_state.setdefault("predict_invert", "auto")
st.session_state.setdefault("predict_tolerance", DEFAULT_TOLERANCE)
st.session_state.setdefault("predict_segment", DEFAULT_METHOD)
st.session_state.setdefault("predict_photo_model", "photo model")

st.title("Predict")
st.caption(
    "A photo is brought into Fashion-MNIST's form: the garment is found (a mask), then the steps "
    "that made the dataset: trim the background, shrink to 28 px, sharpen, centre on 28x28, negate; "
    "last, a garment lying flat is narrowed to 0.9 of its width (spread out, it is wider than the "
    "dataset's product shots). Every step is shown below."
)
ref = active_model()
if ref is None:
    st.warning("No model yet: train one on the Train page (or ship one in models/).")
    st.stop()

source = st.radio("Input", SOURCES, horizontal=True, key="predict_source")
left, right = st.columns([1, 1], gap="large")
with left:
    if source in ("Upload", "Camera"):
        st.radio(
            "Model for photos",
            ["photo model", "active model"],
            horizontal=True,
            key="predict_photo_model",
            help="The photo model was trained (on Fashion-MNIST only) to cope with what a real photo "
            "leaves after segmentation; switch to the active model to see the difference.",
        )
        with st.expander("Photo preprocessing", expanded=False):
            st.selectbox(
                "Segmentation",
                METHODS,
                key="predict_segment",
                help="grabcut: OpenCV GrabCut seeded from the photo's border (measured best); "
                "border: colour distance to the border; hybrid: GrabCut seeded by that; none: the dataset's steps only.",
            )
            st.radio(
                "Negate (light garment on black, like the dataset)",
                ["auto", "on", "off"],
                horizontal=True,
                key="predict_invert",
                help="auto: negate when the background is light, as in a product photo.",
            )
            st.slider(
                "Trim tolerance",
                0.0,
                0.3,
                step=0.01,
                key="predict_tolerance",
                help="How different from the corner colour a pixel must be to count as garment (the dataset used 5%).",
            )
    invert, tolerance = st.session_state["predict_invert"], st.session_state["predict_tolerance"]
    method = st.session_state["predict_segment"]
    if source == "Upload":
        got = predict_widgets.upload_input(invert, tolerance, method)
    elif source == "Camera":
        got = predict_widgets.camera_input(invert, tolerance, method)
    elif source == "Draw":
        got = predict_widgets.drawing_input()
    else:
        got = predict_widgets.test_image_input(model_class_names(ref))

if got is None:
    st.stop()
original, prepared = got
if source in ("Upload", "Camera") and st.session_state["predict_photo_model"] == "photo model":
    try:
        ref = resolve(default_photo_model())
    except ModelError:
        pass  # no photo model shipped: the active model it is
predictor = predictor_for(
    ref, st.session_state.get(HEAD_KEY)
)  # loaded once per model file and cached for every session
pred = predictor.predict_prepared(prepared)

with right:
    predict_widgets.answer_metric(pred)
    if pred.rejected:
        st.warning(f"This does not look like any of the ten classes ({pred.reason}).")
    if prepared.note:
        st.info(prepared.note)
    st.caption(f"Model: {ref.label}" + (f" + photo head {pred.head}" if pred.head else ""))
    reasons = unusual_input(prepared.image, predict_widgets.training_stats(), pred.probability)
    if reasons:
        st.warning(
            "This input is unlike the training images, so treat the answer with care: " + "; ".join(reasons) + "."
        )
    if pred.fashion_mnist_only is None:
        st.plotly_chart(predict_widgets.probability_chart(pred.probs, pred.class_names), key="predict_probs")

if pred.fashion_mnist_only is not None:
    predict_widgets.two_answers(pred, predictor.head.card.get("photos") if predictor.head else None)

predict_widgets.steps_strip(prepared)

st.subheader("Why: Grad-CAM")
st.caption(
    f"Where the last convolution layer found evidence for **{pred.label}** (bright = strong). "
    "Left on the 28x28 model input, right on what you gave."
)
heat = predictor.heatmap(prepared.image, pred.index)
c1, c2 = st.columns(2)
c1.image(overlay(prepared.image, heat, size=280), caption="heat map over the 28x28 input", width=280)
c2.image(overlay_on_source(heat, prepared, original), caption="heat map over the original", width=280)

st.subheader(f"Training images labelled {pred.label}")
st.image(predict_widgets.class_examples(pred.index), width=84)
