"""``python -m fairaudit probe``: counterfactual attribute probe of a saved model (probes.csv), or the
FaiRLLM/CFaiRLLM protocol over one or more LLM recommenders (fairllm.csv)."""

from __future__ import annotations

import argparse
from pathlib import Path

PROTOCOLS = ("counterfactual", "fairllm")
HELP = "does the model change its top-K when only a user attribute changes? (writes probes.csv or fairllm.csv)"
DESCRIPTION = """\
--protocol counterfactual (default): for each probed user, re-rank with the sensitive attribute
swapped to every other value (everything else fixed) and compare with the user's original top-K:
Jaccard@K, SERP*@K and PRAG*@K (FaiRLLM conventions: identical lists give 1, (K+3)/(4(K+1)) and 1)
and the change in each item group's share of the list, per original -> counterfactual value and
pooled, with bootstrap CIs over users, plus the SNSR/SNSV spread across values. A model that ignores
the attribute shows exactly zero change. Writes OUT/probes.csv (attribute, original_value,
counterfactual_value, metric, estimate, ci_low, ci_high, n_users).

--protocol fairllm: the FaiRLLM / CFaiRLLM protocol for LLM recommenders (a generative model, the
two-tower LLM with a profile text, or any model: give --model several times to compare them on the
same users). Per sampled user: a neutral prompt (no attribute stated), one prompt per value of each
--attribute (and per combination of an intersection such as gender*age_band), and the neutral prompt
asked again with another seed (the decoding-noise baseline). Each list is compared with the neutral
list and with the user's held-out items (Jaccard@K, SERP*@K, PRAG*@K); SNSR and SNSV per attribute
with bootstrap CIs over users; a sign-flip permutation test of "the attribute changes the list more
than re-asking does"; hallucination and duplicate shares per user group for generative models.
Writes OUT/fairllm.csv; when OUT is an audit folder the table is added to it (and to its PDF).

Examples:
  python -m fairaudit probe --model models/llm --data sample_data --attribute gender --out probes/llm
  python -m fairaudit probe --protocol fairllm --model models/generative --model models/llm \\
      --data sample_data --attribute gender,age_band,gender*age_band --users 200 --out audits/run1
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import positive_int, seed

    parser.add_argument("--model", required=True, metavar="DIR", action="append",
                        help="saved model folder (fairllm: repeat to probe several models on the same users)")
    parser.add_argument("--data", required=True, help="dataset folder or file the model was trained on")
    parser.add_argument("--attribute", required=True,
                        help="user attribute to swap, e.g. gender (fairllm: comma-separated specs, "
                        "intersections joined by '*', e.g. gender,age_band,gender*age_band)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder to write probes.csv / fairllm.csv to (fairllm: an audit folder gets the table)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT/probes.csv or fairllm.csv "
                        "(refused otherwise)")
    parser.add_argument("--k", type=positive_int, default=10, help="list length K (default 10)")
    parser.add_argument("--users", type=positive_int, default=None,
                        help="probe a seeded sample of N users (default: all; fairllm: 200)")
    parser.add_argument("--values", help="comma-separated counterfactual values (default: every known value; "
                        "fairllm: only with one --attribute)")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap rounds (default 1000)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the user sample and bootstrap (default 0)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="counterfactual",
                        help="counterfactual (default; probes.csv) or fairllm (fairllm.csv)")
    parser.add_argument("--name", action="append", default=None,
                        help="fairllm: display name of each --model, in order (default: the folder names)")


def run(args: argparse.Namespace) -> int:
    if args.protocol == "fairllm":
        return _run_fairllm(args)
    from fairaudit.cli._options import UsageError, check_values, text_list
    from fairaudit.data import check_file_target, load_dataset, write_csv
    from fairaudit.explain import EXPLANATION_FILES, probe_attribute
    from fairaudit.models import load_model

    if len(args.model) != 1:
        raise UsageError("--protocol counterfactual probes one --model; give it once (or use --protocol fairllm)")
    path = Path(args.out) / EXPLANATION_FILES["probes"]
    check_file_target(path, overwrite=args.overwrite)  # before the work, not after it
    dataset = load_dataset(args.data)
    model = load_model(args.model[0], dataset)
    columns = [c for c in dataset.users.columns if c != "user_id"]
    check_values("--attribute", [args.attribute], columns, "user attributes")
    values = text_list(args.values) or None
    if values:
        check_values("--values", values, sorted(dataset.users[args.attribute].astype(str).unique()))
    table = probe_attribute(
        model, dataset, args.attribute, users=args.users, k=args.k, values=values, seed=args.seed,
        bootstrap_rounds=args.bootstrap,
    )  # fmt: skip
    write_csv(table, path, overwrite=args.overwrite)
    pooled = table[(table["original_value"] == "all") & table["metric"].isin(["jaccard", "prag"])]
    print(f"Probe of '{args.attribute}' on {model.kind} model (K={args.k}): mean over users, 95% CI")
    for row in pooled.itertuples():
        print(f"  -> {row.counterfactual_value}: {row.metric} {row.estimate:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
              f" (n={row.n_users})")
    spread = table[table["metric"] == "jaccard_snsr"]
    if not spread.empty:
        snsr = spread["estimate"].iloc[0]
        print(f"  spread across values (Jaccard SNSR): {snsr:.3f}  (0 = every value treated alike)")
    print(f"wrote {path}")
    return 0


def _run_fairllm(args: argparse.Namespace) -> int:
    import dataclasses

    from fairaudit.audit import AuditResult, TABLES, is_audit_folder, split_for_model
    from fairaudit.cli._options import UsageError, text_list
    from fairaudit.data import check_file_target, load_dataset, write_csv
    from fairaudit.explain import DEFAULT_FAIRLLM_USERS, attribute_settings, fairllm_probe, fairllm_summary
    from fairaudit.models import load_model

    out = Path(args.out)
    audit_folder = is_audit_folder(out)
    path = out / TABLES["fairllm"].file
    if not audit_folder:
        check_file_target(path, overwrite=args.overwrite)  # before the work, not after it
    elif (path.is_file() and not args.overwrite):
        raise UsageError(f"{path} exists; pass --overwrite to replace it")
    names = list(args.name or [Path(m).name for m in args.model])
    if len(names) != len(args.model) or len(set(names)) != len(names):
        raise UsageError(f"--name must give one distinct name per --model ({len(args.model)}); got {names}")
    specs = text_list(args.attribute) or []
    values = text_list(args.values) or None
    if values and len(specs) != 1:
        raise UsageError("--values needs exactly one --attribute")
    dataset = load_dataset(args.data)
    for spec in specs:  # unknown columns and values fail here, before any model runs
        attribute_settings(dataset, spec, values)
    models = {name: load_model(folder, dataset) for name, folder in zip(names, args.model)}
    for model in models.values():
        if hasattr(model, "progress"):  # generative models report prompts answered while scoring
            model.progress = _prompt_bar()
    split = split_for_model(dataset, next(iter(models.values())))
    table = fairllm_probe(
        models, dataset, split, specs, users=args.users or DEFAULT_FAIRLLM_USERS, k=args.k,
        values={specs[0]: values} if values else None, seed=args.seed, bootstrap_rounds=args.bootstrap,
    )  # fmt: skip
    if audit_folder:
        result = AuditResult.read(out)
        dataclasses.replace(result, fairllm=table).write(out, overwrite=True)
    else:
        write_csv(table, path, overwrite=args.overwrite)
    print(f"FaiRLLM probe (K={args.k}, {args.users or DEFAULT_FAIRLLM_USERS} users): Jaccard@K spread across "
          "values vs the neutral prompt, and the change beyond re-asking")
    for row in fairllm_summary(table).dropna(subset=["snsr"]).itertuples():
        print(f"  {row.model} / {row.attribute}: SNSR {row.snsr:.3f} [{row.snsr_ci_low:.3f}, {row.snsr_ci_high:.3f}],"
              f" SNSV {row.snsv:.3f}, change vs re-ask {row.change_vs_noise:.3f} (p={row.p_value:.3f})")
    print(f"wrote {path}")
    return 0


def _prompt_bar():
    """A ``Progress`` callback drawing one tqdm bar (on stderr) per batch of prompts a model answers."""
    import sys

    from tqdm import tqdm

    state: dict = {}

    def callback(event) -> None:
        bar = state.get("bar")
        if bar is None or event.epoch < bar.n or bar.total != event.n_epochs:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=event.n_epochs, desc=event.message, unit="prompt", file=sys.stderr,
                                      leave=False)  # fmt: skip
        bar.update(event.epoch - bar.n)

    return callback
