"""Chart export of the report: a busy machine gets the same charts as a quiet one (retries, then a note)."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from fairaudit.report import _charts


def _flaky(failures: int, calls: list):
    def to_image(self, **kwargs):
        calls.append(kwargs)
        if len(calls) <= failures:
            raise RuntimeError("JavascriptError: ReferenceError: kaleido_scopes is not defined")
        return b"png"

    return to_image


def test_export_retries_until_kaleido_is_ready(monkeypatch):
    calls: list = []
    monkeypatch.setattr(go.Figure, "to_image", _flaky(2, calls))
    monkeypatch.setattr(_charts.time, "sleep", lambda _s: None)
    renderer = _charts.ChartRenderer([go.Figure()])
    assert renderer._export(go.Figure()) == b"png"
    assert renderer.error is None and len(calls) == 3


def test_export_gives_up_after_the_ceiling_and_says_why(monkeypatch):
    calls: list = []
    clock = iter(range(0, 10_000, 7))  # every reading of the clock is 7 s later
    monkeypatch.setattr(go.Figure, "to_image", _flaky(10**6, calls))
    monkeypatch.setattr(_charts.time, "sleep", lambda _s: None)
    monkeypatch.setattr(_charts.time, "monotonic", lambda: float(next(clock)))
    renderer = _charts.ChartRenderer([go.Figure()])
    assert renderer._export(go.Figure()) is None
    assert "static chart export failed" in renderer.error and "kaleido_scopes" in renderer.error
    assert 1 < len(calls) <= _charts.EXPORT_RETRY_S / 7 + 1


@pytest.mark.parametrize("earlier", ["report stopped", "static chart export failed (earlier)"])
def test_no_retry_once_the_report_gave_up(monkeypatch, earlier):
    calls: list = []
    monkeypatch.setattr(go.Figure, "to_image", _flaky(10**6, calls))
    renderer = _charts.ChartRenderer([go.Figure()])
    renderer.error = earlier
    assert renderer._export(go.Figure()) is None and renderer.error == earlier and len(calls) == 1
