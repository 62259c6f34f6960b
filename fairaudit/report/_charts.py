"""Static PNGs of the dashboard's plotly figures, through kaleido and the system Chromium.

Charts render in a background thread, in the order the report places them, while the report lays
out its tables: Chromium works in its own process, so on two cores export and layout overlap.
"""

from __future__ import annotations

import threading
import time
import warnings
from types import TracebackType
from typing import Sequence

import plotly.graph_objects as go

#: Pixel size of exported charts (drawn at the text width of the page).
WIDTH, HEIGHT_DEFAULT, SCALE = 900, 450, 1.0
#: How long one chart's export is retried before the report gives up on charts. On a busy machine
#: Chromium can answer before kaleido's page script has loaded ("kaleido_scopes is not defined");
#: a retry a moment later succeeds, so a slow machine gets the same PDF as a quiet one.
EXPORT_RETRY_S = 60.0

# Reports built at the same time (two dashboard sessions) share one kaleido server: the last one
# out stops it, and only if a report started it.
_SERVER_LOCK = threading.Lock()
#: kaleido's sync server takes one export at a time.
_EXPORT_LOCK = threading.Lock()
_server_users = 0
_server_owned = False


class ChartRenderer:
    """Context manager exporting a list of figures to PNG in a background thread.

    One kaleido server serves the whole report and is stopped at the end (a server someone else
    started is reused and left running; concurrent reports share one and the last one stops it). :meth:`png` returns the i-th
    figure's PNG, waiting for it if needed, or ``None`` when export is unavailable, with
    :attr:`error` saying why, so the report still builds with a note in place of the chart.
    ``enabled=False`` gives a text-only report.
    """

    def __init__(self, figures: Sequence[go.Figure | None], *, enabled: bool = True) -> None:
        self.error: str | None = None if enabled else "charts were not requested for this report"
        self._figures = list(figures)
        self._images: list[bytes | None] = [None] * len(self._figures)
        self._ready = [threading.Event() for _ in self._figures]
        self._started = False
        self._worker: threading.Thread | None = None

    def __enter__(self) -> "ChartRenderer":
        global _server_users, _server_owned
        if self.error is None and any(f is not None for f in self._figures):
            with _SERVER_LOCK:
                try:
                    import kaleido
                    from kaleido._sync_server import GlobalKaleidoServer

                    if _server_users == 0 and not GlobalKaleidoServer().is_running():
                        kaleido.start_sync_server(silence_warnings=True)
                        _server_owned = True
                    _server_users += 1
                    self._started = True
                except Exception as err:  # noqa: BLE001 - any failure to start means "no charts", noted in the PDF
                    self.error = f"static chart export unavailable ({type(err).__name__}: {err})"
        if self.error is None:
            self._worker = threading.Thread(target=self._render_all, daemon=True)
            self._worker.start()
        else:
            for event in self._ready:
                event.set()
        return self

    def _render_all(self) -> None:
        for index, fig in enumerate(self._figures):
            if fig is not None and self.error is None:
                self._images[index] = self._export(fig)
            self._ready[index].set()

    def _export(self, fig: go.Figure) -> bytes | None:
        """One chart's PNG, retried with back-off for up to :data:`EXPORT_RETRY_S` seconds; ``None``
        (and :attr:`error` set, so later charts are skipped) when it still fails."""
        height = int(fig.layout.height or HEIGHT_DEFAULT)
        width = int(fig.layout.width or WIDTH)
        deadline, pause = time.monotonic() + EXPORT_RETRY_S, 0.25
        while True:
            try:
                with _EXPORT_LOCK, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return fig.to_image(format="png", width=width, height=height, scale=SCALE)
            except Exception as err:  # noqa: BLE001 - kaleido raises many types; the report notes it and goes on
                if self.error is not None or time.monotonic() + pause > deadline:
                    self.error = self.error or f"static chart export failed ({type(err).__name__}: {err})"
                    return None
                time.sleep(pause)
                pause = min(2 * pause, 4.0)

    def png(self, index: int) -> bytes | None:
        """PNG bytes of figure ``index`` (waits until it is rendered), or ``None``."""
        self._ready[index].wait()
        return self._images[index]

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        global _server_users, _server_owned
        if self._worker is not None:
            self.error = self.error or "report stopped"  # lets the worker finish quickly after a failure
            self._worker.join()
        if self._started:
            with _SERVER_LOCK:
                _server_users -= 1
                if _server_users == 0 and _server_owned:
                    import kaleido

                    kaleido.stop_sync_server(silence_warnings=True)
                    _server_owned = False
