"""Privacy page: the sidebar model's DP guarantee, its membership-inference risk by group, and who pays for DP."""

from __future__ import annotations

import streamlit as st

from fairaudit.models import privacy_record, privacy_summary
from fairaudit.privacy import ATTACKS, NOT_EXCHANGEABLE, read_membership, read_privacy_cost
from fairaudit.report import MIA_NOTE, mia_chart
from pages import _state as S

S.start_page()
st.title("Privacy")
st.caption(
    "Does the model give away what it was trained on, and to whose cost is it protected? Differential privacy "
    "(DP-SGD, set on the Model page) bounds what any one user's data can change; a membership-inference attack "
    "measures what leaks, per user group; the DP cost compares a DP model with its non-private twin "
    "(docs/privacy.md)."
)
ss = st.session_state
dataset, label, path = S.require_model_folder()  # the analyses run in a worker process: no model loaded here

st.subheader("Differential privacy of this model")
record = privacy_record(S.model_config(path))
st.write(privacy_summary(record))
if record:
    cols = st.columns(4)
    cols[0].metric("epsilon spent", f"{record['epsilon_spent']:.3g}", help=f"target {record.get('epsilon_target')}")
    cols[1].metric("delta", f"{record['delta']:.1e}")
    cols[2].metric("clipping norm", f"{record['max_grad_norm']:g}")
    cols[3].metric("noise multiplier", f"{record.get('noise_multiplier', float('nan')):.3g}")

st.subheader("Membership inference by user group")
st.caption(MIA_NOTE)
attack = st.selectbox("Attack statistic", ATTACKS, key="privacy_attack",
                      help="rank: the item's percentile in the user's ranking; score: the raw score; "
                           "loss: log-softmax of the user's scores")  # fmt: skip
# Jobs in the worker process; one result folder per model(s), data and settings, shared by sessions.
spec = {"model": path, "name": label, "attributes": list(S.selected_attributes(dataset)), "attack": attack,
        "rounds": int(ss.get("audit_rounds", S.DEFAULT_ROUNDS))}  # fmt: skip
folder = S.job_result("membership", spec, what="Membership inference", label=f"membership inference on {label}",
                      start=st.button("Run membership inference", type="primary", key="privacy_mia_run"))
if folder is not None:
    with S.user_errors("Membership inference"):
        table, records = read_membership(folder)
        info = records["models"][label]
        if not info["exchangeable"]:
            st.warning(NOT_EXCHANGEABLE.format(info["split"]))
        overall = table[table["attribute"] == "all"].iloc[0]
        st.metric("AUC, all users", f"{overall['auc']:.3f}", help=f"95% CI [{overall['ci_low']:.3f}, "
                  f"{overall['ci_high']:.3f}] over {int(overall['n_users'])} users")  # fmt: skip
        attributes = [a for a in dict.fromkeys(table["attribute"]) if a != "all"]
        if attributes:
            attribute = st.selectbox("Groups", attributes, key="privacy_mia_attribute")
            S.chart(mia_chart(table, attribute=attribute), table[table["attribute"] == attribute], "mia",
                    key="privacy_mia_chart")  # fmt: skip
        st.dataframe(table, hide_index=True)
        st.download_button("mia.csv", S.csv_bytes(table), file_name="mia.csv", key="privacy_mia_csv")

st.subheader("Who pays for privacy")
folders = S.available_models()
others = [name for name in folders if name != label]
if not others:
    st.info("Train a second model (the non-private twin, or a DP one) to compare accuracy and exposure by group.")
    st.stop()
twin = st.selectbox("Non-private twin", others, key="privacy_twin",
                    help="the same kind and settings trained without DP; the sidebar's model is the DP one")  # fmt: skip
if record is None:  # nothing to price: the job would audit both models only to refuse
    st.info("The sidebar's model was trained without DP: choose a DP model there to see its cost.")
    st.stop()
twin_path = folders[twin]
config = S.audit_config_json(dataset)
spec = {"model": path, "name": label, "twin": twin_path, "twin_weights": S.weights_checksum(twin_path),
        "twin_name": twin, "config": config}  # fmt: skip
folder = S.job_result("privacy_cost", spec, what="Comparison with the twin", label=f"DP cost of {label} vs {twin}",
                      start=st.button("Compare with the twin", key="privacy_cost_run"))
if folder is not None:
    with S.user_errors("The DP cost"):
        cost = read_privacy_cost(folder)
        st.caption("cost = non-private minus DP (accuracy or exposure share lost under DP), paired bootstrap 95% CI; "
                   "pays more: the group loses significantly more than the rest.")  # fmt: skip
        st.dataframe(cost, hide_index=True)
        st.download_button("privacy_cost.csv", S.csv_bytes(cost), file_name="privacy_cost.csv", key="privacy_cost_csv")
