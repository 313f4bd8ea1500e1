"""Train: pick settings, start a run in its own process, watch it learn live, stop it, keep every run.

The trainer is a separate OS process writing its run folder (DESIGN.md); this page only reads
that folder, so a run survives page switches and refreshes and a CLI run shows up the same way.
TensorFlow is imported only to draw the augmentation preview (lazily, cached).
"""

import streamlit as st

from fmnist_core import runs
from fmnist_core.estimate import config_advice, estimate, format_duration
from ui import train_widgets as tw
from ui.common import runs_root
from ui.frame import PAGE_FILES, frame

frame("Train")

tw.init_train_state()
root = runs_root()
all_runs = runs.list_runs(root)
active = next((r for r in all_runs if r.active), None)
st.session_state[tw.LIVE_ACTIVE] = active is not None

st.title(":material/model_training: Train the CNN")
if st.session_state[tw.FLASH]:
    st.toast(st.session_state[tw.FLASH])
    st.session_state[tw.FLASH] = None

# ---- live run: polls the run folder; fast while training, slowly otherwise (to notice CLI runs)
live = st.fragment(run_every=1.0 if active else 3.0)(tw.live_panel)
with st.container(border=True):
    live(root)

# ---- settings (left) and what the network will see (right)
left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Settings")
    tw.settings_form()
    config, problems = tw.config_from_state()
    if config is not None:
        st.caption(tw.preset_extras(config))
    for p in problems:
        st.error(p)
    if config is not None and not problems:
        est = estimate(config, runs_root=root)
        st.markdown(
            f":material/timer: Estimated time: **about {format_duration(est.seconds)}** "
            f"({est.n_train:,} training + {est.n_val:,} validation images, {config.epochs} epochs)"
        )
        st.caption(f"Speed: {est.source}." + (" Early stopping may end sooner." if config.patience else ""))
        for advice in config_advice(config):
            st.warning(advice, icon=":material/info:")
    if active is not None:
        st.info(f"Run `{active.run_id}` is {active.status}. Only one run trains at a time: stop it or wait.")
    if st.button(
        "Start training", icon=":material/play_arrow:", type="primary", disabled=bool(problems), key="train_start"
    ):
        try:
            run_dir = runs.launch(config, root)
        except runs.RunBusyError as exc:
            st.error(f"Not started: {exc}")
        else:
            st.session_state[tw.WATCH] = run_dir.name
            st.rerun()

with right:
    st.subheader("What the network sees")

    @st.fragment
    def preview(settings: dict) -> None:
        if st.button("New random examples", icon=":material/casino:", key="train_preview_redraw"):
            st.session_state[tw.PREVIEW_SEED] += 1
        st.image(tw.preview_mosaic(settings, st.session_state[tw.PREVIEW_SEED]), width="stretch")
        st.caption(
            "Left: an original training image. Right: five random versions made with the current "
            "settings, exactly as training makes them."
            + ("" if settings["augment"] else " Augmentation is off, so they are all the same.")
        )

    if config is not None:
        preview(tw.aug_settings(config))

# ---- history: every run kept in the runs folder
st.divider()
st.subheader("History")
if not all_runs:
    st.caption(f"No runs yet in `{root}`.")
else:
    tw.history_table(all_runs)
    by_id = {r.run_id: r for r in all_runs}
    pick = by_id[st.selectbox("Run", list(by_id), key="train_history_pick", help="The run the buttons act on.")]
    if pick.status == "failed":
        st.error(f"Error: {pick.status_data.get('error') or 'unknown'}")
    b1, b2, b3, _ = st.columns([1, 1, 1, 2])
    usable = pick.has_model and not pick.active
    if b1.button(
        "Open on Evaluate",
        icon=":material/analytics:",
        disabled=not usable,
        key="train_open_eval",
        on_click=tw.make_active,
        args=(f"run:{pick.run_id}", False),
    ):
        st.switch_page(PAGE_FILES["Evaluate"])
    b2.button(
        "Make active model",
        icon=":material/star:",
        disabled=not usable,
        key="train_make_active",
        on_click=tw.make_active,
        args=(f"run:{pick.run_id}",),
    )
    if b3.button("Delete ...", icon=":material/delete:", disabled=pick.active, key="train_delete"):
        st.session_state[tw.CONFIRM_DELETE] = pick.run_id
    if st.session_state[tw.CONFIRM_DELETE] == pick.run_id:
        st.warning(f"Delete run `{pick.run_id}` and its model for good?")
        c1, c2, _ = st.columns([1, 1, 3])
        c1.button(
            "Yes, delete it",
            type="primary",
            key="train_delete_yes",
            on_click=tw.delete_confirmed,
            args=(pick.run_id, root),
        )
        c2.button("Cancel", key="train_delete_no", on_click=lambda: st.session_state.update({tw.CONFIRM_DELETE: None}))
    with st.expander("Settings of this run"):
        st.json(pick.config, expanded=True)
