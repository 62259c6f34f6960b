"""The dashboard in a real browser: ``streamlit run`` + Playwright driving Debian's Chromium.

Load the sample -> train two quick baselines -> audit -> compare -> explain, asserting on what
the page shows (numbers recomputed here with ``fairaudit``) and saving screenshots to
``bench/out/browser/`` (git-ignored). Skips cleanly without ``/usr/bin/chromium`` or Playwright.
"""

from __future__ import annotations

import pytest

from bench.bench_dashboard import CHART, CHROMIUM, ROOT, browser, choose, dashboard, go, idle, new_page, train
from tests.conftest import WAIT_CEILING_S

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} not installed"),
]
pytest.importorskip("playwright.sync_api")

SHOTS = ROOT / "bench" / "out" / "browser"
#: Every wait (page default, ``idle``, ``expect``) polls its condition up to this ceiling: timing
#: targets belong to ``bench/bench_dashboard.py``, and a busy machine may be many times slower.
CEILING_MS = WAIT_CEILING_S * 1000


def test_sample_to_explain_in_chromium(tmp_path):
    from playwright.sync_api import expect

    from fairaudit.data import load_sample, make_split
    from fairaudit.metrics import accuracy_metrics
    from fairaudit.models import load_model
    from fairaudit.workspace import Workspace

    SHOTS.mkdir(parents=True, exist_ok=True)
    workspace = tmp_path / "ws"
    sample = load_sample()
    with dashboard(workspace, timeout_s=WAIT_CEILING_S) as url, browser() as chromium:
        page = new_page(chromium, url, "data", timeout_ms=CEILING_MS)  # the app opens on the Audit page

        # Data: the bundled sample and its sizes.
        page.get_by_text("Current dataset: Sample data (bundled)").wait_for()
        page.get_by_text("Add a dataset").wait_for()
        idle(page)
        users = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text("Users", exact=True))
        expect(users).to_contain_text(f"{sample.summary()['n_users']:,}", use_inner_text=True, timeout=CEILING_MS)
        page.screenshot(path=str(SHOTS / "1_data.png"))

        # Model: two quick baselines trained in the background and saved in the workspace.
        train(page, "popularity")
        train(page, "itemknn")
        expect(page.get_by_text("Holdout quality @ 10", exact=True)).to_be_visible(timeout=CEILING_MS)  # the model card
        page.screenshot(path=str(SHOTS / "2_model.png"))
        saved = {m.kind: m for m in Workspace(workspace).saved_models()}
        assert set(saved) == {"popularity", "itemknn"}

        # Audit of the popularity model: the NDCG card shows the number fairaudit computes.
        choose(page, "Model", saved["popularity"].label, scope=page.locator('[data-testid="stSidebar"]'))
        page.locator('[data-testid="stMetric"]').filter(has_text="Kind").filter(has_text="popularity").wait_for()
        idle(page)
        go(page, "Audit")
        page.locator(CHART).first.wait_for()
        idle(page)
        model = load_model(saved["popularity"].path, sample)
        split = make_split(sample, "random", seed=0)
        ndcg = accuracy_metrics(model.recommend(split.test["user_id"].unique(), k=10), split.test, k=10)["ndcg"].mean()
        card = page.locator('[data-testid="stMetric"]').filter(has_text="NDCG@10")
        expect(card).to_contain_text(f"{ndcg:.3f}", use_inner_text=True, timeout=CEILING_MS)
        expect(page.get_by_text("NDCG@10 by gender").first).to_be_visible(timeout=CEILING_MS)
        page.screenshot(path=str(SHOTS / "3_audit.png"))

        # A slice change (add age band) draws its chart without re-auditing.
        before = page.locator(CHART).count()
        choose(page, "User attributes", "age_band", scope=page.locator('[data-testid="stSidebar"]'))
        page.wait_for_function(f"document.querySelectorAll('{CHART}').length > {before}")
        page.keyboard.press("Escape")
        idle(page)
        expect(page.get_by_text("NDCG@10 by age_band").first).to_be_visible(timeout=CEILING_MS)

        # Compare: popularity (baseline) vs item-kNN, with verdict sentences.
        go(page, "Compare")
        page.get_by_role("heading", name="Verdicts").wait_for()
        page.locator(CHART).first.wait_for()
        idle(page)
        verdict = page.get_by_text(f"{saved['itemknn'].label} ").filter(has_text="NDCG@10 gap").first
        expect(verdict).to_be_visible(timeout=CEILING_MS)
        page.screenshot(path=str(SHOTS / "4_compare.png"))

        # Explain: a user's history next to their top-10 list.
        go(page, "Explain")
        page.get_by_text("Top-10 recommendations").wait_for()
        expect(page.get_by_text("training interactions").first).to_be_visible(timeout=CEILING_MS)
        page.screenshot(path=str(SHOTS / "5_explain.png"))
        assert not page.locator('[data-testid="stException"]').count()
