"""FairAudit dashboard: the router.

Run with ``streamlit run app.py``. This file only sets up the page and hands over to the
chosen page in ``pages/``. Every page starts with ``S.start_page()``, which initialises the
session and draws the shared sidebar (dataset, model, attributes, K: each widget defined once,
in ``pages/_state.py``, with a key the pages read). The first screen is the Audit page: the
bundled sample comes with ready models (``sample_data/models/``), so a newcomer sees findings at
once. The sidebar is drawn from the page rather than here because Streamlit runs a ``pages/``
script directly, without this router, on a
server's very first request to a page URL and in ``AppTest.switch_page``.
"""

from __future__ import annotations

import os

import streamlit as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

st.set_page_config(page_title="FairAudit", page_icon=":material/balance:", layout="wide")

PAGES = {
    "Prepare": [
        st.Page("pages/data.py", title="Data", icon=":material/table:"),
        st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
    ],
    "Analyse": [
        st.Page("pages/audit.py", title="Audit", icon=":material/balance:", default=True),
        st.Page("pages/explain.py", title="Explain", icon=":material/psychology:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/robustness.py", title="Robustness", icon=":material/shield:"),
        st.Page("pages/dynamics.py", title="Dynamics", icon=":material/timeline:"),
        st.Page("pages/privacy.py", title="Privacy", icon=":material/lock:"),
        st.Page("pages/profiles.py", title="Profiles", icon=":material/badge:"),
    ],
    "Share": [st.Page("pages/report.py", title="Report", icon=":material/picture_as_pdf:")],
}


st.navigation(PAGES).run()
