"""Fashion-MNIST CNN Studio: ``streamlit run app.py``.

Home, the entry page of Streamlit's classic multipage mode (the other pages are in ``pages/``):
what the app is, whether the data is there, which model is active, where to go.
"""

import streamlit as st

from ui.common import active_model, data_status
from ui.frame import PAGE_FILES, frame

frame("Home")

st.title(":material/checkroom: Fashion-MNIST CNN Studio")
st.markdown(
    "Train the convolutional network from the report *Deep Network with Fashion MNIST*, "
    "watch it learn, explore its mistakes, and show it your own clothes: draw a garment, "
    "upload a photo or hold one up to the camera."
)

found, where = data_status()
if found:
    st.success(f"Fashion-MNIST found in `{where}` (60,000 training and 10,000 test images).")
else:
    st.error(f"Fashion-MNIST was not found. Fix: {where}")

ref = active_model()
if ref is None:
    st.warning("No model is available yet. Train one on the Train page.")
else:
    meta = ref.meta()
    acc = meta.get("test_accuracy")
    cfg = meta.get("config", {})
    st.info(
        f"Active model: **{ref.label}**"
        + (f" — test accuracy **{acc:.2%}**" if acc is not None else "")
        + (f", preset `{cfg.get('preset')}`, {meta.get('epochs_completed')} epochs" if cfg else "")
        + ". Change it in the sidebar."
    )

st.subheader("Where to go")
c1, c2, c3, c4 = st.columns(4)
with c1:
    st.page_link(PAGE_FILES["Train"], label="Train", icon=":material/model_training:")
    st.caption("Start a run, watch accuracy and loss grow epoch by epoch, stop it any time.")
with c2:
    st.page_link(PAGE_FILES["Evaluate"], label="Evaluate", icon=":material/analytics:")
    st.caption("Click the confusion matrix to see the images behind every number.")
with c3:
    st.page_link(PAGE_FILES["Predict"], label="Predict", icon=":material/checkroom:")
    st.caption("Draw, upload or photograph a garment and see every preprocessing step.")
with c4:
    st.page_link(PAGE_FILES["Inside"], label="Inside the CNN", icon=":material/visibility:")
    st.caption("See each layer's view of your image and where it lands on a map of the test set.")
