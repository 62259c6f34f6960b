"""Robustness page: a shilling-profile check of the data, and attacks on the sidebar's model audited by group."""

from __future__ import annotations

import streamlit as st

from fairaudit.audit import split_for_model
from fairaudit.data import Dataset
from fairaudit.robustness import ATTACKS, SHILLING_KINDS, ShillingAttack, run_robustness, shilling_scores
from pages import _state as S

S.start_page()
st.title("Robustness")
st.caption(
    "What an attack does and to whom: fake profiles (shilling) or small perturbations of the model's learned "
    "vectors (FGSM, PGD; Gaussian noise of the same norm as the baseline). The clean and attacked models are "
    "audited on the same test users, with paired-bootstrap 95% CIs."
)


@st.cache_data(show_spinner="Scoring profiles…", max_entries=8)
def _profile_check(fingerprint: str, _dataset: Dataset):
    return shilling_scores(_dataset.interactions)


dataset = S.current_dataset()
if dataset is None:
    st.stop()
st.subheader("Data check: suspicious profiles")
scores = _profile_check(S.current_fingerprint(), dataset)
flagged = scores[scores["flagged"]].sort_values("score", ascending=False)
st.write(f"{len(flagged)} of {len(scores)} users look like attack profiles (combined robust z-score above the "
         "threshold of profile similarity, rating deviation, item popularity and identical profile lengths; "
         "docs/robustness.md). A flag is a prompt to look, not proof.")
st.dataframe(flagged.head(50), hide_index=True)

st.subheader("Attack the model")
dataset, label, model = S.require_model()
attack = st.selectbox("Attack", ATTACKS, key="robustness_attack")
default = "0,0.03" if attack == "shilling" else "0,0.1"
text = st.text_input("Strengths (share of fake users, or epsilon)", default, key=f"robustness_strengths_{attack}")
kind = st.selectbox("Attack model", SHILLING_KINDS, index=2, key="robustness_kind") if attack == "shilling" else None
if st.button("Run attack", key="robustness_run"):
    with S.user_errors("The attack"):
        strengths = [float(v) for v in text.split(",") if v.strip()]
        split = split_for_model(dataset, model)
        with st.spinner("Attacking and auditing…"):
            result = run_robustness(
                dataset, split, model, attack=attack, strengths=strengths, attributes=S.selected_attributes(dataset),
                k=S.selected_k(), rounds=200, shilling=ShillingAttack(kind=kind) if kind else None,
                item_attribute="popularity_tier" if "popularity_tier" in dataset.items.columns else "genre",
            )  # fmt: skip
        st.session_state["robustness_result"] = (label, result)
if st.session_state.get("robustness_result") and st.session_state["robustness_result"][0] == label:
    result = st.session_state["robustness_result"][1]
    st.dataframe(result.summary, hide_index=True)
    st.download_button("Download summary (CSV)", S.csv_bytes(result.summary), "robustness_summary.csv")
    st.write("Every group's change (attacked minus clean):")
    st.dataframe(result.audit.robustness, hide_index=True)
