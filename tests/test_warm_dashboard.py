"""``tools/warm_dashboard.py``: ``make dashboard`` runs the first screen once when the server answers.

A stub server stands in for Streamlit's two endpoints (the real ones are exercised by every browser
test: ``bench.bench_dashboard.dashboard`` warms each server it starts).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools import warm_dashboard
from tools.warm_dashboard import HEALTH, SCRIPT_HEALTH, main, warm


def stub(script_status: int, script_body: bytes, *, healthy_after: int = 0, script_delay_s: float = 0.0):
    """A server whose health endpoint fails ``healthy_after`` times, and whose script check answers as given
    after ``script_delay_s``."""
    calls = {"health": 0, "script": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == HEALTH:
                calls["health"] += 1
                status, body = (503, b"starting") if calls["health"] <= healthy_after else (200, b"ok")
            elif self.path == SCRIPT_HEALTH:
                calls["script"] += 1
                time.sleep(script_delay_s)
                status, body = script_status, script_body
            else:
                status, body = 404, b""
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", calls


def test_waits_for_the_server_then_runs_the_script_once():
    server, url, calls = stub(200, b"ok", healthy_after=2)
    try:
        assert warm(url, timeout_s=30) >= 0
    finally:
        server.shutdown()
    assert calls == {"health": 3, "script": 1}


@pytest.mark.parametrize("status, body, says", [(503, b"error", "503: error"), (404, b"", "404"),
                                                (200, b"timeout", "timeout")])  # fmt: skip
def test_a_failing_first_screen_is_reported_with_exit_1(capsys, status, body, says):
    server, url, _ = stub(status, body)
    try:
        assert main([url, "--timeout", "30"]) == 1
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert "first screen did not run" in err and says in err


def test_a_server_that_never_answers_times_out():
    server, url, calls = stub(200, b"ok", healthy_after=10**9)
    try:
        with pytest.raises(RuntimeError, match="did not answer within 1 s"):
            warm(url, timeout_s=1)
    finally:
        server.shutdown()
    assert calls["script"] == 0


def test_a_script_check_without_answer_is_reported_not_awaited(monkeypatch):
    monkeypatch.setattr(warm_dashboard, "SCRIPT_CHECK_TIMEOUT_S", 0.5)
    server, url, calls = stub(200, b"ok", script_delay_s=3)
    try:
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="no answer"):
            warm(url, timeout_s=30)
        assert time.monotonic() - start < 3
    finally:
        server.shutdown()
    assert calls["script"] == 1
