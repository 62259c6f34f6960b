"""Robustness page: a shilling-profile check of the data, and attacks on the sidebar's model audited by group.

The attack runs as a job in a worker process (kind ``robustness``, fairaudit/workspace/_run_robustness.py);
the page draws its progress and reads its folder (:func:`fairaudit.robustness.read_robustness`)."""

from __future__ import annotations

import streamlit as st

from fairaudit.data import Dataset
from fairaudit.robustness import (
    ATTACKS,
    ROBUSTNESS_ROUNDS,
    SHILLING_KINDS,
    RobustnessResult,
    read_robustness,
    shilling_scores,
)
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


@st.cache_resource(max_entries=8)
def _robustness(folder: str) -> RobustnessResult:
    """A robustness run's folder, read once per server (a result folder is complete once it exists)."""
    return read_robustness(folder)


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
dataset, label, path = S.require_model_folder()  # the attack runs in a worker process: no model loaded here
attack = st.selectbox("Attack", ATTACKS, key="robustness_attack")
default = "0,0.03" if attack == "shilling" else "0,0.1"
text = st.text_input("Strengths (share of fake users, or epsilon)", default, key=f"robustness_strengths_{attack}")
kind = st.selectbox("Attack model", SHILLING_KINDS, index=2, key="robustness_kind") if attack == "shilling" else None
strengths = S.strengths_from_text(text, default)
if strengths is None:
    st.stop()
spec = {
    "model": path, "attack": attack, "strengths": strengths, "shilling": kind,
    "attributes": S.selected_attributes(dataset), "k": S.selected_k(), "rounds": ROBUSTNESS_ROUNDS,
    "item_attribute": "popularity_tier" if "popularity_tier" in dataset.items.columns else "genre",
}  # fmt: skip
folder = S.job_result("robustness", spec, what="Attack", label=f"{attack} attack on {label}",
                      start=st.button("Run attack", key="robustness_run"))  # fmt: skip
if folder is not None:
    result = _robustness(str(folder))
    st.dataframe(result.summary, hide_index=True)
    st.download_button("Download summary (CSV)", S.csv_bytes(result.summary), "robustness_summary.csv")
    st.write("Every group's change (attacked minus clean):")
    st.dataframe(result.audit.robustness, hide_index=True)
