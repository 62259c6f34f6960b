"""The Profiles page's job: the audit of text profiles of two saved models (``profiles``)."""

from __future__ import annotations

from fairaudit.workspace._worker import _Reporter, spec_dataset, spec_model


def run_profiles_job(spec: dict, report: _Reporter) -> None:
    """Audit ``spec["model"]`` (reads texts) against ``spec["model_without"]`` with
    :func:`fairaudit.profiles.run_profile_audit` and write the audit folder to ``out_dir``.

    ``spec``: ``attributes``, ``k``, ``rounds`` (bootstrap), ``users`` (of the text counterfactual);
    the rest at the CLI's defaults. Phases: loading, auditing (steps n/N: both models, accuracy,
    leakage, text counterfactual), encoding (rewritten texts n/N, when any is new; the re-ranking
    follows), saving (:meth:`fairaudit.audit.AuditResult.write`, atomic; read back by ``AuditResult.read``).
    """
    report.phase("loading")
    from fairaudit.audit import common_split
    from fairaudit.models import load_model
    from fairaudit.profiles import PROFILE_AUDIT_STEPS, WITH_TEXTS, WITHOUT_TEXTS, run_profile_audit

    dataset = spec_dataset(spec)
    model_with, model_without = spec_model(spec, dataset), load_model(spec["model_without"], dataset)
    split = common_split(dataset, {WITHOUT_TEXTS: model_without, WITH_TEXTS: model_with})
    report.phase("auditing", total=PROFILE_AUDIT_STEPS, unit="steps")

    def encoding(done: int, total: int) -> None:
        if report.state.get("phase") != "encoding":
            report.phase("encoding", total=total, unit="rewritten texts")
        report.count(done, total)

    result = run_profile_audit(
        dataset, split, model_without, model_with, attributes=spec.get("attributes"), k=int(spec["k"]),
        rounds=int(spec["rounds"]), users=spec.get("users"), progress=report.step, encode_progress=encoding,
    )  # fmt: skip
    result.meta["profiles"]["settings"] = {
        "model_with": spec["model"], "model_without": spec["model_without"], "attributes": spec.get("attributes"),
        "users": spec.get("users"), "k": int(spec["k"]), "bootstrap": int(spec["rounds"]),
    }  # fmt: skip
    report.phase("saving")
    result.write(spec["out_dir"], overwrite=True)
