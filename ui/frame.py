"""The shared frame of every page: page config, session state, the menu and the model picker.

Streamlit's classic ``pages/`` mode runs ``app.py`` (Home) or one file of ``pages/`` on each
rerun, never both, so each page calls ``frame()`` as its first line. The default page menu is
hidden (``client.showSidebarNavigation = false``: it would label Home "app") and drawn here with
``st.page_link``, so the menu, its labels and icons live in one place.
"""

from __future__ import annotations

import streamlit as st

from ui.common import init_state, sidebar_head_picker, sidebar_model_picker
from ui.streamlit_fixes import (
    keep_page_changes_over_fragment_reruns,
    keep_upload_answers_across_reruns,
    skip_keras_session_clearing,
)

# (script path relative to app.py, label, icon): the menu, in order.
PAGES = [
    ("app.py", "Home", ":material/home:"),
    ("pages/1_Train.py", "Train", ":material/model_training:"),
    ("pages/2_Evaluate.py", "Evaluate", ":material/analytics:"),
    ("pages/3_Predict.py", "Predict", ":material/checkroom:"),
    ("pages/4_Inside.py", "Inside", ":material/visibility:"),
    ("pages/5_Teach.py", "Teach", ":material/school:"),
]
PAGE_FILES = {label: path for path, label, _ in PAGES}


def frame(title: str) -> None:
    """Set up the page: config, state, the sidebar menu and the active-model picker."""
    st.set_page_config(page_title=f"{title} · Fashion-MNIST CNN Studio", page_icon="👕", layout="wide")
    keep_upload_answers_across_reruns()
    keep_page_changes_over_fragment_reruns()
    skip_keras_session_clearing()
    init_state()
    with st.sidebar:
        st.title("CNN Studio")
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.divider()
    sidebar_model_picker()
    sidebar_head_picker()
