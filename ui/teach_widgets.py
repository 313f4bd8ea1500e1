"""Pieces of the Teach page: the three ways to give labelled photos, the result, the list of heads.

Each input returns a ``teach_input.Collected`` (or None while there is nothing to teach); the
core reads, checks and refuses hostile input, the page only shows its one-line answers.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from fmnist_core import access, heads, teach, teach_input
from ui.predict_widgets import UPLOAD_TYPES

CLASS_CHOICES = list(teach.LABELS)  # the ten classes and "None of the ten"
SHOTS = "teach_shots"  # session_state: camera shots labelled one by one, [(name, bytes, class)]
RESULT = "teach_result"  # session_state: the last teaching's TeachResult
HEAD = "head"  # session_state: the head picked in the sidebar (None = the shipped photo head)


def init_teach_state() -> None:
    """Session state of the Teach page, set up in one place."""
    st.session_state.setdefault(SHOTS, [])
    st.session_state.setdefault(RESULT, None)
    st.session_state.setdefault("teach_name", "my-class")
    st.session_state.setdefault("teach_only_mine", False)
    st.session_state.setdefault("teach_replace", False)


def zip_input() -> teach_input.Collected | None:
    """A zip of class folders (dress/, pants/, hat/ ...)."""
    up = st.file_uploader(
        "A zip of class folders",
        type=["zip"],
        key="teach_zip",
        help="One folder per class, named like the dev photos (dress, pants, shoes, t-shirt, hat ...) "
        "or like a class (Sneaker, Bag); hat, skirt, shorts or none = none of the ten.",
    )
    if up is None:
        return None
    try:
        return teach_input.from_zip(up.getvalue())
    except teach_input.TeachError as exc:
        st.error(str(exc))
        return None


def uploads_input() -> teach_input.Collected | None:
    """Several photos, a class picked for each."""
    files = st.file_uploader("Photos", type=UPLOAD_TYPES, accept_multiple_files=True, key="teach_files")
    if not files:
        return None
    items = []
    cols = st.columns(4)
    for i, f in enumerate(files):
        with cols[i % 4]:
            st.image(f.getvalue(), caption=f.name[:30], width=120)
            label = st.selectbox("Class", CLASS_CHOICES, key=f"teach_class_{i}_{f.name}", label_visibility="collapsed")
        items.append((f.name, f.getvalue(), label))
    return _collected(lambda: teach_input.from_uploads(items))


def _add_shot() -> None:
    """on_click: keep the current camera shot with its class."""
    shot = st.session_state.get("teach_camera")
    if shot is None:
        return
    label = st.session_state["teach_shot_class"]
    n = len(st.session_state[SHOTS]) + 1
    st.session_state[SHOTS] = [*st.session_state[SHOTS], (f"shot-{n}.jpg", shot.getvalue(), label)]


def camera_input() -> teach_input.Collected | None:
    """Camera shots labelled one by one (kept in the session until taught or cleared)."""
    st.camera_input("Take a photo of one garment", key="teach_camera")
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    left.selectbox("Its class", CLASS_CHOICES, key="teach_shot_class")
    right.button("Add this shot", key="teach_add_shot", on_click=_add_shot, icon=":material/add_a_photo:")
    shots = st.session_state[SHOTS]
    if not shots:
        st.caption("No shots yet: take a photo, pick its class, add it; at least 3 per class.")
        return None
    counts = {c: sum(1 for s in shots if s[2] == c) for c in CLASS_CHOICES if any(s[2] == c for s in shots)}
    st.caption("Shots: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    if st.button("Clear the shots", key="teach_clear_shots"):
        st.session_state[SHOTS] = []
        st.rerun()
    return _collected(lambda: teach_input.from_uploads(shots))


def _collected(read) -> teach_input.Collected | None:
    try:
        return read()
    except teach_input.TeachError as exc:
        st.error(str(exc))
        return None


def run_teach(
    collected: teach_input.Collected, predictor, actor: access.Actor, root: Path | None = None
) -> teach.TeachResult | None:
    """Teach with a progress bar; show the one-line answer of anything that refuses."""
    bar = st.progress(0.0, text="starting")
    try:
        result = teach.teach(
            collected,
            st.session_state["teach_name"].strip(),
            predictor=predictor,
            only_mine=st.session_state["teach_only_mine"],
            replace=st.session_state["teach_replace"],
            actor=actor,
            progress=lambda f, text: bar.progress(min(max(f, 0.0), 1.0), text=text),
            root=root,
        )
    except (teach_input.TeachError, heads.HeadStoreError, access.AccessError) as exc:
        bar.empty()
        st.error(str(exc))
        for name, why in collected.skipped[:20]:
            st.caption(f"skipped {name}: {why}")
        return None
    bar.empty()
    return result


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def accuracy_chart(result: teach.TeachResult) -> go.Figure:
    """Per class: accuracy before (CNN alone, shipped photo head) and after (cross-validated)."""
    classes = list(result.per_class)
    fig = go.Figure()
    series = [("before_cnn", "before: CNN alone", "#9aa5b1"), ("before_head", "before: shipped photo head", "#f0a35e")]
    series.append(("after", f"after: taught head ({result.k}-fold CV)", "#2e7d32"))
    for key, name, colour in series:
        values = [result.per_class[c][key] for c in classes]
        if all(v is None for v in values):
            continue
        fig.add_bar(
            x=classes,
            y=[v or 0 for v in values],
            name=name,
            marker_color=colour,
            text=[_pct(v) for v in values],
            textposition="outside",
        )
    fig.update_layout(
        barmode="group",
        height=340,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"range": [0, 1.12], "tickformat": ".0%", "title": "right on these photos"},
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


def result_panel(result: teach.TeachResult) -> None:
    """What teaching changed: the overall figures, the chart, the table, the photos still wrong."""
    o = result.overall
    n = sum(result.counts.values())
    with_dev = "only your photos" if result.only_mine else f"your photos + {result.dev_photos:,} dev photos"
    st.success(f"Taught head **{result.name}** on {n} photos ({with_dev}) in {result.seconds['total']:.1f} s.")
    c1, c2, c3 = st.columns(3)
    c1.metric("Before: CNN alone", _pct(o["before_cnn"]))
    c2.metric("Before: shipped photo head", _pct(o["before_head"]))
    c3.metric(f"After ({result.k}-fold CV)", _pct(o["after"]))
    st.caption(
        "Before: how the CNN taught on Fashion-MNIST only (with its 'none of the ten' rule) and the "
        "shipped photo head answer your photos. After: each photo is judged by a head taught without it."
    )
    st.plotly_chart(accuracy_chart(result), key="teach_chart")
    rows = [
        {
            "class": c,
            "photos": p["photos"],
            "before: CNN": _pct(p["before_cnn"]),
            "before: shipped head": _pct(p["before_head"]),
            "after": _pct(p["after"]),
        }
        for c, p in result.per_class.items()
    ]
    st.dataframe(rows, hide_index=True, key="teach_table")
    if result.wrong:
        st.subheader(f"Still wrong ({len(result.wrong)})")
        cols = st.columns(6)
        for i, (w, img) in enumerate(zip(result.wrong[:24], result.wrong_images[:24], strict=False)):
            big = Image.fromarray(np.asarray(img, np.uint8), "L").resize((112, 112), Image.Resampling.NEAREST)
            cols[i % 6].image(big, caption=f"{w['class']} → {w['answer']} ({w['probability']:.0%})")
    else:
        st.caption("Every photo right under cross-validation.")
    if result.skipped or result.unknown_folders:
        with st.expander(f"Skipped: {len(result.skipped)} file(s), {len(result.unknown_folders)} folder(s)"):
            for name, why in result.skipped:
                st.text(f"{name}: {why}")
            if result.unknown_folders:
                st.text("folders that name no class: " + ", ".join(result.unknown_folders))


def _delete(name: str, actor: access.Actor | None, root: Path | None) -> None:
    """on_click: delete a head (the core checks who may)."""
    try:
        heads.delete(name, actor or access.Actor("", "learner"), root)
    except (heads.HeadStoreError, access.AccessError) as exc:
        st.session_state["teach_msg"] = ("error", str(exc))
        return
    if st.session_state.get(HEAD) == name:
        st.session_state[HEAD] = None
    st.session_state["teach_msg"] = ("success", f"Head {name} deleted.")


def _use(name: str) -> None:
    st.session_state[HEAD] = name


def heads_list(actor: access.Actor | None, root: Path | None = None) -> None:
    """The taught heads: owner, photos, CV accuracy; use one, delete your own (the teacher: any)."""
    msg = st.session_state.pop("teach_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
    found = heads.list_heads(root)
    if not found:
        st.caption("No taught heads yet.")
        return
    for h in found:
        left, mid, right = st.columns([5, 1, 1], vertical_alignment="center")
        when = time.strftime("%d %b %H:%M", time.localtime(h.created)) if h.created else "?"
        classes = ", ".join(h.card.get("classes", []))
        left.markdown(f"**{h.name}** · {h.owner or 'no owner'} · {when}  \n{h.label} · {classes}")
        if h.problem:
            left.caption(f"Cannot be used: {h.problem}.")
        mid.button(
            "Use", key=f"teach_use_{h.name}", on_click=_use, args=(h.name,), disabled=bool(h.problem), type="tertiary"
        )
        may = actor is not None and access.can(actor, h, "delete")  # type: ignore[arg-type]
        right.button(
            "Delete",
            key=f"teach_del_{h.name}",
            on_click=_delete,
            args=(h.name, actor, root),
            disabled=not may,
            help=None if may else "Only its owner or the teacher can delete it.",
            type="tertiary",
        )
