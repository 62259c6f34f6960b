"""Explain page: one user's history, recommendations and SHAP explanation side by side;
global drivers of the gaps (surrogate + SHAP); counterfactual attribute probes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fairaudit import plots
from fairaudit.audit import INTERSECTION_SEP, attribute_groups, plain_attributes
from fairaudit.explain import (
    DEFAULT_PROBE_METRIC,
    explain_gaps,
    explain_recommendation,
    fairllm_figure,
    fairllm_summary,
    probe_sentences,
    read_probe_table,
    readable_explanation,
    user_features,
)
from fairaudit.metrics import ACCURACY_METRICS
from pages import _state as S

#: Users drawn for a probe in the dashboard (the CLI probes every user).
PROBE_USERS = 300
#: Users drawn for the FaiRLLM protocol in the dashboard (a generative model answers ~0.2 prompts/s on a CPU).
FAIRLLM_USERS = 20

S.start_page()
st.title("Explain")
ss = st.session_state
dataset, label, model = S.require_model()
k = S.selected_k()
path = S.available_models()[label]
model_key = (path, S.weights_checksum(path), S.current_fingerprint())
split = S.split_for(dataset)
attributes = S.selected_attributes(dataset)
titles = dataset.items.set_index("item_id")["title"]


@st.cache_data(show_spinner="Explaining the score with SHAP…", max_entries=64)
def local_explanation(_model, _dataset, key: tuple, user_id: str, item_id: str) -> pd.DataFrame:
    return explain_recommendation(_model, _dataset, user_id, item_id)


@st.cache_data(show_spinner="Fitting the surrogate and explaining it with SHAP…", max_entries=16)
def gap_drivers(audit_id: str, metric: str, plain: tuple[str, ...], _metric: pd.Series, _dataset, _train):
    features = user_features(_dataset, _train, attributes=list(plain))
    return explain_gaps(_metric, features, attributes=list(plain))


def user_tab() -> None:
    cols = st.columns(2)
    attribute = cols[0].selectbox("Group by", attributes, key="explain_attribute")
    groups = attribute_groups(dataset.users, attribute)
    group = cols[1].selectbox("Group", plots.natural_order(groups.unique()), key="explain_group")
    members = groups.index[groups == group]
    user_id = st.selectbox(f"User ({len(members):,} in {S.md(attribute)} = {S.md(group)})", members.tolist(),
                           key="explain_user")
    st.caption(" · ".join(S.md(f"{c}: {v}") for c, v in dataset.users.set_index("user_id").loc[user_id].items()))

    history = split.train.loc[split.train["user_id"] == user_id, ["item_id"]]
    history = history.assign(title=history["item_id"].map(titles))
    held_out = set(split.test.loc[split.test["user_id"] == user_id, "item_id"])
    recs = model.recommend([user_id], k=k)[["rank", "item_id", "score"]]
    recs = recs.assign(title=recs["item_id"].map(titles), in_holdout=recs["item_id"].isin(held_out))
    left, middle, right = st.columns([1, 1, 1.3])
    left.markdown(f"**History** ({len(history)} training interactions)")
    left.dataframe(history, hide_index=True, height=380)
    middle.markdown(f"**Top-{k} recommendations** ({int(recs['in_holdout'].sum())} in the user's holdout)")
    middle.dataframe(recs, hide_index=True, height=380)
    with right:
        item_id = st.selectbox("Explain the score of", recs["item_id"].tolist(), key="explain_item",
                               format_func=lambda i: f"{i} · {titles.get(i, '')}")
        if not hasattr(model, "score_with_history"):
            st.info(f"SHAP explanations of single scores need a model that can re-score an edited history; "
                    f"**{model.kind}** cannot. Train an **llm** model on the Model page.")
        elif st.toggle("SHAP explanation", key="explain_shap"):
            try:
                frame = local_explanation(model, dataset, model_key, user_id, item_id)
            except S.USER_ERRORS as err:
                st.error(f"The explanation failed: {S.md(err)}")
            else:
                bases = frame.groupby(frame["kind"] == "text")["base_value"].first()
                st.caption(
                    f"Score {frame['prediction'].iloc[0]:.3f}. History items and profile attributes add up from "
                    f"{bases.get(False, float('nan')):.3f} (no history, unknown profile)"
                    + (f"; the item text's words from {bases[True]:.3f} (text fully masked)." if True in bases else ".")
                )
                readable = readable_explanation(frame)
                S.chart(plots.local_shap_chart(readable, title=f"Why {item_id} for {user_id}"), readable,
                        f"shap_{user_id}_{item_id}", key="local_shap")
                st.dataframe(frame[["kind", "feature", "feature_value", "shap_value"]], hide_index=True)
                st.download_button("Explanation as CSV", S.csv_bytes(frame), f"shap_{user_id}_{item_id}.csv",
                                   mime="text/csv", key="csv_local")


def drivers_tab() -> None:
    st.caption("A gradient-boosting surrogate predicts each user's metric from their attributes and behaviour "
               "(activity, popularity of their history, genre entropy); SHAP shows what drives it, and how much "
               "of each group's gap is carried by behaviour rather than the attribute itself.")
    try:
        result = S.audit_models(dataset, [label])
    except S.USER_ERRORS as err:
        st.error(f"The audit could not run: {S.md(err)}")
        return
    per_user = result.user_metrics[result.user_metrics["model"] == label].set_index("user_id")
    metric = st.selectbox("Per-user metric", [m for m in ACCURACY_METRICS if m in per_user],
                          format_func=lambda m: plots.metric_label(m, k), key="drivers_metric")
    plain = plain_attributes(attributes)
    if st.toggle("Compute gap drivers", key="drivers_on"):
        with S.user_errors("The surrogate"):
            drivers = gap_drivers(result.meta["audit_id"], metric, plain, per_user[metric], dataset, split.train)
            (st.success if drivers.r2 >= 0.3 else st.warning)(
                f"Surrogate fit: held-out R² = {drivers.r2:.2f}"
                + ("" if drivers.r2 >= 0.3 else " — weak; read the drivers as rough hints only.")
            )
            fig = plots.shap_bar_chart(drivers.drivers, target=plots.metric_label(metric, k))
            S.chart(fig, drivers.drivers, f"drivers_{metric}", key="drivers")
            st.markdown("**Each group's gap vs the rest, split into what carries it**")
            decomposed = list(dict.fromkeys(drivers.decomposition["attribute"]))
            shown = st.selectbox("Attribute", decomposed, key="drivers_attribute")
            S.chart(plots.gap_breakdown_chart(drivers.decomposition, attribute=shown, k=k),
                    drivers.decomposition[drivers.decomposition["attribute"] == shown],
                    f"gap_breakdown_{metric}_{shown}", key="breakdown")
            st.dataframe(drivers.decomposition, hide_index=True)
            st.download_button("Decomposition as CSV", S.csv_bytes(drivers.decomposition), "gap_decomposition.csv",
                               mime="text/csv", key="csv_decomposition")


def probe_tab() -> None:
    st.caption("Each probed user is re-scored with only the attribute changed to every other value; how much "
               "their top-K list changes (Jaccard, rank-aware overlap, item-group exposure) is averaged per value. "
               "A model that does not read attributes shows exactly no change.")
    if not model.probeable:
        st.info(f"**{S.md(label)}** cannot be probed: FairAudit cannot re-score it as if a user attribute were "
                "different (recommendations imported from another system, or an external model that does not "
                "receive user attributes). Its audit, gap drivers, comparisons and report still apply.")
        return
    plain_attrs = [a for a in S.attribute_choices(dataset) if INTERSECTION_SEP not in a]
    probe_attr = st.selectbox("Attribute to swap", plain_attrs, key="probe_attribute")
    # Jobs in the worker process; one result folder per model, data and settings, shared by sessions.
    spec = {"model": path, "attribute": probe_attr, "k": k, "users": PROBE_USERS, "rounds": S.DEFAULT_ROUNDS}
    folder = S.job_result("probe", spec, what="Probe", label=f"probe of {probe_attr} on {label}",
                          start=st.button("Run probe", type="primary", key="probe_run"))  # fmt: skip
    if folder is not None:
        with S.user_errors("The probe"):
            table = read_probe_table(folder)
            # Pooled rows (all probed users) per counterfactual value, in the chart's long schema.
            pooled = plots.probe_summary(table)
            for sentence in probe_sentences(pooled, k=k):
                st.markdown(f"**{S.md(sentence)}**")
            metrics = sorted(set(pooled["metric"]))
            metric = st.selectbox("Probe metric", metrics, key="probe_metric",
                                  index=plots.default_index(metrics, DEFAULT_PROBE_METRIC))
            fig = plots.probe_chart(pooled, metric=metric, k=k)
            S.chart(fig, pooled[pooled["metric"] == metric], f"probe_{probe_attr}_{metric}", key="probe")
            st.dataframe(table, hide_index=True)
    st.markdown("**FaiRLLM protocol** — the model is asked once with a neutral prompt and once per stated "
                "attribute value; SNSR/SNSV measure how far the lists move, against re-asking the same neutral "
                "prompt (the decoding-noise baseline). Same table as `probe --protocol fairllm`.")
    spec = {"model": path, "name": label, "attribute": probe_attr, "k": k, "users": FAIRLLM_USERS,
            "rounds": S.DEFAULT_ROUNDS, "split": {"method": S.SPLIT_METHOD, "seed": S.SPLIT_SEED}}  # fmt: skip
    folder = S.job_result("fairllm", spec, what="FaiRLLM probe", label=f"FaiRLLM probe of {probe_attr} on {label}",
                          start=st.button(f"Run the FaiRLLM protocol on {FAIRLLM_USERS} users", key="fairllm_run"))
    if folder is not None:
        with S.user_errors("The FaiRLLM probe"):
            table = read_probe_table(folder, "fairllm")
            st.dataframe(fairllm_summary(table), hide_index=True)
            S.chart(fairllm_figure(table), table, f"fairllm_{probe_attr}", key="fairllm")


# Lazy tabs: only the open tab runs (the gap drivers need the audit; the probes re-score users).
tabs = st.tabs(["One user", "Gap drivers", "Counterfactual probes"], key="explain_tab", on_change="rerun")
for tab, draw in zip(tabs, (user_tab, drivers_tab, probe_tab)):
    if tab.open:
        with tab:
            draw()
