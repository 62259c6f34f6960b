"""Job runners of the Dynamics page (kinds ``simulate`` and ``periods``; see :mod:`fairaudit.workspace._worker`).

``simulate``: ``spec["model"]`` (a saved model folder) and ``spec["settings"]``
(:meth:`fairaudit.dynamics.SimulationSettings.to_dict`) go to :func:`fairaudit.dynamics.simulate`, which
writes the simulation folder ``out_dir`` (read by :func:`fairaudit.dynamics.read_simulation`).
``periods``: the model, named ``spec["model_label"]`` in the tables, is audited per ``spec["period"]`` with
``spec["config"]`` (:meth:`fairaudit.audit.AuditConfig.to_dict`) by :func:`fairaudit.dynamics.audit_by_period`;
the folder ``out_dir`` is written by :func:`fairaudit.dynamics.write_period_audit`.
"""

from __future__ import annotations

from typing import Callable

from fairaudit.workspace._worker import _Reporter, spec_dataset, spec_model


def run_simulation(spec: dict, report: _Reporter) -> None:
    """Load the data and model, fit the ground truth, simulate every seed's rounds (n/N = rounds x seeds,
    round 0 included), then pool the seeds and write the folder."""
    report.phase("loading")
    from fairaudit.dynamics import SimulationSettings, simulate, true_relevance

    settings = SimulationSettings.from_dict(spec["settings"]).check()
    dataset = spec_dataset(spec)
    model = spec_model(spec, dataset)
    report.phase("fitting the ground truth")
    relevance = true_relevance(dataset, kind=settings.truth_kind, params=settings.truth_params)
    total = (settings.rounds + 1) * settings.seeds
    report.phase("simulating", total=total, unit="rounds")
    # After the last round the seeds are pooled (bootstrap) and the folder written, within simulate.
    progress = _finished_steps(report, total, then="pooling and saving")
    simulate(dataset, model, settings, relevance=relevance, out=spec["out_dir"], overwrite=True, progress=progress)


def run_periods(spec: dict, report: _Reporter) -> None:
    """Load the data and model, re-train and audit it per window (n/N = windows after the first), write the folder."""
    report.phase("loading")
    from fairaudit.audit import AuditConfig
    from fairaudit.dynamics import audit_by_period, period_windows, write_period_audit

    config = AuditConfig.from_dict(spec["config"])
    dataset = spec_dataset(spec)
    model = spec_model(spec, dataset)
    period = str(spec["period"])
    progress = None
    if "timestamp" in dataset.interactions.columns:  # else audit_by_period says what is missing
        total = max(len(period_windows(dataset.interactions["timestamp"], period)) - 1, 1)
        report.phase("auditing periods", total=total, unit="periods")
        progress = _finished_steps(report, total, then="trend tests")
    periods = audit_by_period(dataset, {spec["model_label"]: model}, config, period=period, progress=progress)
    report.phase("saving")
    write_period_audit(periods, spec["out_dir"], overwrite=True)


def _finished_steps(report: _Reporter, total: int, *, then: str) -> Callable[[str], None]:
    """A progress callback for lines that each say a step has *finished* (a round, a window): ``n/total`` with
    the line; after the last one the phase ``then`` starts (the work between the last step and the return)."""
    done = 0

    def finished(line: str) -> None:
        nonlocal done
        done += 1
        report.state["message"] = str(line)
        report.count(min(done, total), max(done, total))
        if done == total:
            report.phase(then)

    return finished
