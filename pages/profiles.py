"""Profiles page: coverage of user texts, and the audit of text profiles (who gains, what leaks, what markers change).

The audit of two models runs as a job in a worker process (kind ``profiles``,
fairaudit/workspace/_run_profiles.py); the page draws its progress and reads its audit folder."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fairaudit.audit import AuditResult
from fairaudit.data import text_summary
from fairaudit.profiles import accuracy_summary, counterfactual_summary, leakage_summary, text_coverage
from pages import _state as S

#: Users of the dashboard's text counterfactual (the CLI's --users; all users there by default).
COUNTERFACTUAL_USERS = 300

S.start_page()
st.title("Profiles")
st.caption(
    "An LLM recommender can read users' own texts (reviews, comments, messages) as a profile. This page shows "
    "who has texts, whom the text profile serves (accuracy with minus without texts, paired CIs), how well "
    "sensitive attributes can be recovered from it (leakage), and how the lists change when the gender markers "
    "in a user's texts are swapped (docs/profiles.md)."
)
ss = st.session_state
dataset = S.current_dataset()
if dataset is None:
    st.stop()
summary = text_summary(dataset)
st.subheader("Coverage")
if not summary["n_texts"]:
    st.info("This dataset has no user texts. Add a user_texts.csv (user_id, text[, item_id, timestamp, kind]) "
            "beside the interactions on the **Data** page to build text profiles.")
    st.stop()
cols = st.columns(4)
cols[0].metric("Texts", f"{summary['n_texts']:,}")
cols[1].metric("Users with texts", f"{summary['n_users_with_texts']:,}")
cols[2].metric("Share of users", f"{100 * summary['share_users_with_texts']:.0f}%")
cols[3].metric("Texts per writer (mean)", f"{summary['texts_per_user_mean']:.1f}")
with S.user_errors("The coverage by group"):
    st.dataframe(text_coverage(dataset, [a for a in S.selected_attributes(dataset) if a in dataset.users.columns]),
                 hide_index=True)  # fmt: skip


st.subheader("Audit of text profiles")
source = st.radio("Results", ["Run on two models", "Open an audit folder"], horizontal=True, key="profiles_source",
                  help="An audit folder written by `python -m fairaudit profiles --out DIR` opens at once.")
result = None
if source == "Open an audit folder":
    folder = st.text_input("Audit folder", key="profiles_folder", placeholder="audits/profiles")
    if folder:
        with S.user_errors("Opening the folder"):
            result = AuditResult.read(Path(folder))
            if result.profile_leakage is None:
                st.warning("This audit folder holds no profile tables; write one with `python -m fairaudit profiles`.")
                result = None
else:
    folders = S.available_models()  # the audit runs in a worker process: no model loaded here
    models = list(folders)
    if len(models) < 2:
        st.info("Train two LLM recommenders on the **Model** page, one with 'use_texts' and one without (same data "
                "and split), or open an audit folder written by `python -m fairaudit profiles`.")
        st.stop()
    cols = st.columns(2)
    with_label = cols[0].selectbox("Model with texts", models, key="profiles_with")
    without_label = cols[1].selectbox("Model without texts", [m for m in models if m != with_label],
                                      key="profiles_without")  # fmt: skip
    # The result folder is keyed by spec["model"]'s weights checksum; the second model's is named here.
    spec = {"model": folders[with_label], "model_without": folders[without_label],
            "weights_without": S.weights_checksum(folders[without_label]),
            "attributes": S.selected_attributes(dataset), "k": S.selected_k(), "rounds": int(ss["audit_rounds"]),
            "users": COUNTERFACTUAL_USERS}  # fmt: skip
    folder = S.job_result("profiles", spec, what="Audit of profiles", label=f"audit of profiles: {with_label} with "
                          f"vs {without_label} without texts",
                          start=st.button("Run the audit of profiles", type="primary", key="profiles_run"))  # fmt: skip
    if folder is not None:
        result = S.read_audit(folder)

if result is not None:
    st.markdown("**Who gains?** NDCG with minus without texts, per group (paired-bootstrap 95% CI; * significant)")
    gains = accuracy_summary(result.profile_accuracy)
    st.dataframe(gains, hide_index=True)
    st.download_button("profile_accuracy.csv", S.csv_bytes(result.profile_accuracy), "profile_accuracy.csv",
                       key="profiles_accuracy_csv")  # fmt: skip
    st.markdown("**Leakage**: out-of-fold recovery of each attribute from each representation (accuracy vs the "
                "majority rate, AUC vs 0.5; leaks = the AUC's CI lies above 0.5)")
    st.dataframe(leakage_summary(result.profile_leakage), hide_index=True)
    st.download_button("profile_leakage.csv", S.csv_bytes(result.profile_leakage), "profile_leakage.csv",
                       key="profiles_leakage_csv")  # fmt: skip
    st.markdown("**Text counterfactual**: gender markers swapped in each user's texts; Jaccard@K of the new list "
                "with the original, share of changed lists, share of users with a marker, per group")
    st.dataframe(counterfactual_summary(result.text_counterfactual), hide_index=True)
    st.download_button("text_counterfactual.csv", S.csv_bytes(result.text_counterfactual),
                       "text_counterfactual.csv", key="profiles_counterfactual_csv")  # fmt: skip
    for note in (result.meta.get("profiles") or {}).get("notes") or []:
        st.caption(S.md(note))
