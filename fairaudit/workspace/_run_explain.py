"""Job runners of the Explain page: the counterfactual attribute probe and the FaiRLLM protocol.

Each writes the table ``python -m fairaudit probe --out`` writes (``probes.csv`` / ``fairllm.csv``,
:func:`fairaudit.explain.write_probe_table`) into the job's result folder, atomically; the page reads it
back with :func:`fairaudit.explain.read_probe_table`.
"""

from __future__ import annotations

from fairaudit.audit import TABLES
from fairaudit.data import replacing_folder
from fairaudit.explain import PROBE_TABLES, ProbeProtocol, write_probe_table
from fairaudit.workspace._worker import _Reporter, holds_file, spec_dataset, spec_model


def _save(table, spec: dict, report: _Reporter, protocol: ProbeProtocol) -> None:
    report.phase("saving")
    with replacing_folder(spec["out_dir"], overwrite=True, is_ours=holds_file(TABLES[PROBE_TABLES[protocol]].file),
                          kind=f"{PROBE_TABLES[protocol]} result folder") as tmp:  # fmt: skip
        write_probe_table(table, tmp, protocol)


def run_probe(spec: dict, report: _Reporter) -> None:
    """Probe the model ``spec["model"]`` by swapping ``spec["attribute"]``
    (:func:`fairaudit.explain.probe_attribute` with ``users``, ``k``, ``rounds``): ``probes.csv``."""
    report.phase("loading")
    from fairaudit.explain import probe_attribute

    dataset = spec_dataset(spec)
    model = spec_model(spec, dataset)
    report.phase("probing", done=0, unit="values")
    table = probe_attribute(model, dataset, spec["attribute"], users=spec["users"], k=int(spec["k"]),
                            bootstrap_rounds=int(spec["rounds"]), progress=report.count)  # fmt: skip
    _save(table, spec, report, "counterfactual")


def run_fairllm(spec: dict, report: _Reporter) -> None:
    """The FaiRLLM protocol (:func:`fairaudit.explain.fairllm_probe`) of the model ``spec["model"]``, named
    ``spec["name"]``, on ``spec["attribute"]`` with ``users``, ``k``, ``rounds`` and the split
    ``spec["split"]`` (``method``, ``seed``) for the held-out items: ``fairllm.csv``."""
    report.phase("loading")
    from fairaudit.data import make_split
    from fairaudit.explain import fairllm_probe

    dataset = spec_dataset(spec)
    model = spec_model(spec, dataset)
    split = make_split(dataset, spec["split"]["method"], seed=int(spec["split"]["seed"]))
    report.phase("asking the model", done=0, unit="prompts")
    asked = {"done": 0, "total": 0}

    def lists_done(done: int, total: int) -> None:
        asked.update(done=done, total=total)
        report.count(done, total)

    def prompts_done(event) -> None:  # a generative model's prompts answered within the current list
        if asked["total"]:
            report.count(min(asked["done"] + int(event.epoch), asked["total"]), asked["total"])

    if hasattr(model, "progress"):
        model.progress = prompts_done
    table = fairllm_probe({spec["name"]: model}, dataset, split, [spec["attribute"]], users=spec["users"],
                          k=int(spec["k"]), bootstrap_rounds=int(spec["rounds"]), progress=lists_done)  # fmt: skip
    _save(table, spec, report, "fairllm")
