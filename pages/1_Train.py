"""Train: pick settings, queue a run, watch it learn live, stop it, keep every run.

The trainer is a separate OS process writing its run folder (README.md, Architecture); this page only reads
that folder, so a run survives page switches and refreshes and a CLI run shows up the same way.
Start always succeeds: the run joins the queue and starts when capacity frees. With a teacher
password configured, each learner names themselves once and acts on their own runs only.
TensorFlow is imported only to draw the augmentation preview (lazily, cached).
"""

from pathlib import Path

import streamlit as st

from fmnist_core import access, registry, runqueue, runs
from fmnist_core.estimate import estimate, format_duration, will_measure
from ui import class_widgets, train_widgets
from ui.common import runs_root
from ui.frame import PAGE_FILES, frame

frame("Train")

train_widgets.init_train_state()
root = runs_root()
class_widgets.init_class_state(root)
all_runs = runs.list_runs(root)
active = runs.active_run(all_runs)
watched = train_widgets.watched_run(all_runs)
# Poll every second while the watched run trains (live curves), every 2 s while it waits (to see
# it start), else every 3 s: a class of 30 sessions polling a waiting run each second would cost
# the trainer CPU for nothing. A status change redraws the panel only (see train_widgets.live_panel).
poll_s = (
    1.0
    if watched is not None and watched.active and not watched.waiting
    else 2.0
    if watched and watched.active
    else 3.0
)

st.title(":material/model_training: Train the CNN")
if st.session_state[train_widgets.FLASH]:
    st.toast(st.session_state[train_widgets.FLASH])
    st.session_state[train_widgets.FLASH] = None
actor = class_widgets.identity_bar(root)
class_widgets.show_message()
class_widgets.class_model_line(root, train_widgets.make_active)

# ---- live run and queue: polls the run folder; fast while training, slowly otherwise (CLI runs)
live = st.fragment(run_every=poll_s)(train_widgets.live_panel)
with st.container(border=True):
    live(root, actor)

# ---- settings (left) and what the network will see (right)
left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Settings")
    train_widgets.settings_form()
    config, problems = train_widgets.config_from_state()
    if config is not None:
        st.caption(train_widgets.preset_extras(config))
    for p in problems:
        st.error(p)
    if config is not None and not problems:
        if will_measure(config, root):
            # The first time a configuration is seen here, a few training steps measure this machine.
            with st.spinner("Measuring this machine's speed for these settings: a few training steps, once ..."):
                est = estimate(config, runs_root=root)
        else:
            est = estimate(config, runs_root=root)
        st.markdown(
            f":material/timer: Estimated time: **about {format_duration(est.seconds)}** "
            f"({est.n_train:,} training + {est.n_val:,} validation images, {config.epochs} epochs)"
        )
        st.caption(f"Speed: {est.source}." + (" Early stopping may end sooner." if config.patience else ""))
    if active is not None:
        st.caption(
            f"Runs train {runqueue.capacity(root)} at a time: a new run joins the queue and starts when it is its turn."
        )
    if st.button(
        "Start training",
        icon=":material/play_arrow:",
        type="primary",
        disabled=bool(problems) or actor is None,
        key="train_start",
    ):
        if actor is None:  # a click forged past the disabled button
            st.error("Not started: type your name first.")
        else:
            run_dir = runqueue.launch(config, root, owner=actor.name)
            st.session_state[train_widgets.WATCH] = run_dir.name
            st.rerun()
    class_widgets.sweep_form(None if problems else config, root, actor)

with right:
    st.subheader("What the network sees")

    @st.fragment
    def preview(settings: dict) -> None:
        if st.button("New random examples", icon=":material/casino:", key="train_preview_redraw"):
            st.session_state[train_widgets.PREVIEW_SEED] += 1
        st.image(train_widgets.preview_mosaic(settings, st.session_state[train_widgets.PREVIEW_SEED]), width="stretch")
        st.caption(
            "Left: an original training image. Right: five random versions made with the current "
            "settings, exactly as training makes them."
            + ("" if settings["augment"] else " Augmentation is off, so they are all the same.")
        )

    if config is not None:
        preview(train_widgets.aug_settings(config))

# ---- history: every run kept in the runs folder
st.divider()
st.subheader("History")
st.caption(
    f":material/monitoring: Every run also writes TensorBoard logs (losses, accuracies, learning rate, graph): "
    f"`tensorboard --logdir {root.relative_to(Path.cwd()) if root.is_relative_to(Path.cwd()) else root}` "
    "shows them all."
)
if not all_runs:
    st.caption(f"No runs yet in `{root}`.")
else:
    # Polled on its own, like the live panel: statuses and accuracies change while a run trains.
    st.fragment(run_every=3.0)(train_widgets.history_table)(root)
    by_id = {r.run_id: r for r in all_runs}
    pick = by_id[st.selectbox("Run", list(by_id), key="train_history_pick", help="The run the buttons act on.")]
    if pick.status == "failed":
        st.error(f"Error: {pick.status_data.get('error') or 'unknown'}")
    may = {a: actor is not None and access.can(actor, pick, a) for a in ("stop", "delete", "pin")}
    b1, b2, b3, b4, b5 = st.columns(5)
    usable = pick.has_model and not pick.active
    if b1.button(
        "Open on Evaluate",
        icon=":material/analytics:",
        disabled=not usable,
        key="train_open_eval",
        on_click=train_widgets.make_active,
        args=(f"run:{pick.run_id}", False),
    ):
        st.switch_page(PAGE_FILES["Evaluate"])
    b2.button(
        "Make active model",
        icon=":material/star:",
        disabled=not usable,
        key="train_make_active",
        on_click=train_widgets.make_active,
        args=(f"run:{pick.run_id}",),
    )
    if pick.active:
        b3.button(
            "Leave the queue" if pick.waiting else "Stop",
            icon=":material/stop:",
            disabled=not may["stop"] or pick.status == "stopping",
            key="train_history_stop",
            on_click=class_widgets.stop_clicked,
            args=(pick.run_id, root, actor),
            help=None if may["stop"] else "Only its owner or the teacher can stop this run.",
        )
    elif b3.button("Delete ...", icon=":material/delete:", disabled=not may["delete"], key="train_delete"):
        st.session_state[train_widgets.CONFIRM_DELETE] = pick.run_id
    if usable:
        with b4:
            class_widgets.download_button(
                registry.ModelRef(f"run:{pick.run_id}", pick.run_id, pick.model_path, pick.path / "run.json"),
                "train_download",
            )
    if actor is not None and actor.privileged and access.class_mode(class_widgets.configured_password()):
        b5.button(
            "Pin as class model",
            icon=":material/push_pin:",
            disabled=not usable,
            key="train_pin",
            on_click=class_widgets.pin_clicked,
            args=(pick.run_id, root, actor),
        )
    if st.session_state[train_widgets.CONFIRM_DELETE] == pick.run_id:
        st.warning(f"Delete run `{pick.run_id}` and its model for good?")
        c1, c2, _ = st.columns([1, 1, 3])
        c1.button(
            "Yes, delete it",
            type="primary",
            key="train_delete_yes",
            on_click=train_widgets.delete_confirmed,
            args=(pick.run_id, root, actor),
        )
        c2.button(
            "Cancel",
            key="train_delete_no",
            on_click=lambda: st.session_state.update({train_widgets.CONFIRM_DELETE: None}),
        )
    with st.expander("Settings of this run"):
        st.json(pick.config, expanded=True)
class_widgets.shipped_downloads()
