"""Teach: give labelled photos of your class's clothes, teach a photo head in seconds, see what it changes.

Teachable Machine's move on the real CNN: the photos go through the same pipeline as on Predict,
the CNN's features feed a small head (fmnist_core.teach), and the page shows accuracy on your
photos before (the CNN alone, the shipped photo head) and after (cross-validated), per class.
Taught heads are kept like runs: with an owner, in the sidebar's head picker, deletable.
"""

import streamlit as st

from fmnist_core.registry import ModelError, default_photo_model, resolve
from ui import class_widgets, teach_widgets
from ui.common import predictor_for, runs_root
from ui.frame import frame

frame("Teach")
teach_widgets.init_teach_state()
root = runs_root()
class_widgets.init_class_state(root)

st.title(":material/school: Teach it your photos")
st.caption(
    "Give at least 3 labelled photos per class. They are prepared as on Predict, the CNN turns each "
    "into its features, and a small head learns from them - added to the 3,068 dev photos the shipped "
    "head learned from, unless you choose 'only mine'. Up to 2,000 photos per head."
)
actor = class_widgets.identity_bar(root)

how = st.radio(
    "Your labelled photos",
    ["Zip of class folders", "Photos, a class for each", "Camera, one by one"],
    horizontal=True,
    key="teach_how",
)
if how == "Zip of class folders":
    collected = teach_widgets.zip_input()
elif how == "Photos, a class for each":
    collected = teach_widgets.uploads_input()
else:
    collected = teach_widgets.camera_input()

c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
c1.text_input("Name of the head", key="teach_name", max_chars=80)
c2.toggle("Only mine", key="teach_only_mine", help="Teach on your photos alone, without the dev photos.")
c3.checkbox("Replace", key="teach_replace", help="Replace your head of the same name.")
if collected is not None:
    st.caption(
        f"{len(collected.photos)} photo(s) found"
        + (f", {len(collected.skipped)} file(s) skipped" if collected.skipped else "")
        + (f"; folders that name no class: {', '.join(collected.unknown_folders)}" if collected.unknown_folders else "")
    )
    for name, why in collected.skipped[:10]:
        st.caption(f"skipped {name}: {why}")

clicked = st.button(
    "Teach",
    type="primary",
    key="teach_go",
    icon=":material/school:",
    disabled=collected is None or not collected.photos or actor is None,
)
if clicked and collected is not None:
    try:
        ref = resolve(default_photo_model())
    except ModelError as exc:
        st.error(f"No photo model to teach on: {exc}")
        st.stop()
    result = teach_widgets.run_teach(collected, predictor_for(ref), actor)
    if result is not None:
        st.session_state[teach_widgets.RESULT] = result
        st.session_state[teach_widgets.HEAD] = result.name  # the new head answers photos on Predict from now on
        st.rerun()  # so the sidebar's head picker, drawn before, shows it

if st.session_state[teach_widgets.RESULT] is not None:
    teach_widgets.result_panel(st.session_state[teach_widgets.RESULT])

st.subheader("Taught heads")
teach_widgets.heads_list(actor)
