"""Dashboard benchmark, in a real browser: first finding, page load -> first audit chart, a slice change,
and a second session's page latency while an LLM trains.

Starts ``streamlit run app.py`` on a free port with a fresh workspace and, as ``make dashboard`` does,
runs its first screen once through Streamlit's script health check (``tools/warm_dashboard.py``: the
server's imports, the sample and its bundled audit are loaded before the first browser arrives; the
time from start to ready is printed). Then, in fresh browser sessions:

- **first finding**: from ``page.goto(<app>)`` (the Audit page of the bundled sample and its ready
  models: nothing trained) until the "Findings" heading is drawn, in the server's first browser
  session and then cached. Target <= 3 s (the first-chart target).

Then trains two quick baselines through the UI (so the server holds them in its model cache) and
measures:

- **first chart**: from ``page.goto(<app>/audit)`` in a fresh browser session (the browser boots
  Streamlit's frontend) to the first plotly chart drawn, with the model cached and (a) the audit not
  yet computed for this configuration ("cold audit") and (b) the audit cached by an earlier session
  ("cached audit"); the same in a new tab of a browser that has opened the dashboard before (its HTTP
  cache holds Streamlit's scripts: an analyst's usual case); and from clicking *Audit* in the sidebar of
  a running session. Target <= 3 s (for the fresh browser profile).
- **slice change**: adding a user attribute in the sidebar until its charts are drawn (the audit is
  only filtered). Target <= 1 s.
- **second session during training**: while one session trains an LLM in a worker process (fresh
  embedding cache, so the item texts are encoded first; nice 19 in the server's session), a new session
  loads the Data page (until "Current dataset" is drawn) and the Audit page (until "Findings"). Target <= 3 s.

Every job (training, audits, PDFs) runs in a worker process here, as in production: the server is
started without ``FAIRAUDIT_INLINE_JOBS``, which the AppTest suite sets.

Screenshots of every page go to ``--shots``.

Run: ``python -m bench.bench_dashboard [--repeats 5] [--shots DIR]``. Needs Debian's Chromium
(``/usr/bin/chromium``) and the ``playwright`` package (never ``playwright install``).
The same helpers drive ``tests/test_browser.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from tools.warm_dashboard import warm

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: Streamlit drops content below the viewport from full-page screenshots; a tall viewport keeps it.
VIEWPORT = {"width": 1400, "height": 2400}
TARGET_FIRST_CHART_S, TARGET_SLICE_S = 3.0, 1.0
CHART = '[data-testid="stPlotlyChart"]'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dashboard(workspace: Path, *, timeout_s: float = 60) -> Iterator[str]:
    """Run ``streamlit run app.py`` headless on a free port, then its first screen once through Streamlit's
    script health check, as ``make dashboard`` does (``tools/warm_dashboard.py``); yields its base URL."""
    port = free_port()
    env = {**os.environ, "FAIRAUDIT_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("FAIRAUDIT_INLINE_JOBS", None)  # every job in a worker process, as in production (the AppTest suite runs some inline)
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    log = open(workspace.parent / f"streamlit-{port}.log", "wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not become healthy; see {log.name}")
            time.sleep(0.2)
        try:  # as `make dashboard` does; a failed warm-up only costs the first browser session the first run
            warm(url, timeout_s=max(deadline - time.monotonic(), 5))
        except RuntimeError as err:
            print(f"warm-up failed: {err}", file=sys.stderr, flush=True)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextmanager
def browser() -> Iterator[object]:
    """Debian's Chromium through Playwright's sync API (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(chromium, url: str, path: str = "", *, timeout_ms: float = 120_000):
    """A fresh page at ``url/path`` whose waits (the helpers below included) give up after ``timeout_ms``."""
    page = chromium.new_page(viewport=VIEWPORT)
    page.set_default_timeout(timeout_ms)
    page.goto(f"{url}/{path}")
    return page


def idle(page, timeout_ms: float | None = None) -> None:
    """Wait until Streamlit has finished the current script run (its status widget is gone).

    ``timeout_ms`` defaults to the page's default timeout (see :func:`new_page`)."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout_ms)


def go(page, title: str) -> None:
    """Switch page through the sidebar navigation (keeps the browser session and its state)."""
    page.keyboard.press("Escape")  # close any open drop-down, which makes the rest of the page inert
    page.locator('[data-testid="stSidebarNavLink"]', has_text=title).first.click()
    page.get_by_role("heading", name=title, exact=True).wait_for()
    idle(page)


def choose(page, label: str, option: str, *, scope=None) -> None:
    """Pick ``option`` in the select box or multiselect labelled ``label``."""
    (scope or page).get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def train(page, kind: str) -> None:
    start_training(page, kind)
    page.locator('[data-testid="stAlert"]', has_text=f"Trained and saved {kind}-").wait_for()
    idle(page)


def start_training(page, kind: str, *, epochs: int | None = None) -> None:
    """Open the Model page, pick ``kind`` (and ``epochs`` under Advanced) and click Train."""
    go(page, "Model")
    choose(page, "Model kind", kind)
    idle(page)
    if epochs is not None:
        page.get_by_text("Advanced: every hyper-parameter").click()
        box = page.get_by_label("epochs", exact=True)
        box.fill(str(epochs))
        box.press("Enter")
        idle(page)
    page.get_by_role("button", name="Train", exact=True).click()


FINDINGS = "Findings"


def time_first_finding(chromium, url: str) -> float:
    """Seconds from opening the app in a fresh session (its first screen, the Audit page) until the
    heading of its findings is drawn."""
    page = chromium.new_page(viewport=VIEWPORT)
    page.set_default_timeout(600_000)
    start = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name=FINDINGS, exact=True).wait_for()
    elapsed = time.perf_counter() - start
    idle(page)
    page.close()
    return elapsed


def time_page_during_job(chromium, url: str, path: str, marker) -> float:
    """Seconds for a fresh session to draw ``marker(page)`` on ``url/path`` (while another session trains)."""
    page = chromium.new_page(viewport=VIEWPORT)
    page.set_default_timeout(600_000)
    start = time.perf_counter()
    page.goto(f"{url}/{path}")
    marker(page).wait_for()
    elapsed = time.perf_counter() - start
    page.close()
    return elapsed


def screenshots(page, folder: Path) -> None:
    """A screenshot of every page (every sidebar link, in navigation order), each opened by its address."""
    links = page.locator('[data-testid="stSidebarNavLink"]')
    addresses = [links.nth(i).get_attribute("href") for i in range(links.count())]
    for i, address in enumerate(addresses, 1):
        page.goto(address)
        page.locator('[data-testid="stMain"] h1').first.wait_for()
        idle(page)
        name = urllib.parse.urlparse(address).path.strip("/") or "first_screen"  # the default page is at "/"
        page.screenshot(path=str(folder / f"{i}_{name}.png"))


def charts(page) -> int:
    return page.locator(CHART).count()


def time_first_chart(chromium, url: str, *, context=None) -> tuple[float, float]:
    """Seconds from navigating a fresh session to ``/audit`` until its first chart is visible, and
    the CPU seconds the page's renderer main thread spent meanwhile (Chrome's ``TaskDuration``).

    Without ``context`` the session opens in a fresh browser profile (nothing cached); with one, in a new
    tab of that browser context, whose HTTP cache holds Streamlit's scripts from earlier visits."""
    page = context.new_page() if context else chromium.new_page(viewport=VIEWPORT)
    page.set_default_timeout(120_000)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    start = time.perf_counter()
    page.goto(f"{url}/audit")
    page.locator(CHART).first.wait_for(state="visible")
    elapsed = time.perf_counter() - start
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    idle(page)
    page.close()
    return elapsed, metrics["TaskDuration"]


def time_navigation(page) -> float:
    """Seconds from clicking Audit in the sidebar (coming from Data) until its first chart is visible."""
    go(page, "Data")
    start = time.perf_counter()
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Audit").first.click()
    page.locator(CHART).first.wait_for(state="visible")
    elapsed = time.perf_counter() - start
    idle(page)
    return elapsed


def time_slice_change(page, attribute: str) -> float:
    """Seconds from adding ``attribute`` in the sidebar until the page has redrawn with its charts."""
    before = charts(page)
    start = time.perf_counter()
    choose(page, "User attributes", attribute, scope=page.locator('[data-testid="stSidebar"]'))
    wait_for_charts(page, f"> {before}")
    elapsed = time.perf_counter() - start
    page.keyboard.press("Escape")
    return elapsed


def wait_for_charts(page, condition: str) -> None:
    """Wait until the chart count satisfies ``condition`` (e.g. ``'> 5'``) and the run has finished."""
    page.wait_for_function(f"document.querySelectorAll('{CHART}').length {condition}")
    idle(page)


def remove_attribute(page, attribute: str) -> None:
    before = charts(page)
    page.locator('[data-testid="stSidebar"]').get_by_role("button", name=f"Remove {attribute}").click()
    wait_for_charts(page, f"< {before}")


def server_script_s(workspace: Path, repeats: int) -> list[float]:
    """Seconds the Audit page's script takes for a new session with warm caches (AppTest, no browser)."""
    from streamlit.testing.v1 import AppTest

    os.environ["FAIRAUDIT_WORKSPACE"] = str(workspace)
    warm = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    warm.run()
    warm.switch_page("pages/audit.py").run()  # audits the sidebar's model into this process's cache
    times = []
    for _ in range(repeats):
        session = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        session.run()
        session.switch_page("pages/audit.py")
        start = time.perf_counter()
        session.run()
        times.append(time.perf_counter() - start)
        assert session.get("plotly_chart"), "the Audit page drew no chart"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each measurement")
    parser.add_argument("--shots", type=Path, default=ROOT / "bench" / "out", help="folder for screenshots")
    parser.add_argument("--first-screen-only", action="store_true",
                        help="only the first finding, the second session during training and the screenshots")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "ws"
    os.environ["FAIRAUDIT_CACHE"] = str(workspace.parent / "cache")  # fresh: the LLM job encodes item texts
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()}")
    started = time.perf_counter()
    with ExitStack() as stack:
        url = stack.enter_context(dashboard(workspace))
        report("server started and its first screen run once (make dashboard's warm-up) (s)",
               [time.perf_counter() - started])
        chromium = stack.enter_context(browser())
        # The first screen: the Audit page of the bundled sample and its ready models (nothing trained).
        first_findings = [time_first_finding(chromium, url) for _ in range(1 + args.repeats)]
        report("first finding, fresh server (warmed as by make dashboard), first browser session (s)", first_findings[:1])
        report("first finding, cached audit (s, median)", first_findings[1:])
        # The same page loads without a job, then while an LLM trains (worker process, fresh embedding
        # cache: encoding first): on a shared machine the ratio tells the job's share from the machine's.
        data_alone, audit_alone = [], []
        for _ in range(args.repeats):
            data_alone.append(time_page_during_job(chromium, url, "data", lambda p: p.get_by_text("Current dataset").first))
            audit_alone.append(time_page_during_job(chromium, url, "audit",
                                                    lambda p: p.get_by_role("heading", name=FINDINGS, exact=True)))
        print(f"load {os.getloadavg()}")
        report("fresh session, no job running: Data page (s, median)", data_alone)
        report("fresh session, no job running: Audit page to Findings (s, median)", audit_alone)
        trainer = new_page(chromium, url, "model")
        start_training(trainer, "llm", epochs=100_000)
        trainer.get_by_text("Training llm: ").first.wait_for()
        data_during, audit_during, phases = [], [], []
        for _ in range(args.repeats):
            data_during.append(time_page_during_job(chromium, url, "data",
                                                    lambda p: p.get_by_text("Current dataset").first))
            audit_during.append(time_page_during_job(chromium, url, "audit",
                                                     lambda p: p.get_by_role("heading", name=FINDINGS, exact=True)))
            phases.append(trainer.locator('[data-testid="stProgress"]').first.inner_text().splitlines()[0])
        trainer.get_by_role("button", name="Cancel training").click()
        trainer.locator('[data-testid="stAlert"]', has_text="Training stopped").wait_for()
        trainer.close()
        print(f"training phases seen by the second sessions: {phases}; load {os.getloadavg()}")
        report("second session during LLM training: Data page (s, median)", data_during)
        report("second session during LLM training: Audit page to Findings (s, median)", audit_during)
        print(f"during / without the job (medians): Data page {statistics.median(data_during) / statistics.median(data_alone):.2f}, "
              f"Audit page {statistics.median(audit_during) / statistics.median(audit_alone):.2f}")
        page = new_page(chromium, url, "audit")
        page.get_by_role("heading", name=FINDINGS, exact=True).wait_for()
        idle(page)
        screenshots(page, args.shots)
        page.close()
        if args.first_screen_only:
            return
        # The earlier measurements, on two quick baselines trained through the UI.
        page = new_page(chromium, url, "data")
        page.get_by_text("Current dataset").wait_for()
        for kind in ("popularity", "itemknn"):
            train(page, kind)
        page.close()
        cold = [time_first_chart(chromium, url)]  # first audit of this model: computed in the session
        cached = [time_first_chart(chromium, url) for _ in range(args.repeats)]
        report("first chart, cold audit (s)", [wall for wall, _ in cold])
        report("first chart, cached audit (s, median)", [wall for wall, _ in cached])
        report("  of which browser main-thread CPU (s, median)", [cpu for _, cpu in cached])
        returning = chromium.new_context(viewport=VIEWPORT)
        time_first_chart(chromium, url, context=returning)  # this browser's first visit fills its cache
        again = [time_first_chart(chromium, url, context=returning) for _ in range(args.repeats)]
        returning.close()
        report("first chart, new session in a browser that opened the dashboard before (s, median)",
               [wall for wall, _ in again])
        page = new_page(chromium, url, "audit")
        page.locator(CHART).first.wait_for()
        idle(page)
        report("first chart after clicking Audit in a running session (s, median)",
               [time_navigation(page) for _ in range(args.repeats)])
        slices = []
        for _ in range(args.repeats):
            slices.append(time_slice_change(page, "age_band"))
            remove_attribute(page, "age_band")
        report("slice change (s, median)", slices)
        page.screenshot(path=str(args.shots / "bench_audit.png"))
    report("Audit page script, new session, warm caches (s, median; no browser)", server_script_s(workspace, args.repeats))
    print(f"load at the end {os.getloadavg()}")
    print(f"targets: first chart <= {TARGET_FIRST_CHART_S} s, slice change <= {TARGET_SLICE_S} s")


def report(name: str, runs: list[float]) -> None:
    """Print one measurement as soon as it is taken: its median and every run."""
    print(f"{name}: {statistics.median(runs):.2f}  (runs: {[round(x, 2) for x in runs]})", flush=True)


if __name__ == "__main__":
    main()
