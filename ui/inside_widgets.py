"""Pieces of the Inside page: the cached probe and map of a model, and its Plotly figures.

The work is done in ``fmnist_core.inside``; here it is cached per model file (the probe with
``st.cache_resource``, the map on disk beside the model's test scores and in memory) and drawn.
Clickable heatmaps follow the confusion matrix's pattern (``evaluate_widgets.confusion_figure``):
a heatmap alone returns no selection, so an invisible scatter point on every tile centre receives the click.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from fmnist_core import inside, registry
from fmnist_core.explain import colourise
from fmnist_core.inside_png import CLASS_COLOURS
from ui.common import dataset_arrays, predictor
from ui.evaluate_widgets import fingerprint

GRID_COLS = 4
# Inferno as rgb() strings: given as hex ('#000004' first), Streamlit's front end swapped the first
# colour for '#ab63fa' (seen in the browser), so zeros drew lavender instead of black.
INFERNO = [[i / 9, f"rgb{tuple(int(c[j : j + 2], 16) for j in (1, 3, 5))}"] for i, c in enumerate(
    ["#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60", "#cf4446", "#ed6925", "#fb9b06", "#f7d13d", "#fcffa4"]
)]  # fmt: skip
MAP_KEY = "inside_map"


@st.cache_resource(show_spinner="Loading the model's layers ...", max_entries=4)
def probe(path: str, mtime: float) -> inside.Inside:
    """The traced probe of a model file (one per file and modification time, shared by all sessions)."""
    return inside.Inside(predictor(path, mtime).model)


def probe_for(ref: registry.ModelRef) -> inside.Inside:
    """The probe of ``ref``, or the error on the page and ``st.stop()``."""
    try:
        return probe(str(ref.path), ref.path.stat().st_mtime)
    except (registry.ModelError, OSError, ValueError) as exc:
        st.error(f"Cannot look inside {ref.label}: {exc}")
        st.stop()


@st.cache_resource(show_spinner=False, max_entries=4)
def _saved_map(fp: str) -> inside.TestMap | None:
    return inside.load_map(inside.map_path(fp), len(dataset_arrays()["y_test"]))


def test_map(ref: registry.ModelRef) -> inside.TestMap:
    """The model's map of the test set: from memory, from disk, or computed once with a progress bar."""
    stat = ref.path.stat()
    fp = fingerprint(str(ref.path), stat.st_mtime, stat.st_size)
    tm = _saved_map(fp)
    if tm is not None:
        return tm
    bar = st.progress(0.0, text=f"First look inside {ref.label}: loading the model ...")
    tm = inside.load_or_compute_map(
        ref.path,
        dataset_arrays()["x_test"],
        load_model=lambda: predictor(str(ref.path), stat.st_mtime).model,
        progress=lambda f, text: bar.progress(min(max(f, 0.0), 1.0), text=text),
    )
    _saved_map.clear()
    bar.empty()
    return tm


def _image_axes(fig: go.Figure, height: int) -> go.Figure:
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")  # row 0 on top, square pixels
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0}, dragmode=False, hovermode="closest")
    return fig


def grid_figure(layer: inside.LayerView, selected: int | None = None, height: int = 300) -> go.Figure:
    """The block's strongest maps as one clickable mosaic; the clicked channel framed in red."""
    h, w, _ = layer.shape
    k = len(layer.channels)
    fig = go.Figure(
        go.Heatmap(z=inside.mosaic(layer.maps, GRID_COLS), colorscale=INFERNO, showscale=False, hoverinfo="skip")
    )
    centres = inside.tile_centres(k, h, w, GRID_COLS)
    fig.add_trace(
        go.Scatter(
            x=centres[:, 0], y=centres[:, 1], mode="markers", showlegend=False,
            # Transparent colour, not only opacity 0: Streamlit restyles the opacity of selectable points.
            marker={"symbol": "square", "size": 300 // GRID_COLS, "opacity": 0, "color": "rgba(0,0,0,0)"},
            selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
            customdata=np.stack([layer.channels, np.round(layer.strength, 2)], axis=1),
            # hoverinfo must not be "skip": Plotly sends no click for points that skip hover.
            hovertemplate="channel %{customdata[0]}, max %{customdata[1]} — click to enlarge<extra></extra>",
        )
    )  # fmt: skip
    if selected is not None and selected in layer.channels:
        x, y = centres[list(layer.channels).index(selected)]
        fig.add_shape(
            type="rect", x0=x - w / 2, x1=x + w / 2, y0=y - h / 2, y1=y + h / 2, line={"color": "#d62728", "width": 3}
        )
    return _image_axes(fig, height)


def clicked_channel(event, channels: Sequence[int]) -> int | None:
    """The channel of a click on ``grid_figure``: its scatter point's index names the tile, or None."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points:
        i = p.get("point_index", p.get("point_number"))
        if p.get("curve_number") == 1 and isinstance(i, int) and 0 <= i < len(channels):
            return int(channels[i])
    return None


def filters_figure(filters: np.ndarray, height: int = 260) -> go.Figure:
    """The first layer's 3x3 filters, 8 to a row, red positive and blue negative weights."""
    grid = inside.mosaic(filters, cols=8)
    lim = float(np.nanmax(np.abs(grid))) or 1.0
    fig = go.Figure(go.Heatmap(z=grid, colorscale="RdBu_r", zmin=-lim, zmax=lim, showscale=False, hoverinfo="skip"))
    return _image_axes(fig, height)


def dense_figure(view: inside.InsideView) -> go.Figure:
    """The dense layer's strongest units as bars."""
    fig = go.Figure(go.Bar(x=[f"u{int(u)}" for u in view.dense_units], y=view.dense_values, marker_color="#1f77b4"))
    fig.update_layout(
        height=330, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="activation",
        title=f"{view.dense_name}: strongest of {view.dense_size} units ({view.dense_fired:.0%} fired)",
    )  # fmt: skip
    return fig


def enlarged_map(amap: np.ndarray, top: float, px: int = 280) -> Image.Image:
    """One activation map coloured on the block's scale, blown up with hard pixels."""
    img = Image.fromarray(colourise(np.asarray(amap) / (top or 1.0)), "RGB")
    return img.resize((px, px), Image.Resampling.NEAREST)


def map_figure(
    tm: inside.TestMap,
    y: np.ndarray,
    names: Sequence[str],
    star: np.ndarray | None,
    title: str = "",
    height: int = 620,
    show_legend: bool = True,
) -> tuple[go.Figure, list[np.ndarray]]:
    """The test-set map (one WebGL trace per class, mistakes as crosses, the input as a star).

    Returns the figure and, per trace, the test indices of its points (a selection names a trace
    and a point within it).
    """
    pred = tm.probs.argmax(1)
    fig, members = go.Figure(), []
    for c, name in enumerate(names):
        idx = np.flatnonzero(y == c)
        members.append(idx)
        text = [f"#{i} {name} → {names[pred[i]]}" for i in idx]
        fig.add_trace(
            go.Scattergl(
                x=tm.xy[idx, 0], y=tm.xy[idx, 1], mode="markers", name=name, text=text,
                marker={"size": 4, "color": CLASS_COLOURS[c % 10], "opacity": 0.75},
                hovertemplate="%{text}<extra></extra>",
            )
        )  # fmt: skip
    wrong = np.flatnonzero(pred != y)
    members.append(wrong)
    fig.add_trace(
        go.Scattergl(
            x=tm.xy[wrong, 0], y=tm.xy[wrong, 1], mode="markers", name=f"mistake ({len(wrong):,})",
            marker={"symbol": "x-thin", "size": 5, "color": "black", "line": {"width": 1, "color": "black"}},
            text=[f"#{i} {names[y[i]]} → {names[pred[i]]} (mistake)" for i in wrong],
            hovertemplate="%{text}<extra></extra>",
        )
    )  # fmt: skip
    if star is not None:
        members.append(np.array([], int))
        fig.add_trace(
            go.Scatter(
                x=[float(star[0])], y=[float(star[1])], mode="markers", name="your input",
                marker={"symbol": "star", "size": 24, "color": "gold", "line": {"width": 2, "color": "black"}},
                hovertemplate="your input<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        height=height, margin={"l": 0, "r": 0, "t": 30 if title else 0, "b": 0}, title=title, dragmode="select",
        showlegend=show_legend, legend={"itemsizing": "constant"},
    )  # fmt: skip
    return fig, members


def selected_indices(event, members: list[np.ndarray]) -> np.ndarray:
    """Test indices of the points in a box/lasso/click selection of ``map_figure`` (each once, in order)."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return np.array([], dtype=int)
    out = []
    for p in points:
        curve, i = p.get("curve_number"), p.get("point_index", p.get("point_number"))
        if isinstance(curve, int) and isinstance(i, int) and 0 <= curve < len(members) and 0 <= i < len(members[curve]):
            out.append(int(members[curve][i]))
    return np.array(list(dict.fromkeys(out)), dtype=int)
