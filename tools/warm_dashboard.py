"""Run the dashboard's first screen once as soon as its server answers (``make dashboard`` starts this).

Streamlit's script health check (``server.scriptHealthCheckEnabled`` in ``.streamlit/config.toml``) runs
``app.py`` in a throw-away session: the default page, the Audit page of the bundled sample, is drawn once
in the server. Its imports, the sample and the bundled audit are then loaded before the first browser
arrives, and an app that cannot run fails here, in the terminal, instead of in the first browser. Where
the default model's audit is not bundled (models trained in this workspace), its audit job starts then,
in the worker, and every session finds it.
Standard library only: it runs beside the server, not inside it.

Run: ``python tools/warm_dashboard.py http://127.0.0.1:8501 [--timeout 600]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request

HEALTH, SCRIPT_HEALTH = "/_stcore/health", "/_stcore/script-health-check"


#: Seconds to wait for the script check's answer: Streamlit gives up on the run after 60 s and answers 503.
SCRIPT_CHECK_TIMEOUT_S = 90.0


def warm(url: str, *, timeout_s: float = 600.0) -> float:
    """Wait until the server at ``url`` answers, then run its script once; the seconds that took.

    Raises ``RuntimeError`` when the server never answers, the script fails (Streamlit answers 503) or
    the check gets no answer within ``SCRIPT_CHECK_TIMEOUT_S`` (seen once in ~40 starts, under load).
    """
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url + HEALTH, timeout=5) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard at {url} did not answer within {timeout_s:.0f} s")
        time.sleep(0.25)
    try:
        with urllib.request.urlopen(url + SCRIPT_HEALTH, timeout=SCRIPT_CHECK_TIMEOUT_S) as reply:
            answer = reply.read().decode(errors="replace")
    except urllib.error.HTTPError as err:  # 503: the script raised; 404: the check is not enabled
        raise RuntimeError(f"the dashboard's first screen did not run ({err.code}: "
                           f"{err.read().decode(errors='replace')}); see the server's output") from err  # fmt: skip
    except OSError as err:  # no answer in time: the server still serves; its first browser runs the page itself
        raise RuntimeError(f"the dashboard's first screen did not run (no answer: {err}); "
                           "the first browser session will run it") from err  # fmt: skip
    if answer.strip() != "ok":
        raise RuntimeError(f"the dashboard's first screen did not run ({answer.strip()}); see the server's output")
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the dashboard's base URL, e.g. http://127.0.0.1:8501")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the server and the run")
    args = parser.parse_args(argv)
    try:
        seconds = warm(args.url.rstrip("/"), timeout_s=args.timeout)
    except RuntimeError as err:
        print(f"FairAudit: {err}", file=sys.stderr)
        return 1
    print(f"FairAudit: the first screen is ready at {args.url} ({seconds:.1f} s after the server was started)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
