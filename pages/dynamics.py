"""Dynamics page: simulate feedback loops of the sidebar's model, and audit the log per time window.

Both computations run as jobs in a worker process (kinds ``simulate`` and ``periods``,
fairaudit/workspace/_run_dynamics.py); the page draws their progress and reads their folders."""

from __future__ import annotations

import streamlit as st

from fairaudit.dynamics import (
    CHOICE_MODELS,
    RETRAIN_MODES,
    PeriodAudit,
    SimulationResult,
    SimulationSettings,
    exposure_drift_chart,
    period_chart,
    read_period_audit,
    read_simulation,
    rounds_chart,
)
from fairaudit.dynamics._simulate import CONSUMPTIONS
from fairaudit.models import RERANK_KINDS
from pages import _state as S


@st.cache_resource(max_entries=8)
def _simulation(folder: str) -> SimulationResult:
    """A simulation folder, read once per server (a result folder is complete once it exists)."""
    return read_simulation(folder)


@st.cache_resource(max_entries=8)
def _periods(folder: str) -> PeriodAudit:
    """A period-audit folder, read once per server."""
    return read_period_audit(folder)


S.start_page()
st.title("Dynamics")
st.caption(
    "What happens to the gaps once the model is deployed: users click what they are shown, the clicks become "
    "training data and the model is retrained, round after round. True relevance comes from a preference model "
    "fitted on all interactions; CIs cover users and repeated simulations (docs/dynamics.md)."
)
ss = st.session_state
dataset, label, model_folder = S.require_model_folder()  # the work runs in a worker process: no model loaded here
plain = [a for a in S.selected_attributes(dataset) if a in dataset.users.columns]
item_columns = dataset.item_attributes or ["genre"]

st.subheader("Feedback-loop simulation")
cols = st.columns(4)
rounds = cols[0].number_input("Rounds", 1, 30, 5, key="dyn_rounds")
seeds = cols[1].number_input("Repeated simulations", 1, 10, 2, key="dyn_seeds")
retrain = cols[2].selectbox("Retraining", RETRAIN_MODES, key="dyn_retrain",
                            help="scratch: a new model each round; finetune: warm start from the previous weights")
choice = cols[3].selectbox("Click model", CHOICE_MODELS, key="dyn_choice")
cols = st.columns(4)
consumption = cols[0].selectbox("Consumption", CONSUMPTIONS, key="dyn_consumption",
                                help="repeat: clicked items can come back; once: never")
no_click = cols[1].slider("No-click rate", 0.0, 0.95, 0.3, 0.05, key="dyn_no_click")
herding = cols[2].slider("Popularity bias of clicks", 0.0, 3.0, 0.0, 0.5, key="dyn_herding",
                         help="users follow the crowd: click probability x (popularity / max)^beta")
item_attribute = cols[3].selectbox("Item attribute", item_columns, key="dyn_item_attribute")
cols = st.columns(2)
mitigation = cols[0].selectbox("Mitigation every round", ["none", *RERANK_KINDS], key="dyn_mitigation")
strength = cols[1].slider("Strength", 0.0, 1.0, 0.5, 0.05, key="dyn_strength", disabled=mitigation == "none")

settings = SimulationSettings(
    rounds=int(rounds), seeds=int(seeds), retrain=retrain, choice=choice, consumption=consumption,
    no_click=float(no_click), popularity_bias=float(herding), item_attribute=item_attribute,
    mitigation=None if mitigation == "none" else mitigation, strength=float(strength),
    attributes=tuple(plain), k=S.selected_k(), bootstrap=int(ss["audit_rounds"]),
)  # fmt: skip
folder = S.job_result("simulate", {"model": model_folder, "settings": settings.to_dict()}, what="Simulation",
                      label=f"simulation of {label}",
                      start=st.button("Run simulation", type="primary", key="dyn_run"))  # fmt: skip
if folder is not None:
    result = _simulation(str(folder))
    pooled = result.pooled()
    metric = st.selectbox("Quantity", sorted(pooled["metric"].unique()), key="dyn_metric")
    attributes = sorted(pooled.loc[pooled["metric"] == metric, "attribute"].unique())
    attribute = st.selectbox("Groups", attributes, key="dyn_attribute")
    S.chart(rounds_chart(result.rounds, metric, attribute=attribute),
            pooled[(pooled["metric"] == metric) & (pooled["attribute"] == attribute)], "rounds", key="dyn_rounds_chart")
    last = result.drift[result.drift["round"] == result.settings.rounds]
    st.markdown(f"**Change by round {result.settings.rounds} against round 0** (significant: the CI over users "
                "and seeds excludes zero)")
    st.dataframe(last, hide_index=True)
    st.download_button("rounds.csv", S.csv_bytes(result.rounds), file_name="rounds.csv", key="dyn_rounds_csv")

st.subheader("Audits over time")
if "timestamp" not in dataset.interactions.columns:
    st.info("This data has no timestamps, so it cannot be audited per period.")
    st.stop()
period = st.text_input("Period (month, week or N-days)", "month", key="dyn_period")
spec = {"model": model_folder, "model_label": label, "config": S.audit_config_json(dataset), "period": period}
folder = S.job_result("periods", spec, what="Audit by period", label=f"audit of {label} per {period}",
                      start=st.button("Audit per period", key="dyn_period_run"))  # fmt: skip
if folder is not None:
    periods = _periods(str(folder))
    metric = st.selectbox("Metric", sorted(periods.metrics["metric"].unique()), key="dyn_period_metric")
    attribute = st.selectbox("Groups", sorted(periods.metrics["attribute"].unique()), key="dyn_period_attribute")
    with S.user_errors("The chart"):
        rows = periods.metrics[(periods.metrics["metric"] == metric) & (periods.metrics["attribute"] == attribute)]
        S.chart(period_chart(periods.metrics, metric, attribute=attribute), rows, "period_metrics", key="dyn_pm")
    st.markdown("**Trend of every gap** (weighted least-squares slope per period, Benjamini-Hochberg adjusted)")
    st.dataframe(periods.trends.sort_values("p_value"), hide_index=True)
    S.chart(exposure_drift_chart(periods.exposure, item_attribute=item_attribute), periods.exposure,
            "exposure_drift", key="dyn_drift")  # fmt: skip
