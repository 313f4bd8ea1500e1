"""Building blocks of the Evaluate page: cached predictions, Plotly figures, image galleries.

Predictions are computed once per model file and cached by its SHA-256 fingerprint, so every
click afterwards only slices cached arrays. Figures are plain Plotly (no Streamlit inside);
the gallery helpers draw with Streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from fmnist_core import registry
from fmnist_core.evaluate import (
    caption,
    enlarge,
    file_fingerprint,
    load_scores,
    report,
    save_scores,
    score_in_batches,
    top_k,
)
from ui.common import dataset_arrays, predictor

THUMB_PX = 84  # 3x the 28-pixel image: big enough to recognise, 8 fit across a wide page
ZOOM_PX = 280


# ---------------------------------------------------------------- cached predictions


@st.cache_data(show_spinner=False, max_entries=16)
def fingerprint(path: str, mtime: float, size: int) -> str:  # noqa: ARG001 (mtime, size: cache key)
    """SHA-256 of the model file, recomputed only when its mtime or size changes."""
    return file_fingerprint(Path(path))


@st.cache_data(show_spinner=False, max_entries=6)
def saved_test_probabilities(fp: str) -> np.ndarray | None:
    """Test probabilities of the model with SHA-256 ``fp`` if scored before, on this or an earlier start."""
    return load_scores(fp, "fashion", len(dataset_arrays()["y_test"]))


def test_probabilities(path: str, fp: str) -> np.ndarray:
    """(N, 10) probabilities of the model file at ``path`` on the Fashion-MNIST test images.

    Scored once per model file and kept on disk (``fmnist_core.evaluate.save_scores``): the first
    open shows a progress bar (TensorFlow, the model, then the 10,000 images), later opens and
    server restarts read the saved scores at once.
    """
    probs = saved_test_probabilities(fp)
    if probs is not None:
        return probs
    bar = st.progress(0.0, text="First look at this model: loading TensorFlow and the model ...")
    model = predictor(path, Path(path).stat().st_mtime)
    x_test = dataset_arrays()["x_test"]

    def shown(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Classifying the test images once for this model: {done:,} of {total:,}")

    probs = score_in_batches(model.probabilities, x_test, batch_size=500, progress=shown)
    save_scores(fp, "fashion", probs)
    saved_test_probabilities.clear()
    bar.empty()
    return probs


def evaluate_or_stop(ref: registry.ModelRef) -> tuple[np.ndarray, dict[str, Any]]:
    """Test probabilities and report of ``ref``, or an error on the page and ``st.stop()``."""
    try:
        stat = ref.path.stat()
        fp = fingerprint(str(ref.path), stat.st_mtime, stat.st_size)
        probs = test_probabilities(str(ref.path), fp)
    except (registry.ModelError, OSError) as exc:
        st.error(f"The model {ref.label} could not be evaluated: {exc}")
        st.stop()
    # The report is a few milliseconds of numpy on the cached scores: no cache needed.
    return probs, report(dataset_arrays()["y_test"], probs, registry.model_class_names(ref))


# ---------------------------------------------------------------- figures


def _matrix_axes(fig: go.Figure, names: Sequence[str], x_title: str, y_title: str) -> None:
    ticks = {"tickmode": "array", "tickvals": list(range(len(names))), "ticktext": list(names)}
    fig.update_xaxes(title=x_title, side="bottom", tickangle=-35, showgrid=False, zeroline=False, **ticks)
    # True classes read top to bottom, as in a printed confusion matrix.
    fig.update_yaxes(title=y_title, autorange="reversed", showgrid=False, zeroline=False, **ticks)


def confusion_figure(
    cm: np.ndarray, names: Sequence[str], rates: np.ndarray | None = None, selected: tuple[int, int] | None = None
) -> go.Figure:
    """The clickable confusion matrix: rows = true class, columns = predicted class.

    A heatmap alone returns no selection in ``st.plotly_chart(on_select=...)`` on this stack, so
    an invisible scatter point sits on every cell centre (row-major order) to receive the click.
    """
    cm = np.asarray(cm)
    n = len(names)
    z = cm if rates is None else rates
    text = (
        cm.astype(str)
        if rates is None
        else np.vectorize(lambda v: "" if not v else f"{v:.0%}" if v >= 0.01 else f"{v:.1%}")(rates)
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(n)),
            y=list(range(n)),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hoverinfo="skip",
        )
    )
    rows, cols = np.divmod(np.arange(n * n), n)
    fig.add_trace(
        go.Scatter(
            x=cols, y=rows, mode="markers", showlegend=False,
            marker={"symbol": "square", "size": 36, "opacity": 0},
            customdata=np.stack([np.take(names, rows), np.take(names, cols), cm.ravel()], axis=1),
            # hoverinfo must not be "skip": skipped points receive no click either.
            hovertemplate="true: %{customdata[0]}<br>pred: %{customdata[1]}<br>%{customdata[2]} images — click to see them<extra></extra>",
        )
    )  # fmt: skip
    if selected is not None:
        r, c = selected
        fig.add_shape(
            type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, line={"color": "#d62728", "width": 3}
        )
    _matrix_axes(fig, names, "Predicted class", "True class")
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="closest", dragmode=False)
    return fig


def difference_figure(diff: np.ndarray, names: Sequence[str]) -> go.Figure:
    """Model B's confusion counts minus model A's: red = B more often, blue = B less often."""
    lim = max(1, int(np.abs(diff).max()))
    fig = go.Figure(
        go.Heatmap(
            z=diff, x=list(range(len(names))), y=list(range(len(names))), text=diff.astype(str),
            texttemplate="%{text}", colorscale="RdBu_r", zmin=-lim, zmax=lim,
            customdata=np.array([[(t, p) for p in names] for t in names]),
            hovertemplate="true: %{customdata[0]}<br>pred: %{customdata[1]}<br>B − A: %{z}<extra></extra>",
        )
    )  # fmt: skip
    _matrix_axes(fig, names, "Predicted class", "True class")
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def history_figure(history: list[dict[str, Any]]) -> go.Figure:
    """Loss and accuracy per epoch, training and validation, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    epochs = [h["epoch"] for h in history]
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, name, dash in (("", "training", "solid"), ("val_", "validation", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=epochs, y=[h.get(prefix + metric) for h in history], name=f"{name} {metric}",
                    mode="lines+markers", line={"dash": dash},
                ),
                row=1, col=col,
            )  # fmt: skip
    fig.update_xaxes(title="epoch", dtick=1 if len(epochs) <= 20 else None)
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def probability_figure(probs: np.ndarray, names: Sequence[str], true_class: int) -> go.Figure:
    """Horizontal bars of all ten probabilities; the true class in green, the prediction in red."""
    pred = int(np.argmax(probs))
    colors = ["#2ca02c" if i == true_class else "#d62728" if i == pred else "#9aa5b1" for i in range(len(names))]
    fig = go.Figure(
        go.Bar(x=probs, y=list(names), orientation="h", marker_color=colors, text=[f"{p:.1%}" for p in probs])
    )
    fig.update_layout(height=330, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis={"range": [0, 1.05]})
    fig.update_yaxes(autorange="reversed")
    return fig


# ---------------------------------------------------------------- galleries


@st.dialog("Test image", width="large")
def image_dialog(index: int, image: np.ndarray, true_class: int, probs: np.ndarray, names: Sequence[str]) -> None:
    """One test image enlarged, with its probability bars (opened on demand)."""
    left, right = st.columns([1, 2])
    left.image(enlarge(image, ZOOM_PX), caption=caption(true_class, probs, names))
    left.caption(f"Test image #{index}")
    right.plotly_chart(probability_figure(probs, names, true_class), key=f"zoom-bars-{index}")


def image_grid(
    indices: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    probs: np.ndarray,
    names: Sequence[str],
    key: str,
    per_row: int = 8,
) -> None:
    """Enlarged test images with ``true: X / pred: Y (p%)`` captions, top-3 and an enlarge button."""
    for start in range(0, len(indices), per_row):
        cols = st.columns(per_row)
        for col, i in zip(cols, indices[start : start + per_row], strict=False):
            i = int(i)
            with col:
                st.image(enlarge(x[i], THUMB_PX), caption=caption(int(y[i]), probs[i], names))
                st.caption(" · ".join(f"{n} {p:.0%}" for n, p in top_k(probs[i], names, 3)))
                if st.button("Enlarge", key=f"{key}-zoom-{i}", icon=":material/zoom_in:", width="stretch"):
                    image_dialog(i, x[i], int(y[i]), probs[i], names)


def pager(n_items: int, per_page: int, key: str) -> int:
    """A page number input (1-based state, kept in range when the item count shrinks); returns a 0-based page."""
    pages = max(1, -(-n_items // per_page))
    if st.session_state.get(key, 1) > pages:
        st.session_state[key] = 1  # allowed: set before the widget is created in this run
    if pages == 1:
        return 0
    col, _ = st.columns([1, 4])
    return int(col.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=key)) - 1


def trained_when(meta: dict[str, Any]) -> str:
    """'2026-11-25 03:40 UTC, 312 s' from run.json timestamps (empty if unknown)."""
    end = meta.get("finished_at")
    if not end:
        return ""
    text = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    secs = meta.get("total_seconds")
    return text + (f", took {secs:.0f} s" if secs else "")
