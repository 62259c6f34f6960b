"""The Robustness page's job: attack the sidebar's model and audit who the attack hurts (``robustness``)."""

from __future__ import annotations

from fairaudit.workspace._worker import _Reporter, spec_dataset, spec_model


def run_robustness_job(spec: dict, report: _Reporter) -> None:
    """Attack ``spec["model"]`` with :func:`fairaudit.robustness.run_robustness` and write the run to ``out_dir``.

    ``spec``: ``attack``, ``strengths``, ``shilling`` (attack model, or None), ``attributes``, ``k``,
    ``rounds``, ``item_attribute`` (the page's settings; the rest at the CLI's defaults). Phases: loading,
    attacking (steps n/N: each attacked model built, the audit, each comparison with the clean model),
    saving (:func:`fairaudit.robustness.write_robustness`, read back by ``read_robustness``).
    """
    report.phase("loading")
    from fairaudit.audit import split_for_model
    from fairaudit.robustness import ShillingAttack, robustness_steps, run_robustness, write_robustness

    dataset = spec_dataset(spec)
    model = spec_model(spec, dataset)
    split = split_for_model(dataset, model)
    attack, strengths = spec["attack"], [float(s) for s in spec["strengths"]]
    report.phase("attacking", total=robustness_steps(attack, strengths), unit="steps")
    result = run_robustness(
        dataset, split, model, attack=attack, strengths=strengths, attributes=spec.get("attributes"),
        k=int(spec["k"]), rounds=int(spec["rounds"]), item_attribute=spec["item_attribute"],
        shilling=ShillingAttack(kind=spec["shilling"]) if spec.get("shilling") else None, progress=report.step,
    )  # fmt: skip
    report.phase("saving")
    write_robustness(result, spec["out_dir"], overwrite=True)
