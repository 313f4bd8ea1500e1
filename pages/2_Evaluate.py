"""Evaluate: every number leads to the test images behind it.

Metrics and training history of any model, a confusion matrix whose cells open their images,
a browser of the mistakes, the per-class table and a comparison of two models.
"""

import pandas as pd
import streamlit as st

from fmnist_core import evaluate
from fmnist_core.compare import compare_reports
from ui import evaluate_widgets
from ui.class_widgets import sweep_section
from ui.common import active_model, dataset_or_stop, model_choices
from ui.frame import frame

frame("Evaluate")

PER_PAGE = 24

st.title(":material/analytics: Evaluate")
choices = {m.key: m for m in model_choices()}
active = active_model()
if active is None:
    st.warning("No model to evaluate yet: train one on the Train page.")
    st.stop()

# State in one place. The page follows the sidebar's model until the page's own picker is used.
state = st.session_state
if state.setdefault("eval_follow", active.key) != active.key or state.get("eval_model") not in choices:
    state["eval_follow"] = state["eval_model"] = active.key
state.setdefault("eval_cell", None)  # (true, predicted) of the gallery, or None
state.setdefault("eval_rates", False)

ref = choices[st.selectbox("Model", list(choices), key="eval_model", format_func=lambda k: choices[k].label)]
data = dataset_or_stop()
x, y = data["x_test"], data["y_test"]
probs, rep = evaluate_widgets.evaluate_or_stop(ref)
names = list(rep["per_class"])
meta = ref.meta()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Test accuracy", f"{rep['test_accuracy']:.2%}", help=f"on all {rep['n_test']:,} test images")
c2.metric("Test loss", f"{rep['test_loss']:.4f}", help="mean cross-entropy")
c3.metric("Mistakes", f"{len(rep['misclassified']['index']):,}")
c4.metric("Epochs trained", meta.get("epochs_completed", "?"), help=evaluate_widgets.trained_when(meta) or None)


def select_cell(cell: tuple[int, int]) -> None:
    state["eval_cell"], state["eval_cell_page"] = cell, 1


def on_matrix_click() -> None:
    # An empty selection (a second click on the same cell) keeps the gallery open.
    for point in state["eval_cm"]["selection"]["points"]:
        if cell := evaluate.cell_from_point(point, len(names)):
            select_cell(cell)


st.subheader("Confusion matrix")
left, right = st.columns([3, 1])
with right:
    st.toggle(
        "Show rates per true class", key="eval_rates", help="Each row divided by its total: recall on the diagonal."
    )
    st.markdown("**Most confused pairs**")
    for t, p, n in evaluate.most_confused(rep["confusion_matrix"], k=6):
        st.button(f"{names[t]} → {names[p]}: {n}", key=f"pair-{t}-{p}", on_click=select_cell, args=((t, p),))
    st.caption("Click a cell of the matrix, or a pair above, to see its images.")
with left:
    rates = evaluate.row_normalise(rep["confusion_matrix"]) if state["eval_rates"] else None
    fig = evaluate_widgets.confusion_figure(rep["confusion_matrix"], names, rates, state["eval_cell"])
    st.plotly_chart(
        fig, key="eval_cm", on_select=on_matrix_click, selection_mode="points", config={"displayModeBar": False}
    )

if state["eval_cell"] is not None:
    t, p = state["eval_cell"]
    idx = evaluate.cell_indices(y, probs, t, p)
    st.subheader(f"True {names[t]}, predicted {names[p]}: {len(idx)} images, most confident first")
    st.button("Close the gallery", key="eval_close", on_click=lambda: state.update(eval_cell=None))
    page = evaluate_widgets.pager(len(idx), PER_PAGE, "eval_cell_page")
    with st.container(key="eval_gallery"):
        evaluate_widgets.image_grid(idx[page * PER_PAGE : (page + 1) * PER_PAGE], x, y, probs, names, key="cell")

# on_change="rerun": only the open tab's code runs, so a click elsewhere stays fast.
tabs = st.tabs(["Per class", "Mistakes", "Training", "Compare two models"], key="eval_tab", on_change="rerun")
tab_table, tab_mistakes, tab_history, tab_compare = tabs

with tab_table:
    if tab_table.open:
        table = pd.DataFrame(rep["per_class"]).T[["precision", "recall", "f1", "support"]].astype({"support": int})
        worst = evaluate.worst_classes(rep["per_class"], k=3)
        st.dataframe(
            table.style.format("{:.3f}", subset=["precision", "recall", "f1"]).apply(
                lambda row: ["background-color: #fde2e1" if row.name in worst else "" for _ in row], axis=1
            ),
            width="stretch",
        )
        st.caption(f"Lowest F1 highlighted: {', '.join(worst)}. Macro F1 {rep['macro_avg']['f1']:.3f}.")

with tab_mistakes:
    if tab_mistakes.open:
        any_class = [None, *range(len(names))]
        label = lambda i: "any" if i is None else names[i]  # noqa: E731
        f1_, f2_, f3_ = st.columns(3)
        true_f = f1_.selectbox("True class", any_class, format_func=label, key="mis_true")
        pred_f = f2_.selectbox("Predicted class", any_class, format_func=label, key="mis_pred")
        conf = f3_.slider("Confidence of the wrong answer", 0.0, 1.0, (0.0, 1.0), 0.05, key="mis_conf")
        wrong = evaluate.filter_mistakes(y, probs, true_f, pred_f, conf)
        st.write(f"**{len(wrong)}** mistakes match, most confident first.")
        page = evaluate_widgets.pager(len(wrong), PER_PAGE, "mis_page")
        with st.container(key="eval_mistakes"):
            evaluate_widgets.image_grid(wrong[page * PER_PAGE : (page + 1) * PER_PAGE], x, y, probs, names, key="mis")

with tab_history:
    if tab_history.open:
        history = meta.get("history") or []
        if history:
            st.plotly_chart(evaluate_widgets.history_figure(history), key="eval_history")
        else:
            st.info("This model has no training history stored with it.")
        when = evaluate_widgets.trained_when(meta)
        st.markdown(f"Trained **{when or 'at an unknown time'}**, {meta.get('n_train', '?')} training images.")
        cfg_col, mach_col = st.columns(2)
        cfg_col.markdown("**Settings**")
        cfg_col.json(meta.get("config", {}), expanded=True)
        mach_col.markdown("**Machine**")
        mach_col.json(meta.get("machine", {}), expanded=True)

with tab_compare:
    if tab_compare.open:
        others = [k for k in choices if k != ref.key]
        if not others:
            st.info("Only one model is available: train another to compare.")
        else:
            other_key = st.selectbox(
                "Compare with (B)", others, format_func=lambda k: choices[k].label, key="eval_other"
            )
            _, rep_b = evaluate_widgets.evaluate_or_stop(choices[other_key])
            cmp = compare_reports(rep, rep_b)
            a_col, b_col = st.columns(2)
            a_col.metric(f"A: {ref.label}", f"{cmp['accuracy_a']:.2%}")
            b_col.metric(f"B: {choices[other_key].label}", f"{cmp['accuracy_b']:.2%}", f"{cmp['accuracy_delta']:+.2%}")
            deltas = pd.DataFrame(cmp["per_class"]).set_index("class")
            st.dataframe(
                deltas.style.format("{:.3f}").format("{:+.3f}", subset=[c for c in deltas if c.endswith("_delta")]),
                width="stretch",
            )
            st.markdown("**Where the confusion matrices differ** (B − A; red: B makes this prediction more often)")
            st.plotly_chart(evaluate_widgets.difference_figure(cmp["confusion_diff"], names), key="eval_diff")
            for t, p, d in cmp["biggest_changes"]:
                st.write(f"- {names[t]} → {names[p]}: {d:+d} images")

# ---- a sweep's runs side by side (queued from Train or `python -m fmnist_core sweep`)
sweep_section()
