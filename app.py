"""Fashion-MNIST CNN Studio: ``streamlit run app.py``.

The router and frame: page config, navigation, and the shared sidebar that picks the model.
"""

import streamlit as st

from ui.common import init_state, sidebar_model_picker

st.set_page_config(page_title="Fashion-MNIST CNN Studio", page_icon="👕", layout="wide")
init_state()

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/analytics:", url_path="evaluate"),
    st.Page("views/predict.py", title="Predict", icon=":material/checkroom:", url_path="predict"),
]
page = st.navigation(PAGES)
st.sidebar.title("CNN Studio")
sidebar_model_picker()
page.run()
