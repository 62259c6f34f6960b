"""The findings-first Audit page in a real browser (``streamlit run`` + Playwright + Debian's Chromium):
the headline is on the page under "Findings", and the PDF built on the Report page opens with the same
headline, both equal to ``fairaudit.report.audit_findings`` of the audit folder the Report page wrote.

A popularity model is saved into the workspace before the server starts, so nothing is trained in the
browser. Skips cleanly without ``/usr/bin/chromium``, Playwright or ``pdftotext``.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bench.bench_dashboard import CHROMIUM, browser, choose, dashboard, go, idle, new_page
from tests.conftest import WAIT_CEILING_S

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} not installed"),
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed"),
]
pytest.importorskip("playwright.sync_api")

CEILING_MS = WAIT_CEILING_S * 1000


def squeeze(text: str) -> str:
    """Text without whitespace, so wrapped lines compare."""
    return "".join(text.split())


def saved_popularity(workspace) -> str:
    """Fit the popularity model on the dashboard's split of the sample, save it where the workspace lists
    models, and return its sidebar label."""
    from fairaudit.data import load_sample, make_split
    from fairaudit.models import create_model
    from fairaudit.workspace import Workspace

    sample = load_sample()
    model = create_model("popularity").fit(sample, make_split(sample, "random", seed=0))
    space = Workspace(workspace)
    folder = space.model_dir("popularity", sample.fingerprint(), model.get_params())
    model.save(folder)
    return next(m.label for m in space.saved_models(sample.fingerprint()) if m.path == folder)


def test_audit_headline_is_on_the_page_and_opens_the_pdf(tmp_path):
    from playwright.sync_api import expect

    from fairaudit.audit import AuditResult
    from fairaudit.report import audit_findings

    workspace = tmp_path / "ws"
    label = saved_popularity(workspace)
    with dashboard(workspace, timeout_s=WAIT_CEILING_S) as url, browser() as chromium:
        page = new_page(chromium, url, timeout_ms=CEILING_MS)
        idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_role("combobox", name="Model", exact=True).wait_for()
        choose(page, "Model", label, scope=sidebar)
        idle(page)

        go(page, "Audit")
        page.get_by_role("heading", name="Findings", exact=True).wait_for()
        idle(page)
        headline = page.locator('[data-testid="stMain"] h4').first
        expect(headline).to_be_visible(timeout=CEILING_MS)
        on_page = headline.inner_text()
        expect(page.get_by_text("Covers every audited attribute").first).to_be_visible(timeout=CEILING_MS)
        assert not page.locator('[data-testid="stException"]').count()

        go(page, "Report")
        page.get_by_text("Include charts").click()  # text-only PDF: the check is about the summary
        idle(page)
        page.get_by_role("button", name="Build the PDF").click()
        page.get_by_text("Report ready").wait_for()
        assert not page.locator('[data-testid="stException"]').count()

    (pdf,) = workspace.rglob("audit.pdf")
    findings = audit_findings(AuditResult.read(pdf.parent))
    top = findings.table.iloc[0]
    assert top["model"] == label
    # The page's headline is the first finding of the folder the PDF was built from ...
    assert squeeze(top["sentence"]) in squeeze(on_page) and top["verdict"].upper() in on_page
    # ... and the PDF's executive summary opens with it.
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    summary = squeeze(text[text.index("Executive summary", text.index("Contents") + 200):])
    assert summary.index(squeeze(findings.headline)) < summary.index("Thresholdchecks")
    assert squeeze(findings.scope()) in summary
