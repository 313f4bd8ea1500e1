"""Widgets for a class on one app: who you are, the queue, the teacher's tools, sweeps, downloads.

The rules live in fmnist_core (access.py decides who may do what, runqueue.py does it and checks
again); these widgets only collect input and show results. Who a session is lives in session
state keys that no widget writes (``ME``, ``TEACHER``): they are set only by the callbacks
below after the name was claimed or the password checked, so a browser cannot forge them.
Neither travels in the address: the browser keeps only its random key, in a cookie
(ui/browser_key.py); the teacher's unlock lives in the session alone (a reload locks it again).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from fmnist_core import access, archive, export, registry, runqueue, runs
from fmnist_core.config import TrainConfig
from fmnist_core.estimate import format_duration
from fmnist_core.sweep import queue_sweep, sweep_rows, sweeps
from ui import browser_key
from ui.common import runs_root

ME = "class_me"  # the claimed display name ('' until claimed)
KEY = "class_key"  # this browser's random key (kept in a cookie by ui/browser_key.py, never in the URL)
FORGET = "class_forget"  # the key this session said "Not me" to: its cookie is deleted
LINK_PARAM = "me"  # where the key travelled before it lived in a cookie: ?me=<key> (migrated once)
TEACHER = "class_teacher"  # True once the teacher password was typed correctly
MSG = "class_msg"  # (kind, text, shown until): the outcome of the last action
SWEEP_LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
SWEEP_DROPOUTS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def configured_password() -> str | None:
    """The teacher password from Streamlit secrets (``teacher_password``) or the environment."""
    try:
        secret = st.secrets.get("teacher_password")
    except Exception:  # noqa: BLE001 - no secrets.toml is the normal single-user case
        secret = None
    return access.teacher_password(secret)


def init_class_state(root: Path) -> None:
    """Session state of the class features, set up in one place."""
    ss = st.session_state
    if KEY not in ss:
        ss[KEY] = browser_key.read_key(root) or access.new_key()
    ss.setdefault(TEACHER, False)
    ss.setdefault(MSG, None)
    ss.setdefault(FORGET, None)
    if LINK_PARAM in st.query_params:
        _migrate_link_key(root)
    # Read on every run: a name the teacher released names this session no more.
    ss[ME] = access.name_for_key(root, ss[KEY]) or ""


def _migrate_link_key(root: Path) -> None:
    """An old link's ``?me=<key>``: move its name to a fresh key (then a cookie); drop it from the URL.

    The old key names nobody afterwards, so the same link opened again, anywhere, is no one.
    """
    old = st.query_params.get(LINK_PARAM, "")
    del st.query_params[LINK_PARAM]  # the address bar loses it (history.replaceState)
    fresh = access.new_key()
    if access.rekey(root, old, fresh):
        st.session_state[KEY] = fresh
    elif not access.name_for_key(root, st.session_state[KEY]):
        _flash("error", "This link no longer carries a name: type yours (the teacher can release a name in use).")


def current_actor() -> access.Actor | None:
    """Who acts in this session: admin in single-user mode, else the teacher or the named learner."""
    ss = st.session_state
    if not access.class_mode(configured_password()):
        return access.Actor(ss.get(ME, ""), "admin")
    if ss.get(TEACHER):
        return access.Actor(ss.get(ME) or "teacher", "teacher")
    if ss.get(ME):
        return access.Actor(ss[ME], "learner")
    return None


MSG_SECONDS = 8.0  # the live panel redraws every 1-3 s: a message must outlive a few redraws


def show_message() -> None:
    """The outcome of the last action, for a few seconds (then it is dropped)."""
    msg = st.session_state.get(MSG)
    if not msg:
        return
    kind, text, until = msg
    if time.time() > until:
        st.session_state[MSG] = None
        return
    (st.error if kind == "error" else st.success)(text)


def _flash(kind: str, text: str) -> None:
    """Keep a message to show for a few seconds above the panel (survives the rerun an on_click causes)."""
    st.session_state[MSG] = (kind, text, time.time() + MSG_SECONDS)


def _claim(root: Path) -> None:
    """on_click: claim the typed name for this browser."""
    try:
        actor = access.claim_name(root, st.session_state.get("class_name_input", ""), st.session_state[KEY])
    except (ValueError, access.AccessError) as exc:
        _flash("error", f"Name not taken: {exc}")
        return
    st.session_state[ME] = actor.name  # the cookie follows on this run (keep_in_browser)


def _not_me() -> None:
    """on_click: this browser forgets its key (the cookie goes); the name stays reserved."""
    ss = st.session_state
    ss[FORGET], ss[KEY] = ss[KEY], access.new_key()
    ss[ME], ss[TEACHER] = "", False
    _flash(
        "success", "This browser forgot the name. It stays reserved: on another computer, the teacher can release it."
    )


def _release(root: Path) -> None:
    """on_click: the teacher frees the picked name (checked in core: teachers only)."""
    name = st.session_state.get("class_release_pick") or ""
    try:
        done = access.release_name(root, name, current_actor() or access.Actor("", "learner"))
    except access.AccessError as exc:
        _flash("error", f"Not done: {exc}")
        return
    if done:
        _flash("success", f"{name} released: it names no browser now; the next one to type it gets it.")
    else:
        _flash("error", f"Not done: {name!r} is not in use.")


def still_me(actor: access.Actor | None, root: Path) -> access.Actor | None:
    """``actor``, unless it is a learner whose name the teacher released since the page was drawn."""
    if actor is None or actor.role != "learner":
        return actor
    return actor if access.name_for_key(root, st.session_state.get(KEY, "")) == actor.name else None


def _unlock() -> None:
    """on_click: check the teacher password (constant-time) and unlock the teacher role."""
    ok = access.password_ok(st.session_state.get("class_teacher_pw", ""), configured_password())
    st.session_state[TEACHER] = ok
    st.session_state["class_teacher_pw"] = ""
    if ok:
        _flash("success", "Teacher tools unlocked.")
    else:
        _flash("error", "Wrong teacher password.")


def identity_bar(root: Path) -> access.Actor | None:
    """The name prompt and teacher unlock (class mode only); returns the acting person."""
    if not access.class_mode(configured_password()):
        return current_actor()
    ss = st.session_state
    actor = current_actor()
    with st.container(border=True):
        left, right = st.columns([3, 2], vertical_alignment="bottom")
        if ss[ME]:
            role = "teacher" if ss[TEACHER] else "learner"
            left.markdown(f":material/person: You are **{ss[ME]}** ({role}). Your runs carry this name.")
            left.button(
                "Not me",
                key="class_not_me",
                on_click=_not_me,
                icon=":material/logout:",
                help="This browser forgets the name (on a shared computer). The name stays reserved.",
            )
        else:
            left.text_input(
                "Your name",
                key="class_name_input",
                max_chars=40,
                placeholder="e.g. Ada L.",
                help="Typed once; your runs carry it and only you (or the teacher) can stop or delete them.",
            )
            left.button("This is me", key="class_name_ok", on_click=_claim, args=(root,), type="primary")
        if ss[TEACHER]:
            right.markdown(":material/school: Teacher tools are unlocked.")
            with right.popover("Names in use", icon=":material/badge:"):
                names_panel(root)
        else:
            with right.popover("Teacher", icon=":material/school:"):
                st.text_input("Teacher password", type="password", key="class_teacher_pw")
                st.button("Unlock", key="class_unlock", on_click=_unlock)
        if actor is None:
            st.caption("Type your name to start runs.")
    browser_key.keep_in_browser(root, ss[KEY] if ss[ME] else None, ss[FORGET])
    return actor


def names_panel(root: Path) -> None:
    """The teacher's list of claimed names, to release one (a learner who changed computers)."""
    names = access.claimed_names(root)
    if not names:
        st.caption("No names claimed yet.")
        return
    st.caption(f"{len(names)} name{'s' if len(names) > 1 else ''} claimed: " + ", ".join(names))
    st.selectbox("Name", names, key="class_release_pick")
    st.button(
        "Release",
        key="class_release",
        on_click=_release,
        args=(root,),
        help="The browser holding it is no longer that learner; whoever types the name next gets it "
        "and its runs. For a learner on a new computer: release, then they type their name there.",
    )


# ---------------------------------------------------------------- actions (each checked in core)


def _act(what: str, fn: Any, *args: Any) -> None:
    """Run a checked core action and keep its outcome as a one-time message."""
    try:
        out = fn(*args)
    except (access.AccessError, runs.RunError) as exc:
        _flash("error", f"Not done: {exc}")
        return
    _flash("success", what + (f" ({out})" if isinstance(out, str) else ""))


def stop_clicked(run_id: str, root: Path, actor: access.Actor | None) -> None:
    """on_click of Stop / Cancel: the core checks that ``actor`` may act on ``run_id``."""
    actor = still_me(actor, root)  # the live panel's fragment may hold an actor drawn before a release
    if actor is None:
        _flash("error", "Not done: type your name first.")
        return
    _act(f"Run `{run_id}`", runqueue.stop, run_id, root, actor)


def pin_clicked(run_id: str, root: Path, actor: access.Actor | None) -> None:
    if actor is None:
        return
    _act(f"`{run_id}` is now the class model.", runqueue.pin, run_id, root, actor)


def clear_clicked(root: Path, actor: access.Actor | None) -> None:
    if actor is None:
        return
    try:
        done = runqueue.clear_queue(root, actor)
    except access.AccessError as exc:
        _flash("error", f"Not done: {exc}")
        return
    _flash("success", f"Queue cleared: {len(done)} waiting runs cancelled.")


# ---------------------------------------------------------------- the queue


def clock(t: float | None) -> str:
    return "-" if t is None else time.strftime("%H:%M", time.localtime(t))


def queue_rows(entries: list[runqueue.QueueEntry]) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "#": "training" if q.position == 0 else str(q.position),
            "Run": q.run_id,
            "Owner": q.owner or "-",
            "Preset": q.preset,
            "Status": q.status,
            "Starts": "now"
            if q.eta_start is None
            else f"~{clock(q.eta_start)} (in {format_duration(q.eta_start - now)})",
            "Ends": f"~{clock(q.eta_end)}",
        }
        for q in entries
    ]


def queue_panel(root: Path, entries: list[runqueue.QueueEntry], actor: access.Actor | None) -> None:
    """The queue: what trains now and what waits, in order, with owners and estimated start times."""
    waiting = [q for q in entries if q.position > 0]
    st.markdown(
        f"**Queue** · {sum(q.position == 0 for q in entries)} training, {len(waiting)} waiting "
        f"(up to {runqueue.capacity(root)} at once)"
    )
    if entries:
        st.dataframe(queue_rows(entries), hide_index=True, key="class_queue_table")
    if waiting and actor is not None and actor.privileged:
        st.button(
            "Clear the queue",
            icon=":material/clear_all:",
            key="class_clear_queue",
            on_click=clear_clicked,
            args=(root, actor),
            help="Cancels every waiting run (running ones keep going).",
        )


def position_line(run: runs.RunInfo, entries: list[runqueue.QueueEntry]) -> str:
    """'Waiting in the queue: number 3 in line, starts at about 14:05' for a waiting run."""
    q = next((e for e in entries if e.run_id == run.run_id), None)
    if q is None or q.eta_start is None:
        return "Queued: starting ..."
    return (
        f"Waiting in the queue: number **{q.position}** in line, starts at about **{clock(q.eta_start)}** "
        f"(in {format_duration(q.eta_start - time.time())})."
    )


# ---------------------------------------------------------------- class model, downloads


def class_model_line(root: Path, on_use: Any) -> None:
    """The pinned class model, with a button to make it this session's active model."""
    pin = access.pinned(root)
    if not pin:
        return
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.markdown(f":material/push_pin: Class model: **`{pin}`** (pinned by the teacher)")
    c2.button("Use it", key="class_use_pinned", on_click=on_use, args=(f"run:{pin}",))


DOWNLOAD_FORMATS = {
    "keras": "Keras",
    "onnx": "ONNX",
    "litert": "LiteRT",
    "litert-dynamic": "LiteRT, quantized",
}


def download_button(ref: registry.ModelRef, key: str) -> None:
    """A format choice and one .zip (model file, JSON card, preprocessing contract, example script),
    built in core (fmnist_core.export) when clicked."""
    choice = st.selectbox(
        "Format",
        list(DOWNLOAD_FORMATS),
        format_func=DOWNLOAD_FORMATS.get,
        key=f"{key}_format",
        label_visibility="collapsed",
        help="Keras for Python; ONNX for onnxruntime (servers, browsers); LiteRT for phones (quantized: "
        "about 4x smaller, its accuracy change measured on the test set in the card). Each zip holds the "
        "model, its card, the preprocessing contract and an example script.",
    )
    fmt, _, quantize = choice.partition("-")
    try:
        export.check_tools(fmt, quantize or None)
    except export.ExportError as exc:  # e.g. ONNX without tf2onnx: say what to install, no button
        st.caption(str(exc))
        return
    st.download_button(
        # The format in the label: the button a person (or a test) clicks says which file it gives,
        # even in the instant before the rerun that follows a new choice.
        f"Download {DOWNLOAD_FORMATS[choice]} (.zip)",
        data=lambda: export.export_archive(ref, fmt, quantize or None)[1],
        file_name=f"{archive.archive_name(ref)}-{choice}.zip",
        mime="application/zip",
        icon=":material/download:",
        key=key,
        on_click="ignore",
        help="Converted when you click (ONNX and LiteRT take a few seconds and are checked against Keras).",
    )


def shipped_downloads() -> None:
    refs = registry.shipped_models()
    if not refs:
        return
    st.markdown("**Take a shipped model home**")
    cols = st.columns(len(refs))
    for col, ref in zip(cols, refs, strict=True):
        with col:
            st.caption(ref.label)
            download_button(ref, key=f"class_dl_{ref.key}")


# ---------------------------------------------------------------- sweep


def sweep_form(config: TrainConfig | None, root: Path, actor: access.Actor | None) -> None:
    """Queue one run per combination of learning rates and dropout rates (the current settings otherwise)."""
    with st.expander("Sweep: one run per combination of settings", icon=":material/grid_view:"):
        lrs = st.multiselect(
            "Learning rates", SWEEP_LRS, default=[1e-3, 3e-3], key="class_sweep_lr", format_func=lambda v: f"{v:g}"
        )
        drops = st.multiselect(
            "Dropout rates", SWEEP_DROPOUTS, default=[0.2, 0.4], key="class_sweep_dropout", help="Every Dropout layer."
        )
        n = max(1, len(lrs)) * max(1, len(drops))
        st.caption(f"Queues {n} runs with the settings above, each with one combination.")
        disabled = config is None or actor is None or not (lrs or drops)
        if st.button("Queue the sweep", key="class_sweep_go", disabled=disabled, icon=":material/playlist_add:"):
            grid: dict[str, list[Any]] = {}
            if lrs:
                grid["learning_rate"] = sorted(lrs)
            if drops:
                grid["dropout"] = sorted(drops)
            try:
                sweep_id, dirs = queue_sweep(config, grid, root, owner=actor.name if actor else "")
            except (ValueError, runs.RunError) as exc:
                st.error(f"Not queued: {exc}")
            else:
                _flash("success", f"Sweep `{sweep_id}`: {len(dirs)} runs queued.")
                st.rerun()


def sweep_section() -> None:
    """Evaluate: compare the runs of one sweep in a table and a chart of accuracy against each setting."""
    infos = runs.list_runs(runs_root())
    ids = sweeps(infos)
    if not ids:
        return
    st.divider()
    st.subheader("Compare a sweep")
    sweep_id = st.selectbox("Sweep", ids, key="eval_sweep")
    varied, rows = sweep_rows(infos, sweep_id)
    pc = st.column_config.NumberColumn(format="%.2f %%")
    table = [
        {
            **r,
            "test_accuracy": _as_percent(r["test_accuracy"]),
            "best_val_accuracy": _as_percent(r["best_val_accuracy"]),
        }
        for r in rows
    ]
    st.dataframe(table, hide_index=True, column_config={"test_accuracy": pc, "best_val_accuracy": pc})
    if varied:
        st.plotly_chart(sweep_figure(varied, rows), key="eval_sweep_chart", config={"displaylogo": False})
    done = sum(r["test_accuracy"] is not None for r in rows)
    st.caption(f"{done} of {len(rows)} runs finished. Test accuracy on the 10,000 test images.")


def _as_percent(v: float | None) -> float | None:
    """An accuracy (0-1) as a number of percent (0-100) for the table's %.2f %% column."""
    return None if v is None else 100 * v


def sweep_figure(varied: list[str], rows: list[dict[str, Any]]) -> go.Figure:
    """One panel per varied setting: test accuracy of each run against that setting."""
    fig = make_subplots(rows=1, cols=len(varied), subplot_titles=varied, shared_yaxes=True)
    for i, name in enumerate(varied, start=1):
        done = [r for r in rows if r["test_accuracy"] is not None]
        fig.add_trace(
            go.Scatter(
                x=[r[name] for r in done],
                y=[r["test_accuracy"] for r in done],
                mode="markers",
                marker={"size": 14},
                text=[r["run"] for r in done],
                hovertemplate=f"%{{text}}<br>{name} %{{x}}<br>test accuracy %{{y:.2%}}<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=i,
        )
        if name == "learning_rate":
            fig.update_xaxes(type="log", row=1, col=i)
    fig.update_yaxes(tickformat=".1%", title_text="test accuracy", row=1, col=1)
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10}, font={"size": 15})
    return fig
