"""Train: built by its own issue."""

import streamlit as st

st.title("Train")
st.write("This page is being built.")
