"""Compare page: two or more models on the same data and split — paired-bootstrap differences,
the accuracy-vs-gap trade-off and plain-sentence verdicts — and a mitigation sweep over the sidebar's
model, drawn as a Pareto plot, whose points can be saved as candidate models. The audit and the sweep
run as jobs in a worker process (progress and Cancel drawn here; a reload finds them again)."""

from __future__ import annotations

import streamlit as st

from fairaudit import plots
from fairaudit.audit import ALL, AuditResult, select_rows
from fairaudit.compare import add_comparison
from fairaudit.data import Dataset, read_csv
from fairaudit.metrics import ACCURACY_METRICS, pareto_front
from fairaudit._choices import DEFAULT_EPSILONS
from fairaudit.sweep import DEFAULT_STRENGTHS, MITIGATIONS, SWEEP_FILE, TRAINING_MITIGATIONS
from pages import _state as S

S.start_page()
st.title("Compare")
st.caption(
    "Every candidate against a baseline on the same test users: differences B − A with paired-bootstrap "
    "95% CIs (the same resampled users for both models), per metric, per group and for each group's gap."
)
ss = st.session_state


@st.cache_data(show_spinner="Paired bootstrap…", max_entries=32)
def compared(audit_id: str, baseline: str, _result: AuditResult) -> AuditResult:
    """The audit with every model compared against ``baseline`` (the service compares against the first
    model; another baseline is computed once per audit and baseline; slices only filter it)."""
    if _result.comparison is not None and set(_result.comparison["model_a"]) == {baseline}:
        return _result
    return add_comparison(_result, baseline=baseline)


def comparison_section(dataset: Dataset) -> None:
    """Paired differences, verdicts and the trade-off scatter of two or more saved models."""
    available_paths = S.available_models()
    available = list(available_paths)
    if len(available) < 2:
        st.info("Comparison needs at least two models for this dataset: train another one on the **Model** page "
                "(e.g. itemknn next to popularity).")
        return

    # Start from the sidebar's model (the one the analyst is looking at) and the next one saved on the
    # same split (models on different splits cannot be compared user by user).
    sidebar = ss.get("model") if ss.get("model") in available else available[0]
    same_split = [m for m in available if m != sidebar and S.split_fingerprint(available_paths[m])
                  == S.split_fingerprint(available_paths[sidebar])]  # fmt: skip
    default = [sidebar, *same_split[:1]]
    ss.setdefault("compare_models", default)
    ss["compare_models"] = [m for m in ss["compare_models"] if m in available] or default
    chosen = st.multiselect("Models to compare", available, key="compare_models", max_selections=6)
    if len(chosen) < 2:
        st.info("Pick at least two models.")
        return
    baseline = st.selectbox("Baseline (A)", chosen, key="compare_baseline",
                            index=chosen.index(ss["model"]) if ss.get("model") in chosen else 0)
    k = S.selected_k()
    attributes = S.selected_attributes(dataset)

    try:
        result = S.audit_models(dataset, chosen, stop=False)  # a job: its progress here, the sweep still below
    except S.USER_ERRORS as err:
        st.error(f"These models cannot be compared: {S.md(err)}\n\n"
                 "Compare models trained on this dataset with the same split.")
        return
    if result is None:
        return
    result = compared(result.meta["audit_id"], baseline, result)
    table = result.comparison
    metrics = [m for m in ACCURACY_METRICS if m in set(table["metric"])]
    metric = st.selectbox("Accuracy metric", metrics, format_func=lambda m: plots.metric_label(m, k),
                          key="compare_metric",
                          index=plots.default_index(metrics, plots.DEFAULT_METRIC))

    st.subheader("Verdicts")
    verdict = select_rows(result.verdicts, attribute=attributes, metric=metric)
    for sentence in verdict["verdict"]:
        st.markdown(f"- {S.md(sentence)}")
    st.dataframe(verdict, hide_index=True)
    st.download_button("Verdicts as CSV", S.csv_bytes(verdict), "verdicts.csv", mime="text/csv", key="csv_verdicts")

    st.subheader("Accuracy vs gap")
    for attribute in attributes:
        rows_gm = result.rows("group_metrics", attribute=[ALL, attribute])
        rows_gaps = result.rows("gaps", attribute=attribute)
        if rows_gaps.empty:
            st.info(f"No tested gaps for {S.md(attribute)} (all of its groups are small).")
            continue
        fig = plots.tradeoff_chart(rows_gm, rows_gaps, metric=metric, attribute=attribute, k=k)
        S.chart(fig, select_rows(rows_gaps, metric=metric), f"tradeoff_{metric}_{attribute}",
                key=f"trade_{attribute}")

    st.subheader("Paired differences (B − A)")
    overall = select_rows(table, attribute=ALL, quantity="value")
    st.markdown("**Overall, every metric**")
    st.dataframe(overall[["model_a", "model_b", "metric", "n_users", "a", "b", "difference", "ci_low",
                          "ci_high", "significant"]], hide_index=True)
    sliced = select_rows(table, attribute=attributes, metric=metric)
    st.markdown(f"**By group ({S.md(', '.join(attributes))}), {S.md(plots.metric_label(metric, k))}**")
    st.dataframe(sliced, hide_index=True)
    st.download_button("All paired differences as CSV", S.csv_bytes(table), "paired_differences.csv",
                       mime="text/csv", key="csv_paired")


#: Item columns that are free text or lists, never item groups (``genres`` is offered as ``genre``).
NOT_ITEM_GROUPS = ("item_id", "title", "description", "genres")


def sweep_section(dataset: Dataset) -> None:
    """Run a mitigation over a grid of strengths on the sidebar's model, draw its Pareto plot, save a point."""
    st.subheader("Mitigation sweep")
    st.caption(
        "Re-rankers wrap the sidebar's model; in-training terms retrain an **llm** model with a fairness loss of "
        "weight λ. Every strength is audited on the same test users; costs and improvements are paired-bootstrap "
        "changes against the lowest strength (include 0 for the unmitigated model)."
    )
    models = S.available_models()
    label = ss.get("model")
    if label not in models:
        st.info(S.NO_MODEL_HINT)
        return
    path = models[label]  # the model's kind and settings from its folder: it is loaded by the sweep's worker
    base = S.model_config(path)
    kind, base_params = base.get("kind", ""), base.get("params") or {}
    mitigation = st.selectbox("Mitigation", MITIGATIONS, key="sweep_mitigation")
    if (mitigation in TRAINING_MITIGATIONS or mitigation == "privacy") and kind != "llm":
        st.info(f"'{mitigation}' is a training term of the LLM recommender: select an **llm** model in the sidebar "
                f"(train one on the **Model** page) to sweep it. The sidebar's model **{S.md(label)}** is a {kind} "
                "model; the re-rankers (rerank_*) work on any model.")
        return
    template_params = {}
    if mitigation == "adversarial" and base_params.get("pooling") == "sqrt":
        if st.checkbox("Train the sweep's models with mean pooling", value=True, key="sweep_mean_pooling",
                       help="Every point, λ = 0 included, re-trains the sidebar model's settings with mean pooling."):
            template_params = {"pooling": "mean"}
        else:
            st.warning(f"**{S.md(label)}** pools histories with `sqrt`, which writes history length into every user "
                       "vector: an adversary cannot fully remove an attribute that goes with activity.")
    cols = st.columns(4)
    if mitigation == "privacy":  # DP-SGD training at each target ε (docs/privacy.md); inf = the non-private twin
        default = ",".join(f"{s:g}" for s in DEFAULT_EPSILONS)
        text = cols[0].text_input("Target ε", value=default, key="sweep_epsilons",
                                  help="DP-SGD at each target ε (user-level); inf = trained without DP, the reference.")
    else:
        default = ",".join(f"{s:g}" for s in DEFAULT_STRENGTHS)
        text = cols[0].text_input("Strengths λ", value=default, key="sweep_strengths",
                                  help="Re-rankers: λ in [0, 1]; training terms: the loss weight λ ≥ 0.")
    attribute = cols[1].selectbox("User attribute", S.attribute_choices(dataset), key="sweep_attribute")
    metric = cols[2].selectbox("Accuracy metric", ACCURACY_METRICS, key="sweep_metric",
                               format_func=lambda m: plots.metric_label(m, S.selected_k()),
                               index=plots.default_index(ACCURACY_METRICS, plots.DEFAULT_METRIC))
    columns = [c for c in dataset.items.columns if c not in NOT_ITEM_GROUPS]
    item_choices = columns + (["genre"] if "genres" in dataset.items.columns else [])
    item_attribute = cols[3].selectbox(
        "Item attribute (exposure)", item_choices, key="sweep_item_attribute",
        index=plots.default_index(item_choices, plots.DEFAULT_ITEM_ATTRIBUTE))
    strengths = S.strengths_from_text(text, default)
    if strengths is None:
        return
    if attribute is None or item_attribute is None:
        st.info("The sweep needs a user attribute and an item attribute; upload users and items tables on the "
                "**Data** page.")
        return
    request = {"mitigation": mitigation, "strengths": strengths, "k": S.selected_k(), "attribute": attribute,
               "metric": metric, "item_attribute": item_attribute, "rounds": int(ss["audit_rounds"]),
               "template_params": template_params}
    # One folder (and job key) per data, base model and request, shared by every session like saved models.
    out = S.workspace().sweep_dir(mitigation, S.current_fingerprint(),
                                  {"model": path, "weights": S.weights_checksum(path), **request})
    start = st.button("Run sweep", type="primary", key="run_sweep")
    st.caption(f"{len(strengths)} strengths on **{S.md(label)}**: each is fitted and audited "
               f"({request['rounds']} bootstrap rounds) in a worker process.")
    folder = S.job_result("sweep", {"model": path, "request": request}, what="Sweep",
                          label=f"{mitigation} sweep of {label}", start=start, out=out)
    if folder is None or not (folder / SWEEP_FILE).is_file():  # no table: a folder an older version left half-written
        return
    frame = read_csv(folder / SWEEP_FILE)
    S.chart(plots.pareto_chart(frame, k=request["k"]), frame, f"sweep_{mitigation}", key="sweep")
    st.dataframe(frame, hide_index=True)

    front = dict(zip(frame["model"], pareto_front(frame, "accuracy", "target", gap_goal=frame["target_goal"].iloc[0])))
    point = st.selectbox("Point to keep", list(front), key="sweep_point",
                         format_func=lambda name: f"{name} (on the Pareto front)" if front[name] else name,
                         help="Saved into the workspace's models: it then appears in the sidebar and above.")
    if st.button("Save as candidate model", key="save_candidate"):
        row = select_rows(frame, model=point).iloc[0]
        with S.user_errors("Saving the point"):
            saved = S.workspace().save_candidate(out / row["model_dir"])
            ss["sweep_message"] = (f"Saved **{S.md(point)}** as candidate model **{S.md(S.model_label(saved))}**: pick it in "
                                   "the sidebar or under *Models to compare*.")
            st.rerun()
    if "sweep_message" in ss:
        st.success(ss.pop("sweep_message"))


dataset = S.current_dataset()
if dataset is None:
    st.stop()
comparison_section(dataset)
st.divider()
sweep_section(dataset)
