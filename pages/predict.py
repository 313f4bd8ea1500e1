"""Predict: built by its own issue."""

import streamlit as st

st.title("Predict")
st.write("This page is being built.")
