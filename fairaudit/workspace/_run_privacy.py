"""Job runners of the Privacy page: the membership-inference audit and the cost of DP by group.

``membership`` writes what ``python -m fairaudit privacy --out`` writes (``mia.csv`` and ``privacy.json``,
:func:`fairaudit.privacy.write_membership`; read with :func:`fairaudit.privacy.read_membership`).
``privacy_cost`` audits the DP model and its twin together (the dashboard's audit configuration) into
``audit/`` and writes ``privacy_cost.csv`` beside it, as ``python -m fairaudit privacy-cost --out`` does
(read with :func:`fairaudit.privacy.read_privacy_cost`). Both result folders are written atomically.
"""

from __future__ import annotations

from fairaudit.data import replacing_folder
from fairaudit.workspace._worker import _Reporter, audit_steps, holds_file, spec_dataset, spec_model


def run_membership(spec: dict, report: _Reporter) -> None:
    """Membership inference (:func:`fairaudit.privacy.membership_inference`) against the model ``spec["model"]``
    named ``spec["name"]``, on its own split, with ``attributes``, ``attack`` and bootstrap ``rounds``."""
    report.phase("loading")
    from fairaudit.audit import split_for_model
    from fairaudit.privacy import MIA_RECORDS, membership_inference, membership_record, write_membership

    dataset = spec_dataset(spec)
    model = spec_model(spec, dataset)
    split = split_for_model(dataset, model)
    report.phase("scoring members and held-out interactions")

    def progress(done: int, total: int) -> None:
        if done == 0:
            report.phase("bootstrap by group", done=0, total=total, unit="attributes")
        report.count(done, total)

    table = membership_inference(model, dataset, split, name=spec["name"], attributes=spec["attributes"],
                                 attack=spec["attack"], rounds=int(spec["rounds"]), progress=progress)  # fmt: skip
    report.phase("saving")
    records = {spec["name"]: membership_record(model, spec["model"], split.describe())}
    settings = {key: spec[key] for key in ("attack", "rounds", "attributes")}
    with replacing_folder(spec["out_dir"], overwrite=True, is_ours=holds_file(MIA_RECORDS),
                          kind="membership-inference result folder") as tmp:  # fmt: skip
        write_membership(tmp, table, records, settings)


def run_privacy_cost(spec: dict, report: _Reporter) -> None:
    """Audit the DP model ``spec["model"]`` (named ``spec["name"]``) and its twin ``spec["twin"]`` (named
    ``spec["twin_name"]``) with the audit configuration ``spec["config"]``, then
    :func:`fairaudit.privacy.privacy_cost` of the two: ``audit/`` and ``privacy_cost.csv``."""
    report.phase("loading")
    from fairaudit.audit import AuditConfig
    from fairaudit.data import write_csv
    from fairaudit.models import load_model
    from fairaudit.privacy import PRIVACY_COST_FILE, privacy_cost
    from fairaudit.service import audit_models

    dataset = spec_dataset(spec)
    models = {spec["name"]: spec_model(spec, dataset), spec["twin_name"]: load_model(spec["twin"], dataset)}
    report.phase("auditing", total=audit_steps(len(models)))
    audit = audit_models(dataset, models, AuditConfig.from_dict(spec["config"]), progress=report.step)
    with replacing_folder(spec["out_dir"], overwrite=True, is_ours=holds_file(PRIVACY_COST_FILE),
                          kind="privacy cost result folder") as tmp:  # fmt: skip
        folder = audit.write(tmp / "audit", overwrite=True)
        report.phase("paired bootstrap by group")
        cost = privacy_cost(folder, model_dp=spec["name"], model_base=spec["twin_name"], dataset=dataset)
        report.phase("saving")
        write_csv(cost, tmp / PRIVACY_COST_FILE)
