"""The analyst's dashboard in Chromium: an audit on the first screen, training that never stalls
another session, uploads a newcomer cannot get wrong, a reload that keeps the session's data, and an
audit started from the Audit page that runs as a job (progress, Cancel, its findings at the end).

One ``streamlit run`` server for the module (fresh workspace and embedding cache), driven with
Playwright through Debian's Chromium; each browser context is its own Streamlit session. The waits
are conditions with generous ceilings: the timings live in ``bench/bench_dashboard.py``.
Skips cleanly without ``/usr/bin/chromium`` or Playwright.
"""

from __future__ import annotations

import os
import time

import pytest

from bench.bench_dashboard import (
    CHART,
    CHROMIUM,
    FINDINGS,
    ROOT,
    browser,
    choose,
    dashboard,
    idle,
    new_page,
    start_training,
)
from tests.conftest import WAIT_CEILING_S

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("dashboard_browser"),
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} not installed"),
]
pytest.importorskip("playwright.sync_api")

SHOTS = ROOT / "bench" / "out" / "browser"
CEILING_MS = WAIT_CEILING_S * 1000
DROP_ZONE = '[data-testid="stFileUploaderDropzoneInput"]'
TINY = "user_id,item_id,rating\n" + "".join(f"u{u},i{(u * 3 + j) % 12},4\n" for u in range(12) for j in range(5))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(url, workspace, chromium): one server with a fresh workspace and embedding cache."""
    folder = tmp_path_factory.mktemp("dashboard")
    patch = pytest.MonkeyPatch()
    patch.setenv("FAIRAUDIT_CACHE", str(folder / "cache"))  # the LLM job below has texts to encode
    try:
        with dashboard(folder / "ws", timeout_s=WAIT_CEILING_S) as url, browser() as chromium:
            yield url, folder / "ws", chromium
    finally:
        patch.undo()


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_CEILING_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def no_traceback(page) -> None:
    assert not page.locator('[data-testid="stException"]').count()
    assert "Traceback" not in page.inner_text("body")


def test_the_first_screen_shows_an_audit_without_training(app):
    url, workspace, chromium = app
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(chromium, url, timeout_ms=CEILING_MS)
    page.get_by_role("heading", name="Audit", exact=True).wait_for()
    page.get_by_role("heading", name=FINDINGS, exact=True).wait_for()
    page.locator(CHART).first.wait_for()
    idle(page)
    model_box = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model", exact=True)
    assert "llm-quick · sample_data · bundled" in model_box.aria_snapshot()  # the bundled LLM, audited
    from fairaudit.workspace import list_jobs

    # Nothing was trained (and, while sample_data/audits matches the auditing code, nothing audited either).
    assert not (workspace / "models").exists() and not [j for j in list_jobs(workspace) if j.spec["job"] == "train"]
    no_traceback(page)
    page.screenshot(path=str(SHOTS / "dashboard_first_screen.png"))
    page.close()


def _drop(page, files: list[tuple[str, bytes]]) -> None:
    page.locator(DROP_ZONE).set_input_files(
        [{"name": name, "mimeType": "application/octet-stream", "buffer": content} for name, content in files])


BAD_UPLOADS = {
    "empty": ([("plays.csv", b"")], "'plays.csv' is empty."),
    "binary": ([("plays.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)], "it looks like a PNG image"),
    "wrong columns": ([("plays.csv", b"who,what\n1,2\n")], "required column 'user_id' not found in 'plays.csv'"),
    "wrong encoding": ([("plays.csv", "user_id,item_id\nJosé,1\n".encode("utf-16-le"))], "Choose utf-16 under"),
    "missing item column": ([("plays.csv", b"user_id,rating\n1,5\n")], "required column 'item_id' not found"),
    "lone MovieLens file": ([("u.data", b"1\t2\t5\t881250949\n")], "MovieLens 100K needs u.data, u.user, u.item"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_every_bad_upload_gives_its_message_and_no_traceback(app, case):
    from playwright.sync_api import expect

    url, _, chromium = app
    files, message = BAD_UPLOADS[case]
    page = new_page(chromium, url, "data", timeout_ms=CEILING_MS)
    page.get_by_text("Add a dataset").wait_for()
    idle(page)
    _drop(page, files)
    alert = page.locator('[data-testid="stAlert"]', has_text=message)
    expect(alert.first).to_be_visible(timeout=CEILING_MS)
    idle(page)
    no_traceback(page)
    if case not in ("wrong columns", "missing item column"):  # the file itself is refused: nothing else drawn
        assert not page.get_by_text("Column mapping").count() and not page.get_by_text("What each file holds").count()
    page.close()


def test_the_encoding_is_a_visible_option(app):
    from playwright.sync_api import expect

    url, _, chromium = app
    page = new_page(chromium, url, "data", timeout_ms=CEILING_MS)
    page.get_by_text("Add a dataset").wait_for()
    idle(page)
    page.get_by_role("combobox", name="Text encoding").click()
    page.get_by_role("option", name="utf-8", exact=True).click()
    idle(page)
    _drop(page, [("plays.csv", "user_id,item_id\nJosé,1\n".encode("latin-1"))])
    expect(page.locator('[data-testid="stAlert"]', has_text="is not valid utf-8 text").first).to_be_visible(
        timeout=CEILING_MS)
    expect(page.locator('[data-testid="stAlert"]', has_text="Text encoding").first).to_be_visible(timeout=CEILING_MS)
    no_traceback(page)
    page.close()


def test_a_reload_keeps_the_sessions_datasets(app):
    from playwright.sync_api import expect

    url, _, chromium = app
    page = new_page(chromium, url, "data", timeout_ms=CEILING_MS)
    page.get_by_text("Add a dataset").wait_for()
    idle(page)
    _drop(page, [("plays.csv", TINY.encode())])
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("Current dataset: upload · plays.csv").wait_for()
    idle(page)
    assert "session=" in page.url
    page.reload()
    page.get_by_text("Add a dataset").wait_for()
    idle(page)
    page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Dataset", exact=True).click()
    expect(page.get_by_role("option", name="upload · plays.csv", exact=True)).to_be_visible(timeout=CEILING_MS)
    no_traceback(page)
    other = new_page(chromium, url, "data", timeout_ms=CEILING_MS)  # another browser: its own session
    other.get_by_text("Add a dataset").wait_for()
    idle(other)
    other.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Dataset", exact=True).click()
    assert not other.get_by_role("option", name="upload · plays.csv", exact=True).count()
    other.close()
    page.close()


def test_a_training_job_never_stalls_a_second_session(app):
    from playwright.sync_api import expect

    from fairaudit.workspace import preset_params, running_jobs

    url, workspace, chromium = app
    trainer = new_page(chromium, url, "model", timeout_ms=CEILING_MS)
    trainer.get_by_role("heading", name="Model", exact=True).wait_for()
    idle(trainer)
    start_training(trainer, "llm", epochs=100_000)  # long enough to be running throughout
    trainer.get_by_text("Training llm: ").first.wait_for()
    (job,) = running_jobs(workspace)
    expected = {**preset_params("llm", "quick"), "epochs": 100_000}  # the preset, with the one field edited
    assert {k: v for k, v in job.spec["params"].items() if k in expected and not isinstance(v, (list, tuple))} == {
        k: v for k, v in expected.items() if not isinstance(v, (list, tuple))}
    # A second session loads pages while the job runs in its worker process.
    # (The Audit page during a job, and the seconds it all takes, are measured by bench/bench_dashboard.py.)
    second = new_page(chromium, url, "data", timeout_ms=CEILING_MS)
    second.get_by_text("Current dataset").first.wait_for()
    assert job.status == "running", job.error  # the page was served during the job, not after it
    no_traceback(second)
    second.close()
    # Progress is live (phase n/N or epochs) and Cancel ends the worker wherever it is.
    expect(trainer.locator('[data-testid="stProgress"]').first).to_contain_text("Training llm: ", timeout=CEILING_MS)
    trainer.screenshot(path=str(SHOTS / "dashboard_training.png"))
    trainer.get_by_role("button", name="Cancel training").click()
    trainer.locator('[data-testid="stAlert"]', has_text="Training stopped").wait_for()
    assert job.status == "cancelled" and not (workspace / "models").exists()
    # The job list survives a reload.
    trainer.reload()
    trainer.get_by_text("Finished jobs of this session (1)").wait_for()
    no_traceback(trainer)
    trainer.close()


def test_an_audit_runs_as_a_job_from_the_audit_page_and_cancel_stops_it(app):
    """A new audit configuration starts a job in a worker process: its progress is drawn, Cancel ends the worker,
    and a job run to the end brings its findings onto the page."""
    from fairaudit.data import load_sample
    from fairaudit.workspace import Workspace, list_jobs

    url, workspace, chromium = app
    space = Workspace.from_env({"FAIRAUDIT_WORKSPACE": str(workspace)})  # with the sample's bundled models
    label = next(m.label for m in space.saved_models(load_sample().fingerprint())
                 if m.path.name.startswith("popularity"))  # fmt: skip
    page = new_page(chromium, url, timeout_ms=CEILING_MS)
    page.get_by_role("heading", name=FINDINGS, exact=True).wait_for()
    idle(page)
    choose(page, "Model", label, scope=page.locator('[data-testid="stSidebar"]'))
    # Wait for this model's audit on the page (bundled, or a job when the bundle is stale for the auditing code):
    # idle() right after the choice can return before the server's run began, and a headline or a progress bar
    # of the earlier page would then be taken for the new audit's.
    page.locator('[data-testid="stCaptionContainer"]', has_text=f"Model {label} ·").wait_for()
    idle(page)
    _wait_for(lambda: not [j for j in list_jobs(workspace) if j.status == "running"], "earlier jobs")
    earlier = {job.id for job in list_jobs(workspace)}

    def audit_jobs(rounds: int):
        return [job for job in list_jobs(workspace) if job.spec.get("job") == "audit" and job.id not in earlier
                and job.spec["config"]["bootstrap_rounds"] == rounds]  # fmt: skip

    page.get_by_text("Audit settings").click()
    rounds = page.get_by_label("Bootstrap rounds", exact=True)
    rounds.fill("5000")  # a new configuration, and long enough to cancel
    rounds.press("Enter")
    _wait_for(lambda: audit_jobs(5000), "the audit job")
    page.locator('[data-testid="stProgress"]', has_text="Audit: ").first.wait_for()
    (job,) = audit_jobs(5000)  # one job, however often the page ran meanwhile
    assert job.status == "running" and job.spec["pid"] != os.getpid()  # in a worker process
    page.get_by_role("button", name="Cancel the audit").click()
    page.locator('[data-testid="stAlert"]', has_text="The audit was stopped").wait_for()
    assert job.status == "cancelled" and not job.out_dir.exists()
    no_traceback(page)

    rounds = page.get_by_label("Bootstrap rounds", exact=True)
    rounds.fill("100")
    rounds.press("Enter")
    _wait_for(lambda: [j for j in audit_jobs(100) if j.status != "running"], "the audit of 100 rounds")
    page.get_by_role("heading", name=FINDINGS, exact=True).wait_for()
    idle(page)
    done = audit_jobs(100)
    assert len(done) == 1 and done[0].status == "done" and (done[0].out_dir / "audit.json").is_file()
    assert page.get_by_text("100 bootstrap rounds").count()
    no_traceback(page)
    page.close()
