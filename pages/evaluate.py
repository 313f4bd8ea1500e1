"""Evaluate: built by its own issue."""

import streamlit as st

st.title("Evaluate")
st.write("This page is being built.")
