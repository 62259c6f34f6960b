"""Audit page: the ranked findings first (the PDF's verdicts), then metric cards with good/bad cues and
charts by user group, gaps, exposure, diversity and calibration.

The audit runs as a job in a worker process (progress and Cancel drawn here while it runs; every
session and a reload find the same job) and covers every attribute offered in the sidebar; choosing attributes,
metrics or item groupings here only filters its tables (nothing is re-scored). The findings cover
every audited attribute, as the PDF does, whatever the sidebar's selection.
"""

from __future__ import annotations

import itertools

import streamlit as st

from fairaudit.audit import ALL, INTERSECTION_SEP
from fairaudit.metrics import ACCURACY_METRICS, METRICS, metric_label
from fairaudit.report import FINDING_FAMILIES, by_severity
from pages import _state as S

#: Findings listed before "Show all".
TOP_FINDINGS = 10
#: How each verdict is drawn (Streamlit badges; the words are the PDF's).
VERDICT_BADGE = {"fail": ":red-badge[FAIL]", "attention": ":orange-badge[ATTENTION]", "pass": ":green-badge[PASS]"}
CUE_COLOUR = {"fail": "red", "attention": "orange", "pass": "green"}

S.start_page()
st.title("Audit")
ss = st.session_state
dataset, label = S.require_model_label()  # the audit runs in a worker process: no model loaded here
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
findings = S.findings(result).for_model(label)

st.caption(
    f"Model **{S.md(label)}** · {result.meta['n_evaluated_users'][label]:,} test users · K = {k} · "
    f"{result.config.bootstrap_rounds} bootstrap rounds · audit id {S.md(result.meta['audit_id'])}"
)
st.subheader("Findings")
table = findings.table
if table.empty:
    st.info("No check could be evaluated: every group is below the minimum size and the audit has no exposure.")
else:
    top = table.iloc[0]
    st.markdown(f"#### {VERDICT_BADGE[top['verdict']]} {S.md(top['sentence'])}")
    counts = findings.counts()
    st.caption(
        f"{sum(counts.values())} checks on this model: {counts['fail']} fail, {counts['attention']} need attention, "
        f"{counts['pass']} pass — the rules, verdicts and counts of the PDF (Report page). {S.md(findings.scope())} "
        "The PDF of this audit covers the same attributes, whatever the sidebar selects."
    )
    families = st.segmented_control("Family", ["all", *FINDING_FAMILIES], default="all", key="finding_family")
    shown = table if families in (None, "all") else table[table["family"] == families]
    show_all = st.toggle(f"Show all {len(shown)} findings", key="findings_all")
    lines = [f"{r.rank}. {VERDICT_BADGE[r.verdict]} **{S.md(r.affected)}** · {r.family} — {S.md(r.sentence)}"
             for r in (shown if show_all else shown.head(TOP_FINDINGS)).itertuples()]
    st.markdown("\n".join(lines) or "No finding in this family.")
    st.download_button("Findings as CSV", S.csv_bytes(table), "findings.csv", mime="text/csv", key="csv_findings")
    # Drawn on request only: a data grid is the heaviest thing a fresh browser session would paint first.
    if st.toggle("Every threshold check of this model (as in the PDF appendix)", key="findings_checks"):
        checks = by_severity(findings.checks)[["status", "check", "subject", "metric", "estimate", "ci_low", "ci_high",
                                               "threshold"]]
        st.dataframe(checks, hide_index=True)

headline = METRICS.names(headline=True)
cards = st.columns(len(headline) + 1)
for box, metric in zip(cards, headline):
    if metric in overall:
        at_k = k if METRICS[metric].level == "user" else None
        cue = findings.cue(label, metric)
        better = "higher" if METRICS[metric].higher_is_better else "lower"
        box.metric(metric_label(metric, at_k), f"{overall[metric]:.3f}",
                   delta=cue[1] if cue else f"{better} is better", delta_arrow="off",
                   delta_color=CUE_COLOUR[cue[0]] if cue else "off",
                   help=f"{better.capitalize()} is better. The cue is the worst verdict of this metric's threshold "
                        "checks (the PDF's rules).")
cards[-1].metric("Significant gaps vs rest", f"{len(significant)} of {len(sliced_gaps)}",
                help=f"Benjamini–Hochberg adjusted p < {alpha} in the selected attributes")

flagged = result.rows("group_metrics", model=label, attribute=attributes, flagged=True)
flagged = flagged[["attribute", "group", "n_users"]].drop_duplicates()
if not flagged.empty:
    names = ", ".join(S.md(f"{r.attribute}={r.group} (n={r.n_users})") for r in flagged.itertuples())
    st.warning(f"Small groups (under {result.config.min_group_size} users), not gap-tested and drawn grey: {names}")
for note in result.meta.get("notes", []):
    st.caption(f"Note: {S.md(note)}")
st.caption("Download any chart as PNG with the camera icon in its top-right toolbar; "
           "each chart's data has a CSV button.")

# Imported once the findings are on screen: plotly's figure classes take ~0.5 s to import in a freshly
# started server, and nothing above needs them.
from fairaudit import plots  # noqa: E402

user_metrics = [m for m in ACCURACY_METRICS if m in set(gm["metric"])]


def accuracy_tab() -> None:
    metric = st.selectbox("Metric", user_metrics, format_func=lambda m: metric_label(m, k), key="audit_metric",
                          index=plots.default_index(user_metrics, plots.DEFAULT_METRIC))
    for attribute in attributes:
        rows = result.rows("group_metrics", model=label, attribute=[attribute, ALL], metric=metric)
        fig = plots.group_metric_chart(rows, metric=metric, attribute=attribute, model=label, k=k,
                                       show_flagged=show_small, min_group_size=result.config.min_group_size)
        S.chart(fig, rows, f"{metric}_by_{attribute}", key=f"acc_{attribute}")


def gaps_tab() -> None:
    cols = st.columns(2)
    choices = [m for m in METRICS.names(level="user") if m in set(gaps["metric"])]
    gap_metric = cols[0].selectbox("Metric", choices, format_func=lambda m: metric_label(m, k), key="gap_metric",
                                   index=plots.default_index(choices, plots.DEFAULT_METRIC))
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
    item_choices = list(dict.fromkeys(exposure["item_attribute"]))
    item_attribute = cols[0].selectbox("Item groups", item_choices, key="exp_item_attribute",
                                       index=plots.default_index(item_choices, plots.DEFAULT_ITEM_ATTRIBUTE))
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
