"""Compare page: two or more models on the same data and split — paired-bootstrap differences,
the accuracy-vs-gap trade-off and plain-sentence verdicts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fairaudit import plots
from fairaudit.audit import ALL, attribute_groups
from fairaudit.compare import compare_models, verdicts
from pages import _state as S

S.start_page()
st.title("Compare")
st.caption(
    "Every candidate against a baseline on the same test users: differences B − A with paired-bootstrap "
    "95% CIs (the same resampled users for both models), per metric, per group and for each group's gap."
)
ss = st.session_state
dataset = S.current_dataset()
if dataset is None:
    st.stop()
available = list(S.available_models())
if len(available) < 2:
    st.info("Comparison needs at least two models for this dataset: train another one on the **Model** page "
            "(e.g. itemknn next to popularity).")
    st.stop()

ss.setdefault("compare_models", available[:2])
ss["compare_models"] = [m for m in ss["compare_models"] if m in available] or available[:2]
chosen = st.multiselect("Models to compare", available, key="compare_models", max_selections=6)
if len(chosen) < 2:
    st.info("Pick at least two models.")
    st.stop()
baseline = st.selectbox("Baseline (A)", chosen, key="compare_baseline",
                        index=chosen.index(ss["model"]) if ss.get("model") in chosen else 0)
k = S.selected_k()
attributes = S.selected_attributes(dataset)

try:
    result = S.audit_models(dataset, chosen)
except S.USER_ERRORS as err:
    st.error(f"These models cannot be compared: {err}\n\nCompare models trained on this dataset with the same split.")
    st.stop()


@st.cache_data(show_spinner="Paired bootstrap…", max_entries=32)
def paired(audit_id: str, model_a: str, model_b: str, rounds: int, seed: int, min_group_size: int,
           attributes: tuple[str, ...], _user_metrics: pd.DataFrame, _users: pd.DataFrame) -> pd.DataFrame:
    """Paired differences for every audited attribute (cached per audit and pair; slices filter it)."""
    groups = {spec: attribute_groups(_users, spec) for spec in attributes}
    return compare_models(_user_metrics, model_a=model_a, model_b=model_b, groups=groups, rounds=rounds,
                          seed=seed, min_group_size=min_group_size)


config = result.config
table = pd.concat(
    [
        paired(result.meta["audit_id"], baseline, other, config.bootstrap_rounds, config.seed, config.min_group_size,
               tuple(config.attributes), result.user_metrics, dataset.users)
        for other in chosen if other != baseline
    ],
    ignore_index=True,
)
metrics = [m for m in ("ndcg", "recall", "precision", "hit_rate", "mrr") if m in set(table["metric"])]
metric = st.selectbox("Accuracy metric", metrics, format_func=lambda m: plots.metric_label(m, k), key="compare_metric")

st.subheader("Verdicts")
verdict = verdicts(table[table["attribute"].isin([ALL, *attributes])], k=k)
verdict = verdict[verdict["metric"] == metric]
for sentence in verdict["verdict"]:
    st.markdown(f"- {sentence}")
st.dataframe(verdict, hide_index=True)
st.download_button("Verdicts as CSV", S.csv_bytes(verdict), "verdicts.csv", mime="text/csv", key="csv_verdicts")

st.subheader("Accuracy vs gap")
gm, gaps = result.group_metrics, result.gaps
for attribute in attributes:
    rows_gm = gm[gm["attribute"].isin([ALL, attribute])]
    rows_gaps = gaps[gaps["attribute"] == attribute]
    if rows_gaps.empty:
        st.info(f"No tested gaps for {attribute} (all of its groups are small).")
        continue
    fig = plots.tradeoff_chart(rows_gm, rows_gaps, metric=metric, attribute=attribute, k=k)
    S.chart(fig, rows_gaps[rows_gaps["metric"] == metric], f"tradeoff_{metric}_{attribute}", key=f"trade_{attribute}")

st.subheader("Paired differences (B − A)")
overall = table[(table["attribute"] == ALL) & (table["quantity"] == "value")]
st.markdown("**Overall, every metric**")
st.dataframe(overall[["model_a", "model_b", "metric", "n_users", "a", "b", "difference", "ci_low", "ci_high",
                      "significant"]], hide_index=True)
sliced = table[table["attribute"].isin(attributes) & (table["metric"] == metric)]
st.markdown(f"**By group ({', '.join(attributes)}), {plots.metric_label(metric, k)}**")
st.dataframe(sliced, hide_index=True)
st.download_button("All paired differences as CSV", S.csv_bytes(table), "paired_differences.csv", mime="text/csv",
                   key="csv_paired")
