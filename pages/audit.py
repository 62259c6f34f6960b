"""Audit page: metric cards and charts by user group, gaps, exposure, diversity and calibration.

The audit covers every attribute offered in the sidebar and is cached; choosing attributes,
metrics or item groupings here only filters its tables (nothing is re-scored).
"""

from __future__ import annotations

import itertools

import streamlit as st

from fairaudit import plots
from fairaudit.audit import ALL, INTERSECTION_SEP
from fairaudit.metrics import ACCURACY_METRICS, METRICS
from fairaudit.report import largest_gap_sentences
from pages import _state as S

S.start_page()
st.title("Audit")
ss = st.session_state
dataset, label, _ = S.require_model()
k = S.selected_k()
attributes = S.selected_attributes(dataset)

with st.expander("Audit settings"):
    cols = st.columns(3)
    with cols[0]:
        S.bound(st.number_input, "Bootstrap rounds", "audit_rounds", min_value=50, max_value=5000, step=50,
                help="Resamples for CIs and permutation tests (the CLI default is 1000; fewer is faster).")
    plain = [a for a in S.attribute_choices(dataset) if INTERSECTION_SEP not in a]
    pairs = [INTERSECTION_SEP.join(p) for p in itertools.combinations(plain, 2)]
    offered = [p for p in pairs if p not in S.attribute_choices(dataset)] or ["—"]
    new = cols[1].selectbox("Add an intersection", offered, key="new_intersection")
    if cols[1].button("Add intersection", key="add_intersection") and new != "—":
        ss["intersections"] = [*ss["intersections"], new]
        ss["attributes"] = [*ss.get("attributes", []), new]
        st.rerun()
    show_small = cols[2].checkbox("Show small groups in charts", value=True, key="show_small",
                                  help=f"Groups under {S.MIN_GROUP_SIZE} users are grey and never gap-tested.")

try:
    result = S.audit_models(dataset, [label])
except S.USER_ERRORS as err:
    st.error(f"The audit could not run: {S.md(err)}")
    st.stop()

gm, gaps, exposure = result.group_metrics, result.gaps, result.item_exposure
alpha = result.config.alpha
overall = result.rows("group_metrics", model=label, attribute=ALL).set_index("metric")["value"]
sliced_gaps = result.rows("gaps", model=label, attribute=attributes, reference="rest")
significant = sliced_gaps[sliced_gaps["p_adjusted"] < alpha]

st.caption(
    f"Model **{S.md(label)}** · {result.meta['n_evaluated_users'][label]:,} test users · K = {k} · "
    f"{result.config.bootstrap_rounds} bootstrap rounds · audit id {S.md(result.meta['audit_id'])}"
)
headline = METRICS.names(headline=True)
cards = st.columns(len(headline) + 1)
for box, metric in zip(cards, headline):
    if metric in overall:
        at_k = k if METRICS[metric].level == "user" else None
        box.metric(plots.metric_label(metric, at_k), f"{overall[metric]:.3f}")
cards[-1].metric("Significant gaps vs rest", f"{len(significant)} of {len(sliced_gaps)}",
                help=f"Benjamini–Hochberg adjusted p < {alpha} in the selected attributes")

flagged = result.rows("group_metrics", model=label, attribute=attributes, flagged=True)
flagged = flagged[["attribute", "group", "n_users"]].drop_duplicates()
if not flagged.empty:
    names = ", ".join(S.md(f"{r.attribute}={r.group} (n={r.n_users})") for r in flagged.itertuples())
    st.warning(f"Small groups (under {result.config.min_group_size} users), not gap-tested and drawn grey: {names}")
sentences = largest_gap_sentences(gm, sliced_gaps, k=k, top=3, alpha=alpha)
if sentences:
    st.markdown("**Largest accuracy gaps**\n" + "\n".join(f"- {S.md(s)}" for s in sentences))
for note in result.meta.get("notes", []):
    st.caption(f"Note: {S.md(note)}")
st.caption("Download any chart as PNG with the camera icon in its top-right toolbar; "
           "each chart's data has a CSV button.")

user_metrics = [m for m in ACCURACY_METRICS if m in set(gm["metric"])]


def accuracy_tab() -> None:
    metric = st.selectbox("Metric", user_metrics, format_func=lambda m: plots.metric_label(m, k), key="audit_metric")
    for attribute in attributes:
        rows = result.rows("group_metrics", model=label, attribute=[attribute, ALL], metric=metric)
        fig = plots.group_metric_chart(rows, metric=metric, attribute=attribute, model=label, k=k,
                                       show_flagged=show_small, min_group_size=result.config.min_group_size)
        S.chart(fig, rows, f"{metric}_by_{attribute}", key=f"acc_{attribute}")


def gaps_tab() -> None:
    cols = st.columns(2)
    gap_metric = cols[0].selectbox("Metric", sorted(set(gaps["metric"]), key=lambda m: (m not in user_metrics, m)),
                                   format_func=lambda m: plots.metric_label(m, k), key="gap_metric")
    reference = cols[1].radio("Compared with", ("rest", "best"), horizontal=True, key="gap_reference",
                              format_func={"rest": "all other users", "best": "the best group"}.get)
    rows = result.rows("gaps", model=label, attribute=attributes, metric=gap_metric, reference=reference)
    if rows.empty:
        st.info("No tested gaps for this selection (every group is small, or the attribute has one group).")
    else:
        fig = plots.gap_forest_chart(rows, metric=gap_metric, model=label, reference=reference, alpha=alpha, k=k)
        S.chart(fig, rows, f"gaps_{gap_metric}_{reference}", key="forest")
        st.dataframe(rows[["attribute", "group", "direction", "p_adjusted"]], hide_index=True)


def exposure_tab() -> None:
    cols = st.columns(2)
    item_attribute = cols[0].selectbox("Item groups", sorted(set(exposure["item_attribute"])), key="exp_item_attribute")
    browsing = cols[1].radio("Browsing model", sorted(set(exposure["browsing"])), horizontal=True, key="exp_browsing",
                             help="dcg: attention falls as 1/log2(rank+1); rbp: patience-based (RBP)")
    rows = result.rows("item_exposure", model=label, user_attribute=ALL, item_attribute=item_attribute,
                       browsing=browsing)
    fig = plots.exposure_share_chart(rows, item_attribute=item_attribute, model=label, browsing=browsing, k=k)
    S.chart(fig, rows, f"exposure_{item_attribute}", key="exposure")
    for attribute in attributes:
        rows = result.rows("item_exposure", model=label, user_attribute=attribute, item_attribute=item_attribute,
                           browsing=browsing)
        fig = plots.exposure_by_user_group_chart(rows, user_attribute=attribute, item_attribute=item_attribute,
                                                 model=label, browsing=browsing, k=k)
        S.chart(fig, rows, f"exposure_{item_attribute}_by_{attribute}", key=f"exp_{attribute}")


def diversity_tab() -> None:
    present = tuple(m for m in plots.DIVERSITY_METRICS if m in set(gm["metric"]))
    for attribute in attributes:
        rows = result.rows("group_metrics", model=label, attribute=attribute, metric=present)
        fig = plots.diversity_calibration_chart(rows, attribute=attribute, model=label, metrics=present, k=k)
        S.chart(fig, rows, f"diversity_by_{attribute}", key=f"div_{attribute}")


def tables_tab() -> None:
    rows = result.rows("group_metrics", model=label, attribute=[ALL, *attributes])
    st.dataframe(rows, hide_index=True)
    st.download_button("group_metrics.csv (selected attributes)", S.csv_bytes(rows), "group_metrics.csv",
                       mime="text/csv", key="csv_group_metrics")


# Lazy tabs: only the open tab's charts are built and sent to the browser.
acc_tab, gap_tab, exp_tab, div_tab, table_tab = st.tabs(
    ["Accuracy by group", "Gaps", "Exposure", "Diversity & calibration", "Tables"], key="audit_tab", on_change="rerun"
)
for tab, draw in ((acc_tab, accuracy_tab), (gap_tab, gaps_tab), (exp_tab, exposure_tab), (div_tab, diversity_tab),
                  (table_tab, tables_tab)):
    if tab.open:
        with tab:
            draw()
