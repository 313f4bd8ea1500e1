"""Widgets of the Train page: the settings form, the live run panel, the curves and the history.

The page (pages/1_Train.py) lays these out; the logic they call lives in fmnist_core (runs,
estimate, preview). Widget values persist across page switches (``persist_state="session"``),
so a teacher who looks at Evaluate and comes back finds the settings as they left them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_core import access, runqueue, runs
from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.estimate import config_problems, format_duration, preset_description
from ui import class_widgets
from ui.common import MODEL_KEY, dataset_arrays, runs_root

PRESET_KEY = "train_preset"
PREVIEW_SEED = "train_preview_seed"
WATCH = "train_watch"  # run id last started from this session
CONFIRM_DELETE = "train_confirm_delete"
FLASH = "train_flash"  # a message to show once after a rerun

BATCH_SIZES = [16, 32, 64, 128, 256, 512]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
# Material icons (Streamlit's own font) rather than emoji, which some browsers lack.
STATUS_ICON = {
    "queued": ":material/hourglass_top:",
    "running": ":material/directions_run:",
    "stopping": ":material/hourglass_bottom:",
    "finished": ":material/check_circle:",
    "stopped": ":material/stop_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}
STATUS_COLOR = {"running": "blue", "queued": "gray", "stopping": "orange", "finished": "green", "stopped": "orange"}


# ---------------------------------------------------------------- state


# The TrainConfig fields the form edits, each kept in session state as "train_<field>", and the
# type its widget value is read back as. The training-image limit is two widgets (see below).
FORM_FIELDS: tuple[tuple[str, type], ...] = (
    ("epochs", int),
    ("batch_size", int),
    ("learning_rate", float),
    ("seed", int),
    ("augment", bool),
    ("rotation_deg", float),
    ("shift", float),
    ("zoom", float),
    ("hflip", bool),
    ("erase_prob", float),
)


def _fields(cfg: TrainConfig) -> dict[str, Any]:
    """Widget key -> value for the settings the form exposes."""
    values = {f"train_{name}": kind(getattr(cfg, name)) for name, kind in FORM_FIELDS}
    return {**values, "train_use_all": cfg.limit is None, "train_limit": cfg.limit or 6000}


def init_train_state() -> None:
    """All session state of the Train page, set up in one place."""
    st.session_state.setdefault(PRESET_KEY, "paper")
    for key, value in _fields(PRESETS[st.session_state[PRESET_KEY]]).items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault(PREVIEW_SEED, 0)
    st.session_state.setdefault(WATCH, None)
    st.session_state.setdefault(CONFIRM_DELETE, None)
    st.session_state.setdefault(FLASH, None)


def _apply_preset() -> None:
    """on_change of the preset picker: load every setting from the preset."""
    st.session_state.update(_fields(PRESETS[st.session_state[PRESET_KEY]]))


def config_from_state() -> tuple[TrainConfig | None, list[str]]:
    """The TrainConfig the form describes (preset + overrides), or None and the problems."""
    s = st.session_state
    changes: dict[str, Any] = {name: kind(s[f"train_{name}"]) for name, kind in FORM_FIELDS}
    changes["limit"] = None if s.train_use_all else int(s.train_limit)
    try:
        cfg = PRESETS[s[PRESET_KEY]].replace(**changes)
    except (ValueError, TypeError) as exc:
        return None, str(exc).split("; ")
    return cfg, config_problems(cfg)


# ---------------------------------------------------------------- the form


def settings_form() -> None:
    """Preset picker and the settings a teacher varies, each with its limits and one-line help."""
    keep = {"persist_state": "session"}
    st.radio(
        "Preset",
        list(PRESETS),
        key=PRESET_KEY,
        horizontal=True,
        on_change=_apply_preset,
        help="Loads a complete recipe; change any setting below afterwards.",
        **keep,
    )
    # What the preset does, and its run time only when measured on this machine (never a figure
    # from the other CPU kind): the estimate below measures once, then this caption has it too.
    st.caption(preset_description(st.session_state[PRESET_KEY], runs_root=runs_root()))
    c1, c2 = st.columns(2)
    c1.number_input(
        "Epochs", 1, 200, step=1, key="train_epochs", help="Passes over the training images (1-200).", **keep
    )
    c2.select_slider(
        "Batch size",
        BATCH_SIZES,
        key="train_batch_size",
        help="Images per weight update (16-512). Bigger is faster per image but learns less per pass.",
        **keep,
    )
    c1.select_slider(
        "Learning rate",
        LEARNING_RATES,
        key="train_learning_rate",
        format_func=lambda v: f"{v:g}",
        help="Adam step size (0.0001-0.01). Too high: the loss jumps around; too low: slow learning.",
        **keep,
    )
    c2.number_input(
        "Seed", 0, 2**31 - 1, step=1, key="train_seed", help="Same seed, same images and split (0-2³¹).", **keep
    )
    c1.toggle(
        "Use all 60,000 training images",
        key="train_use_all",
        help="Off: train on a stratified sample (faster, less accurate).",
        **keep,
    )
    c2.number_input(
        "Training images",
        100,
        60000,
        step=100,
        key="train_limit",
        disabled=st.session_state.train_use_all,
        help="How many images to draw, 100-60,000; 20% of them are kept for validation.",
        **keep,
    )
    st.toggle(
        "Augment training images",
        key="train_augment",
        help="Show the network randomly moved copies, so it learns the garment, not its exact pixels.",
        **keep,
    )
    off = not st.session_state.train_augment
    a1, a2 = st.columns(2)
    a1.slider(
        "Rotation",
        0.0,
        45.0,
        step=1.0,
        format="%.0f°",
        key="train_rotation_deg",
        disabled=off,
        help="Up to ± this angle (0-45°).",
        **keep,
    )
    a2.slider(
        "Shift",
        0.0,
        0.3,
        step=0.01,
        key="train_shift",
        disabled=off,
        help="Up to ± this share of the width (0-0.3).",
        **keep,
    )
    a1.slider(
        "Zoom",
        0.0,
        0.3,
        step=0.01,
        key="train_zoom",
        disabled=off,
        help="In or out by up to this share (0-0.3).",
        **keep,
    )
    a2.slider(
        "Random erasing",
        0.0,
        1.0,
        step=0.05,
        key="train_erase_prob",
        disabled=off,
        help="Chance (0-1) of blanking one random patch.",
        **keep,
    )
    a1.checkbox("Mirror left-right", key="train_hflip", disabled=off, help="Random horizontal flips.", **keep)


def preset_extras(cfg: TrainConfig) -> str:
    """One line on what the preset sets that the form does not show."""
    extras = [f"network `{cfg.architecture}`", f"learning rate {cfg.lr_schedule}"]
    extras.append(
        f"early stopping after {cfg.patience} epochs without progress" if cfg.patience else "no early stopping"
    )
    if cfg.label_smoothing:
        extras.append(f"label smoothing {cfg.label_smoothing:g}")
    if cfg.precision != "float32":
        extras.append(f"precision {cfg.precision}")
    if cfg.tta_flip:
        extras.append("flip test-time augmentation")
    return "Also from the preset: " + ", ".join(extras) + "."


# ---------------------------------------------------------------- augmentation preview


@st.cache_data(show_spinner="Drawing augmented examples (loads TensorFlow the first time) ...", max_entries=64)
def preview_mosaic(aug_settings: dict[str, Any], seed: int, rows: int = 4, versions: int = 5) -> np.ndarray:
    """The preview grid as one uint8 image (TensorFlow is imported here, lazily, once)."""
    from fmnist_core.preview import augment_preview, example_indices, mosaic

    arrays = dataset_arrays("fashion")
    idx = example_indices(arrays["y_train"], rows, seed)
    cfg = PRESETS["paper"].replace(**aug_settings)
    return mosaic(augment_preview(arrays["x_train"][idx], cfg, versions, seed))


def aug_settings(cfg: TrainConfig) -> dict[str, Any]:
    keys = ("augment", "rotation_deg", "shift", "zoom", "hflip", "erase_prob")
    return {k: getattr(cfg, k) for k in keys}


# ---------------------------------------------------------------- live run


def watched_run(all_runs: list[runs.RunInfo]) -> runs.RunInfo | None:
    """The run the live panel shows: this session's last run, else one training now, else the newest."""
    mine = next((r for r in all_runs if r.run_id == st.session_state.get(WATCH)), None)
    if mine is not None:
        return mine
    training = sorted((r for r in all_runs if r.active and not r.waiting), key=lambda r: r.run_id)
    return training[0] if training else (all_runs[0] if all_runs else None)


# The live chart is Vega-Lite, not Plotly: Streamlit hashes a Plotly figure into the chart's
# identity, so each new epoch mounted a new chart in the browser, hidden for a moment and drawn from
# scratch (docs/RELIABILITY.md, the live chart). A Vega-Lite chart whose spec stays the same is
# updated in place: only its data changes from one epoch to the next.
CURVE_COLORS = {"train": "#1f77b4", "validation": "#ff7f0e"}


def curves_rows(metrics: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per epoch, panel (Accuracy, Loss) and curve (train, validation) with its value."""
    rows = []
    for m in metrics:
        for panel, train_key, val_key in (("Accuracy", "accuracy", "val_accuracy"), ("Loss", "loss", "val_loss")):
            for curve, key in (("train", train_key), ("validation", val_key)):
                if isinstance(m.get(key), (int, float)):
                    rows.append({"epoch": int(m["epoch"]), "panel": panel, "curve": curve, "value": float(m[key])})
    return pd.DataFrame(rows, columns=["epoch", "panel", "curve", "value"])


def curves_charts(
    metrics: list[dict[str, Any]], epochs: int | None = None, run_id: str = ""
) -> tuple[alt.Chart, alt.Chart]:
    """Training vs validation accuracy, and loss, per epoch: two charts to set side by side,
    large enough for a projector.

    The x axis spans the run's planned epochs from the start, so a chart's spec stays the same while
    the run trains and the browser only adds points (each chart names its run under its title).
    """
    data = curves_rows(metrics)
    last = max([epochs or 1, *data["epoch"].tolist(), 1])
    x = alt.X(
        "epoch:Q",
        title="epoch",
        scale=alt.Scale(domain=[0.7, last + 0.3], nice=False),
        axis=alt.Axis(tickMinStep=1, format="d"),
    )
    color = alt.Color(
        "curve:N",
        scale=alt.Scale(domain=list(CURVE_COLORS), range=list(CURVE_COLORS.values())),
        legend=alt.Legend(title=None, orient="bottom", direction="horizontal", labelFontSize=16, symbolStrokeWidth=3),
    )
    dash = alt.StrokeDash("curve:N", scale=alt.Scale(domain=list(CURVE_COLORS), range=[[1, 0], [8, 5]]), legend=None)
    tooltip = [alt.Tooltip("epoch:Q"), alt.Tooltip("curve:N"), alt.Tooltip("value:Q", format=".4f")]

    def panel(name: str, axis_format: str) -> alt.Chart:
        return (
            alt.Chart(
                data[data["panel"] == name],
                title=alt.TitleParams(name, subtitle=f"run {run_id}", anchor="start", subtitleColor="#666"),
            )
            .mark_line(point=alt.OverlayMarkDef(size=90, filled=True), strokeWidth=3)
            .encode(
                x=x,
                y=alt.Y("value:Q", title=None, axis=alt.Axis(format=axis_format)),
                color=color,
                strokeDash=dash,
                tooltip=tooltip,
            )
            .configure_axis(labelFontSize=15, titleFontSize=16)
            .configure_title(fontSize=18, subtitleFontSize=13)
        )

    return panel("Accuracy", ".0%"), panel("Loss", ".2f")


def progress_line(prog: dict[str, Any] | None, status: str) -> tuple[float, str]:
    """(fraction done, one-line text) for the batch progress bar."""
    if not prog or status == "queued":
        return 0.0, "Starting: loading TensorFlow and the images ..."
    epochs, batches = max(1, prog.get("epochs", 1)), max(1, prog.get("batches", 1))
    epoch, batch = prog.get("epoch", 1), prog.get("batch", 0)
    frac = min(1.0, ((epoch - 1) * batches + batch) / (epochs * batches))
    if prog.get("phase") == "evaluate":
        return 1.0, "Testing on the 10,000 test images and saving the model ..."
    what = "validating" if prog.get("phase") == "validate" else f"batch {batch:,} of {batches:,}"
    speed = f" · {prog['images_per_s']:,.0f} images/s" if prog.get("images_per_s") else ""
    eta = f" · about {format_duration(prog['eta_s'])} left" if prog.get("eta_s") is not None else ""
    return frac, f"Epoch {epoch} of {epochs} · {what}{speed}{eta}"


def percent_text(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def live_panel(root: Path, actor: access.Actor | None) -> None:
    """The run being watched: status, progress bar, Stop, key numbers, the growing curves; and the queue.

    Each poll also moves the queue on (``runqueue.dispatch``), so no daemon is needed.
    """
    runqueue.dispatch(root, wait=False)
    class_widgets.show_message()  # the outcome of a click inside this fragment (it reruns only the fragment)
    all_runs = runs.list_runs(root)
    queue = runqueue.queue_view(root, all_runs)
    run = watched_run(all_runs)
    if run is None:
        st.info("No run yet. Choose the settings below and press **Start training**.")
        return
    # A run that starts (e.g. from the CLI) or ends redraws this panel only, never the whole app:
    # a full rerun from here could swallow a click on the menu. The history table refreshes
    # itself; the sidebar picker learns of a new model at the next interaction.
    icon = STATUS_ICON.get(run.status, "")
    head, button = st.columns([4, 1], vertical_alignment="center")
    badge = f":{STATUS_COLOR.get(run.status, 'red')}-badge[{'waiting' if run.waiting else run.status}]"
    head.markdown(f"### {icon} Run `{run.run_id}` &nbsp; {badge}")
    if run.owner:
        head.caption(f"Started by **{run.owner}**.")
    if run.active:
        if actor is not None and access.can(actor, run, "stop"):
            button.button(
                "Leave the queue" if run.waiting else "Stop training",
                icon=":material/stop:",
                type="primary",
                key="train_stop",
                disabled=run.status == "stopping",
                on_click=class_widgets.stop_clicked,
                args=(run.run_id, root, actor),
                help="Ends the run after the current batch and keeps the best weights so far.",
                width="stretch",
            )
        else:
            button.caption(f"Only {run.owner or 'its owner'} or the teacher can stop this run.")
        if run.waiting:
            st.info(class_widgets.position_line(run, queue), icon=":material/hourglass_top:")
        else:
            frac, text = progress_line(runs.read_json(run.path / "progress.json"), run.status)
            st.progress(frac, text=text)
    elif run.status == "failed":
        st.error(f"This run failed: {run.status_data.get('error') or 'unknown error'}")
    else:
        dur = format_duration(run.duration_s)
        st.success(
            f"Run {run.status} after {run.epochs_done} epochs in {dur}: test accuracy **{percent_text(run.test_accuracy)}** "
            "on the 10,000 test images."
        )
    last = run.metrics[-1] if run.metrics else {}
    epochs = run.config.get("epochs")
    m = st.columns(4)
    m[0].metric("Epochs done", f"{run.epochs_done} / {epochs}")
    m[1].metric("Training accuracy", percent_text(last.get("accuracy")))
    m[2].metric("Validation accuracy", percent_text(last.get("val_accuracy")))
    if run.test_accuracy is not None:
        m[3].metric("Test accuracy", percent_text(run.test_accuracy))
    else:
        m[3].metric("Best validation accuracy", percent_text(run.best_val_accuracy))
    if run.metrics:
        # Each chart names its run under its title: while the panel redraws for another run, the old
        # charts can stay on screen for a moment (read by the browser tests).
        acc, loss = curves_charts(run.metrics, epochs, run.run_id)
        left, right = st.columns(2)
        left.altair_chart(acc, key="train_curves_accuracy", width="stretch", height=420)
        right.altair_chart(loss, key="train_curves_loss", width="stretch", height=420)
    elif run.active:
        st.caption("The curves appear when the first epoch ends.")
    class_widgets.queue_panel(root, queue, actor)


# ---------------------------------------------------------------- history


def history_rows(all_runs: list[runs.RunInfo]) -> list[dict[str, Any]]:
    """One row per run for the history table (accuracies in percent)."""
    rows = []
    for r in all_runs:
        created = r.status_data.get("created_at")
        rows.append(
            {
                "Run": r.run_id,
                "Owner": r.owner or "-",
                "Preset": r.preset,
                "Epochs": f"{r.epochs_done} / {r.config.get('epochs', '?')}",
                "Best val acc": None if r.best_val_accuracy is None else 100 * r.best_val_accuracy,
                "Test acc": None if r.test_accuracy is None else 100 * r.test_accuracy,
                "Status": "waiting" if r.waiting else r.status,
                "Duration": format_duration(r.duration_s),
                "Images": r.config.get("limit") or 60000,
                "Started": None if not created else np.datetime64(int(created), "s"),
            }
        )
    return rows


def history_table(root: Path) -> None:
    """The table of every run in ``root``, re-read on each call (the page polls it in a fragment)."""
    all_runs = runs.list_runs(root)
    pc = st.column_config.NumberColumn(format="%.2f %%")
    st.dataframe(
        history_rows(all_runs),
        hide_index=True,
        column_config={
            "Best val acc": pc,
            "Test acc": pc,
            "Images": st.column_config.NumberColumn("Images", format="localized"),
            "Started": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )


def make_active(key: str, flash: bool = True) -> None:
    """on_click: make a run the model of every page (and show it in the sidebar picker)."""
    st.session_state[MODEL_KEY] = key
    st.session_state["sidebar_model"] = key  # allowed in a callback: before the sidebar is drawn
    if flash:
        st.session_state[FLASH] = f"`{key.split(':', 1)[1]}` is now the active model."


def delete_confirmed(run_id: str, root: Path, actor: access.Actor | None) -> None:
    """on_click of the confirmation: delete the run folder (the core checks who asks)."""
    try:
        if actor is None:
            raise access.AccessError("type your name first")
        runqueue.delete(run_id, root, actor)
        st.session_state[FLASH] = f"Run `{run_id}` deleted."
    except (runs.RunError, access.AccessError) as exc:
        st.session_state[FLASH] = f"Not deleted: {exc}"
    st.session_state[CONFIRM_DELETE] = None
