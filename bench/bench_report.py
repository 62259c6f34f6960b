"""Report benchmark: the audit PDF of a two-model audit of the bundled sample data.

Audits a popularity and an item-kNN model on ``sample_data/`` with the real audit engine
(1,000 bootstrap rounds; not timed against the target), writes the audit folder, then times
``build_report`` end to end — reading the folder, threshold checks and ranked findings, every chart
exported through kaleido/Chromium, layout and PDF output. Target: <= 15 s. Also times
``audit_findings`` alone (what the Audit page and the PDF's summary open with) and counts the findings.
Run: ``python -m bench.bench_report [--rounds N] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader

from fairaudit.audit import AuditConfig, AuditResult, run_audit, write_audit
from fairaudit.compare import add_comparison
from fairaudit.data import load_sample, make_split
from fairaudit.models import create_model
from fairaudit.report import audit_findings, build_report

TARGET_S = 15.0


def make_audit(folder: Path, rounds: int) -> float:
    """Fit two models on the sample data, audit and compare them, write the folder; returns seconds taken."""
    t0 = time.perf_counter()
    dataset = load_sample()
    split = make_split(dataset, "random", seed=0)
    models = {kind: create_model(kind).fit(dataset, split) for kind in ("popularity", "itemknn")}
    write_audit(add_comparison(run_audit(dataset, split, models, AuditConfig(bootstrap_rounds=rounds))), folder)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds of the audit")
    parser.add_argument("--keep", type=Path, default=None, help="keep the audit folder and PDF here")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    audit_s = make_audit(folder / "audit", args.rounds)
    result = AuditResult.read(folder / "audit")
    t0 = time.perf_counter()
    findings = audit_findings(result)
    findings_s = time.perf_counter() - t0
    timings, load = [], os.getloadavg()[0]
    for paper in ("A4", "Letter"):
        t0, c0 = time.perf_counter(), time.process_time()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pdf = build_report(folder / "audit", folder / f"audit-{paper}.pdf", paper=paper, date=dt.date(2026, 1, 1))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        chromium = (children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime)
        timings.append((paper, time.perf_counter() - t0, time.process_time() - c0, chromium,
                        len(PdfReader(pdf).pages), pdf.stat().st_size))
    print(f"audit (2 models, sample data, {args.rounds} rounds, not timed against the target): {audit_s:.1f} s")
    verdicts = findings.table["verdict"].value_counts()
    print(f"findings: {len(findings.table)} from {len(findings.checks)} checks ({verdicts.get('fail', 0)} fail, "
          f"{verdicts.get('attention', 0)} attention, {verdicts.get('pass', 0)} pass) in {findings_s:.2f} s; "
          + "; ".join(f"{m}: {len(findings.for_model(m).table)}" for m in result.models))
    print(f"headline: {findings.headline}")
    print(f"load average before the report: {load:.1f} on {os.cpu_count()} CPUs")
    for paper, wall, cpu, chromium, pages, size in timings:
        verdict = "OK" if wall <= TARGET_S else "SLOW"
        print(f"report {paper}: {wall:.2f} s wall, CPU {cpu:.2f} s Python + {chromium:.2f} s Chromium, {pages} pages, "
              f"{size / 1e6:.2f} MB  [{verdict}: target <= {TARGET_S:.0f} s]")


if __name__ == "__main__":
    main()
