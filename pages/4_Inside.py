"""Inside the CNN: every layer's view of the input, what a channel looks for, and a map of the test set."""

import numpy as np
import streamlit as st

from fmnist_core.evaluate import enlarge
from fmnist_core.preprocess import DEFAULT_TOLERANCE
from fmnist_core.registry import model_class_names
from fmnist_core.segment import DEFAULT_METHOD
from ui import inside_widgets, predict_widgets
from ui.common import active_model, dataset_or_stop, model_choices
from ui.evaluate_widgets import image_grid
from ui.frame import frame

frame("Inside")
state = st.session_state
SOURCES = ["Test image", "Draw", "Upload", "Camera"]
if predict_widgets.CURRENT_INPUT not in state:  # a first visit opens on a test image, so everything shows at once
    state.setdefault("predict_test_index", 0)
state.setdefault("inside_source", state.get(predict_widgets.CURRENT_INPUT, {}).get("source", "Test image"))
state.setdefault("inside_zoom", None)  # (layer name, channel) of the clicked map

st.title("Inside the CNN")
st.caption(
    "What happens between the 28x28 input and the ten probabilities. Each convolution block's "
    "activation maps (bright = the channel fired there; block 1 finds edges, later blocks parts), "
    "the dense layer, the first layer's filters, the test images a channel likes most, and where "
    "the model puts all 10,000 test images. The input is the one chosen here or on Predict."
)
ref = active_model()
if ref is None:
    st.warning("No model yet: train one on the Train page (or ship one in models/).")
    st.stop()
data = dataset_or_stop()
names = model_class_names(ref)

left, right = st.columns([3, 2], gap="large")
with left:
    source = st.radio("Input", SOURCES, horizontal=True, key="inside_source")
    invert, tol = state.get("predict_invert", "auto"), state.get("predict_tolerance", DEFAULT_TOLERANCE)
    method = state.get("predict_segment", DEFAULT_METHOD)
    if source == "Upload":
        predict_widgets.upload_input(invert, tol, method)
    elif source == "Camera":
        predict_widgets.camera_input(invert, tol, method)
    elif source == "Draw":
        predict_widgets.drawing_input()
    else:
        predict_widgets.test_image_input(names)
current = state.get(predict_widgets.CURRENT_INPUT)
if current is None:
    st.info("Choose an input above (or on Predict) to look inside the model.")
    st.stop()
x28 = current["x28"]
probe = inside_widgets.probe_for(ref)
view = probe.view(x28)
by_name = {layer.name: layer for layer in view.layers}
zoom = state["inside_zoom"] if state["inside_zoom"] and state["inside_zoom"][0] in by_name else None

with right:
    answer = names[int(np.argmax(view.probs))]
    st.markdown(f"**{current['label']}** → the model says **{answer}** ({float(view.probs.max()):.0%})")
    a, b = st.columns(2)
    a.image(enlarge(x28, 224), caption="the 28x28 input")
    if zoom:
        layer = by_name[zoom[0]]
        i = list(layer.channels).index(zoom[1])
        b.image(
            inside_widgets.enlarged_map(layer.maps[i], float(layer.maps.max()), 224),
            caption=f"{zoom[0]}, channel {zoom[1]}",
        )
    else:
        b.caption("Click a map below to see it large here.")
    st.caption(f"Model: {ref.label}")


def on_grid_click(layer_name: str, channels: tuple[int, ...]) -> None:
    channel = inside_widgets.clicked_channel(state.get(f"inside_grid_{layer_name}"), channels)
    if channel is not None:
        state["inside_zoom"] = (layer_name, channel)
        state["inside_layer"], state["inside_channel"] = layer_name, channel


st.subheader("Layer by layer")
cols = st.columns(len(view.layers))
for col, layer in zip(cols, view.layers, strict=True):
    h, wd, c = layer.shape
    col.markdown(f"**Block {layer.block}** · `{layer.name}` · {h}×{wd}×{c} · {layer.fired:.0%} of units fired")
    col.caption(f"The {len(layer.channels)} strongest of {c} channels, strongest first.")
    col.plotly_chart(
        inside_widgets.grid_figure(layer, zoom[1] if zoom and zoom[0] == layer.name else None),
        key=f"inside_grid_{layer.name}",
        on_select=lambda n=layer.name, ch=tuple(layer.channels): on_grid_click(n, ch),
        selection_mode="points",
        config={"displayModeBar": False},
        theme=None,  # Streamlit's theme would replace the Inferno colours
    )
d1, d2, d3 = st.columns(3)
d1.plotly_chart(inside_widgets.dense_figure(view), key="inside_dense")
d2.plotly_chart(predict_widgets.probability_chart(view.probs, names), key="inside_probs")
with d3:
    st.markdown(f"**First layer's {len(probe.filters())} filters** (3×3; red +, blue −)")
    st.plotly_chart(
        inside_widgets.filters_figure(probe.filters()),
        key="inside_filters",
        config={"displayModeBar": False},
        theme=None,
    )

tm = inside_widgets.test_map(ref)  # computed once per model (progress bar), then from disk in a fraction of a second
y, x_test = data["y_test"], data["x_test"]

st.subheader("What a channel looks for")
c1, c2 = st.columns(2)
layer_name = c1.selectbox("Layer", probe.layer_names, key="inside_layer")
n_channels = by_name[layer_name].shape[2]
if state.get("inside_channel", 0) >= n_channels:
    state["inside_channel"] = 0
channel = int(c2.number_input(f"Channel (0-{n_channels - 1})", 0, n_channels - 1, key="inside_channel"))
top = tm.top_images(layer_name, channel, 16)
st.caption(f"The 16 test images that excite channel {channel} of {layer_name} most (its highest value anywhere).")
with st.container(key="inside_top"):
    image_grid(top, x_test, y, tm.probs, names, key="top")

st.subheader("The map of the test set")
st.caption(
    f"All {len(tm.xy):,} test images placed by the model's {probe.dense_name} features ({tm.method}: "
    "near on the map = similar to the model), coloured by true class; crosses are the model's "
    "mistakes; the star is your input, placed among its nearest neighbours in feature space. "
    "Hover for a point's number and classes; drag a box (or pick the lasso) to see the images."
)
star = tm.place(view.features)[0]
fig, members = inside_widgets.map_figure(tm, y, names, star)
st.plotly_chart(fig, key=inside_widgets.MAP_KEY, on_select="rerun", selection_mode=("points", "box", "lasso"))
picked = inside_widgets.selected_indices(state.get(inside_widgets.MAP_KEY), members)
if len(picked):
    st.markdown(f"**{len(picked):,} images selected**" + (", the first 32 shown" if len(picked) > 32 else ""))
    with st.container(key="inside_selected"):
        image_grid(picked[:32], x_test, y, tm.probs, names, key="sel")

st.subheader("Compare two models")
others = [m for m in model_choices() if m.key != ref.key]
if others and st.toggle("Show another model's map beside this one", key="inside_compare"):
    other = st.selectbox("Model B", others, format_func=lambda m: m.label, key="inside_other")
    tm_b, probe_b = inside_widgets.test_map(other), inside_widgets.probe_for(other)
    star_b = tm_b.place(probe_b.view(x28).features)[0]
    ca, cb = st.columns(2)
    for col, r, t, s in ((ca, ref, tm, star), (cb, other, tm_b, star_b)):
        acc = float(np.mean(t.probs.argmax(1) == y))
        f, _ = inside_widgets.map_figure(
            t, y, names, s, title=f"{r.label}: {acc:.1%}", height=480, show_legend=col is cb
        )
        col.plotly_chart(f, key=f"inside_cmp_{col is cb}")
elif not others:
    st.info("Only one model is available: train another to compare maps.")
