"""Static PNG figures of ``fmnist_core.inside`` for the CLI (a report or a handout); matplotlib, no display."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .figures import _plt
from .inside import InsideView, LayerView, TestMap, mosaic

# Ten distinct colours (matplotlib's tab10), one per class; the page uses the same list.
CLASS_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _save(fig, path: Path) -> Path:
    fig.savefig(path, bbox_inches="tight")
    _plt().close(fig)
    return path


def input_png(image_u8: np.ndarray, path: Path, label: str) -> Path:
    """The prepared 28x28 input, enlarged, with the model's answer."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(2.6, 2.8), dpi=110)
    ax.imshow(np.asarray(image_u8).reshape(28, 28), cmap="gray", vmin=0, vmax=255)
    ax.set_title(f"input (model: {label})", fontsize=9)
    ax.axis("off")
    return _save(fig, path)


def block_png(layer: LayerView, path: Path, cols: int = 4) -> Path:
    """The block's strongest maps, 4 to a row, each titled with its channel number."""
    plt = _plt()
    rows = -(-len(layer.channels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.7 + 0.4), dpi=110, squeeze=False)
    top = float(layer.maps.max()) or 1.0
    for ax in axes.flat:
        ax.axis("off")
    for ax, channel, amap in zip(axes.flat, layer.channels, layer.maps, strict=False):
        ax.imshow(amap, cmap="inferno", vmin=0, vmax=top)  # one scale for the block: tiles compare
        ax.set_title(f"ch {int(channel)}", fontsize=8)
    h, w, c = layer.shape
    fig.suptitle(f"block {layer.block} ({layer.name}, {h}x{w}x{c}): {layer.fired:.0%} of units fired", fontsize=10)
    return _save(fig, path)


def dense_png(view: InsideView, names: Sequence[str], path: Path) -> Path:
    """The dense layer's strongest units and the ten output probabilities, side by side."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    a1.bar([str(int(u)) for u in view.dense_units], view.dense_values, color="#1f77b4")
    a1.set(
        title=f"{view.dense_name}: strongest of {view.dense_size} units ({view.dense_fired:.0%} fired)",
        xlabel="unit",
        ylabel="activation",
    )
    a1.tick_params(axis="x", labelsize=7)
    best = int(np.argmax(view.probs))
    a2.barh(list(names), view.probs, color=["#d62728" if i == best else "#9aa5b1" for i in range(len(names))])
    a2.invert_yaxis()
    a2.set(title="the ten outputs", xlim=(0, 1), xlabel="probability")
    return _save(fig, path)


def filters_png(filters: np.ndarray, path: Path) -> Path:
    """The first layer's 3x3 filters as one mosaic (blue negative, red positive weights)."""
    plt = _plt()
    cols = 8
    grid = mosaic(filters, cols=cols)
    lim = float(np.nanmax(np.abs(grid))) or 1.0
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1] + 0.5), dpi=110)
    ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"first layer: {len(filters)} filters of 3x3 (red +, blue -)", fontsize=10)
    ax.axis("off")
    return _save(fig, path)


def map_png(tm: TestMap, y_test: np.ndarray, names: Sequence[str], star: np.ndarray, path: Path, title: str) -> Path:
    """The test-set map coloured by true class, mistakes as black crosses, the input as a star."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 7), dpi=110)
    for c, name in enumerate(names):
        at = np.asarray(y_test) == c
        ax.scatter(tm.xy[at, 0], tm.xy[at, 1], s=2, color=CLASS_COLOURS[c % 10], label=name, rasterized=True)
    wrong = tm.probs.argmax(1) != np.asarray(y_test)
    ax.scatter(tm.xy[wrong, 0], tm.xy[wrong, 1], s=4, marker="x", color="black", lw=0.4, label="mistake")
    ax.scatter([star[0]], [star[1]], s=400, marker="*", color="gold", edgecolor="black", lw=1.2, label="your input")
    legend = ax.legend(markerscale=3, fontsize=7, loc="upper right", framealpha=0.85)
    legend.legend_handles[-1].set_sizes([90])  # the star at legend size, not at map size
    ax.set_title(f"{title}: {len(tm.xy):,} test images by their {tm.method} map of the features", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)
