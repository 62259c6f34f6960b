"""Report page: write the audit folder, build the audit PDF from it (a job in a worker process, with progress
and Cancel; a reload finds it again), and download both."""

from __future__ import annotations

import streamlit as st

from fairaudit.report import PAPERS
from fairaudit.workspace import find_job, params_hash, start_job, zip_folder
from pages import _state as S

S.start_page()
st.title("Report")
st.caption(
    "The PDF is built from the audit folder alone (cover with fingerprints, executive summary opening with the "
    "ranked findings and their pass/attention/fail checks, data, model cards, results, comparison, methodology, appendix), "
    "so anyone holding the folder can rebuild and check it."
)
ss = st.session_state
dataset = S.current_dataset()
available = list(S.available_models()) if dataset is not None else []
if not available:
    st.info(S.NO_MODEL_HINT)
    st.stop()

default = [ss["model"]] if ss.get("model") in available else available[:1]
chosen = st.multiselect("Models in the report", available, default=default, key="report_models",
                        help="Several models add a comparison section.")
if not chosen:
    st.info("Pick at least one model.")
    st.stop()
cols = st.columns(3)
organisation = cols[0].text_input("Organisation", key="report_org")
title = cols[1].text_input("Title", value="Recommender fairness audit", key="report_title")
paper = cols[2].radio("Paper", PAPERS, horizontal=True, key="report_paper")
charts = st.checkbox("Include charts (slower: each is rendered by Chromium)", value=True, key="report_charts")

try:
    audit = S.audit_folder(dataset, chosen)
    result = S.read_audit(audit)
except S.USER_ERRORS as err:
    st.error(f"The audit could not run: {S.md(err)}")
    st.stop()
audit_id = result.meta["audit_id"]
folder = S.workspace().audit_dir(ss["session_id"], audit_id)
st.markdown(f"Audit {S.md(audit_id)} · models {S.md(', '.join(chosen))} · K = {result.config.k} · "
            f"{result.config.bootstrap_rounds} bootstrap rounds")
findings = S.findings(result)
if findings.headline:
    st.markdown(f"**The PDF opens with the same findings as the Audit page.** Headline: {S.md(findings.headline)}")
st.caption(S.md(findings.scope()))

options = {"organisation": organisation or None, "title": title or None, "paper": paper, "charts": charts}
pdf_key = f"report-{ss['session_id']}-{audit_id}-{params_hash(options)}"
job = find_job(S.workspace().root, pdf_key)
S.unfinished(job, "PDF build")
if st.button("Build the PDF", type="primary", key="build_pdf"):
    # In this session's own folder: the audit folder (with the models' paired comparison) copied, then its PDF,
    # which draws only what the folder holds; built in a worker process.
    job = start_job(S.workspace().root, "report", {"audit": str(audit), "options": options},
                    out_dir=folder, session=ss["session_id"], label=f"PDF of audit {audit_id}", key=pdf_key,
                    threads=1)  # fmt: skip
if job is not None and job.status == "running":
    S.follow_job(job, "PDF build")
if job is not None and job.status == "done" and (folder / "audit.pdf").is_file():
    pdf_bytes = (folder / "audit.pdf").read_bytes()
    st.success(f"Report ready ({len(pdf_bytes) / 1024:.0f} KiB).")
    st.download_button("Download the PDF", pdf_bytes, f"fairaudit-{audit_id}.pdf", mime="application/pdf",
                       key="download_pdf")
    st.download_button("Download the audit folder (.zip)", zip_folder(folder), f"fairaudit-{audit_id}.zip",
                       mime="application/zip", key="download_zip")
