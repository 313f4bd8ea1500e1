"""State, caches and the shared sidebar used by every page.

Heavy objects are cached once per process: arrays with ``st.cache_data``, models with
``st.cache_resource`` (keyed by file path and modification time, so a retrained file reloads).
Nothing returned from a cache is mutated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from fmnist_core import heads, registry, runs
from fmnist_core.data import DataError, find_data_dir, fix_hint, load_dataset

MODEL_KEY = "model_key"  # session_state: the active model's registry key
HEAD_KEY = "head"  # session_state: the taught photo head picked in the sidebar (None = the shipped one)


def init_state() -> None:
    """Set up session state in one place (called by app.py on every run)."""
    st.session_state.setdefault(MODEL_KEY, f"shipped:{registry.DEFAULT_MODEL}")
    st.session_state.setdefault(HEAD_KEY, None)


def runs_root() -> Path:
    return runs.default_runs_root()


def model_choices() -> list[registry.ModelRef]:
    """Shipped models and finished runs (cheap: reads small JSON files)."""
    return registry.available_models(runs_root=runs_root())


def active_model() -> registry.ModelRef | None:
    """The model picked in the sidebar, or the first available one, or None."""
    choices = model_choices()
    by_key = {m.key: m for m in choices}
    key = st.session_state.get(MODEL_KEY)
    if key in by_key:
        return by_key[key]
    return choices[0] if choices else None


def set_active_model(key: str) -> None:
    st.session_state[MODEL_KEY] = key


def sidebar_model_picker() -> registry.ModelRef | None:
    """The shared sidebar: which model every page uses."""
    choices = model_choices()
    if not choices:
        st.sidebar.warning("No model yet: train one on the Train page.")
        return None
    keys = [m.key for m in choices]
    labels = {m.key: m.label for m in choices}
    current = active_model()
    # Keep the widget's own state in step with the active model (it may have been deleted, or
    # set from the Train page's "make active"): a widget key may be written before it is drawn.
    if st.session_state.get("sidebar_model") != current.key:
        st.session_state["sidebar_model"] = current.key
    st.session_state[MODEL_KEY] = current.key
    st.sidebar.selectbox(
        "Active model",
        keys,
        format_func=lambda k: labels.get(k, k),
        key="sidebar_model",
        on_change=lambda: set_active_model(st.session_state["sidebar_model"]),
        help="Shipped models and every finished training run. Evaluate and Predict use this model.",
    )
    ref = active_model()
    if ref is not None:
        acc = ref.meta().get("test_accuracy")
        if acc is not None:
            st.sidebar.caption(f"Test accuracy {acc:.2%} on the 10,000 test images")
    return ref


def sidebar_head_picker() -> str | None:
    """Below the model picker: the photo head photos are answered with (None = the shipped photo head).

    Taught heads come from the Teach page or ``python -m fmnist_core teach``; a deleted or damaged
    one falls back to the shipped head.
    """
    taught = {h.name: h.label for h in heads.list_heads() if not h.problem}
    if st.session_state.get(HEAD_KEY) not in taught:
        st.session_state[HEAD_KEY] = None
    # The widget holds "" for the shipped head (a None option would draw a "clear" cross).
    if st.session_state.get("sidebar_head") != (st.session_state[HEAD_KEY] or ""):
        st.session_state["sidebar_head"] = st.session_state[HEAD_KEY] or ""
    st.sidebar.selectbox(
        "Photo head",
        ["", *taught],
        format_func=lambda n: taught.get(n, n) if n else "shipped photo head",
        key="sidebar_head",
        on_change=lambda: st.session_state.update({HEAD_KEY: st.session_state["sidebar_head"] or None}),
        help="What answers photos on top of the CNN: the head shipped with the app (taught on the dev "
        "photos) or one taught on the Teach page.",
    )
    return st.session_state[HEAD_KEY]


@st.cache_data(show_spinner=False)
def data_status() -> tuple[bool, str]:
    """(found, where or how to fix) for the Fashion-MNIST files."""
    folder = find_data_dir("fashion")
    return (True, str(folder)) if folder else (False, fix_hint("fashion"))


@st.cache_data(show_spinner="Loading Fashion-MNIST ...")
def dataset_arrays(dataset: str = "fashion") -> dict[str, np.ndarray]:
    """x_train, y_train, x_test, y_test as uint8 arrays (cached for the whole server)."""
    ds = load_dataset(dataset)
    return {"x_train": ds.x_train, "y_train": ds.y_train, "x_test": ds.x_test, "y_test": ds.y_test}


def dataset_or_stop(dataset: str = "fashion") -> dict[str, np.ndarray]:
    """The arrays, or a clear error on the page (with the fix) and ``st.stop()``."""
    try:
        return dataset_arrays(dataset)
    except DataError as exc:
        st.error(f"Fashion-MNIST could not be loaded. {exc}")
        st.stop()


@st.cache_resource(show_spinner="Loading model ...", max_entries=4)
def predictor(path: str, mtime: float, head: str = "auto", head_mtime: float = 0.0):  # noqa: ARG001 (mtimes key the cache)
    """A loaded Predictor for a model file and photo head (TensorFlow is imported here, not at page load)."""
    from fmnist_core.predict import Predictor

    return Predictor(registry.resolve(path), head)


def predictor_for(ref: registry.ModelRef, head: str | None = None):
    """The cached Predictor of ``ref`` with the photo ``head`` (None: the one shipped with it).

    Shows the error and stops the page if the model or the head cannot load.
    """
    from fmnist_core.head import HeadError, resolve_head

    try:
        head_mtime = resolve_head(head).stat().st_mtime if head else 0.0
        return predictor(str(ref.path), ref.path.stat().st_mtime, head or "auto", head_mtime)
    except HeadError as exc:
        st.error(f"The photo head could not be loaded: {exc}. Pick another head in the sidebar.")
        st.stop()
    except (registry.ModelError, OSError) as exc:
        st.error(f"The model could not be loaded: {exc}")
        st.stop()
