"""Option values and defaults shared by the package and its command line: standard library only.

The command line builds its parsers from this module alone, so ``--help`` and usage errors never
import torch, pandas or any other heavy library (tests/test_cli_startup.py). It is the one source
of these values: each subpackage takes them from here and re-exports them under its own name
(``fairaudit.models.RERANK_KINDS``, ``fairaudit.data.SPLIT_METHODS`` ...), and
:func:`fairaudit.models.register` refuses a model kind that is not declared here.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

# ---- data -----------------------------------------------------------------------------------------
SplitMethod = Literal["random", "temporal", "cold_items"]
SPLIT_METHODS: tuple[str, ...] = get_args(SplitMethod)

# ---- models ---------------------------------------------------------------------------------------
#: Model kinds read from files made elsewhere (not trained, not offered by ``train``).
IMPORTED_KINDS: tuple[str, ...] = ("imported",)
#: Model kinds trained on data, in the order ``train --model`` lists them.
TRAINABLE_KINDS: tuple[str, ...] = ("itemknn", "llm", "generative", "mf", "popularity")
#: Re-rankers: they wrap a fitted model.
RERANK_KINDS: tuple[str, ...] = ("rerank_exposure", "rerank_calibrated", "rerank_mmr")
#: Every model kind, in the order :func:`fairaudit.models.model_kinds` lists the registered ones.
MODEL_KINDS: tuple[str, ...] = (*IMPORTED_KINDS, *TRAINABLE_KINDS, *RERANK_KINDS)

FairnessKind = Literal["none", "difference", "exposure", "adversarial"]
FAIRNESS_KINDS: tuple[str, ...] = get_args(FairnessKind)
AdversaryObjective = Literal["mean_matching", "reversal"]
ADVERSARY_OBJECTIVES: tuple[str, ...] = get_args(AdversaryObjective)
Pooling = Literal["sqrt", "mean"]
POOLINGS: tuple[str, ...] = get_args(Pooling)
#: The matrix-factorisation model's training algorithms.
Algorithm = Literal["als", "bpr"]
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
#: Vectors an adversarial perturbation moves.
Side = Literal["user", "item", "both"]
SIDES: tuple[str, ...] = get_args(Side)
#: PGD steps (step size = travel x epsilon / steps).
PGD_STEPS = 10
#: Patience of the iterative kinds' early stopping while tuning (and by default in ``train``): the
#: LLM's validation curve is noisier from epoch to epoch than ALS's, so it waits longer.
TUNING_PATIENCE: dict[str, int] = {"mf": 5, "llm": 20}
#: Devices every machine offers (``auto``: CUDA when present, else CPU) ...
ALWAYS_AVAILABLE_DEVICES: tuple[str, ...] = ("auto", "cpu")
#: ... and the accelerators a machine may offer (torch tells which are present).
ACCELERATOR_DEVICE = re.compile(r"^(cuda(:\d+)?|mps)$")

#: Defaults of the LLM recommender's hyper-parameters that commands offer as options
#: (:class:`fairaudit.models.LLMRecommender` takes them from here).
LLM_DEFAULTS: dict[str, object] = {
    "pooling": "sqrt",
    "fairness": "none",
    "fairness_weight": 0.0,
    "fairness_attribute": "gender",
    "exposure_attribute": "provider",
    "adversary_objective": "mean_matching",
    "adv_epsilon": 0.0,
    "adv_weight": 0.0,
    "dp_max_grad_norm": 1.0,
}
#: Values of the LLM recommender's ``Literal``-typed hyper-parameters.
LLM_CHOICES: dict[str, tuple[str, ...]] = {
    "pooling": POOLINGS,
    "fairness": FAIRNESS_KINDS,
    "adversary_objective": ADVERSARY_OBJECTIVES,
}

# ---- metrics and audits ---------------------------------------------------------------------------
#: Per-user accuracy metrics, in ``accuracy_metrics``' column order (the metrics registry refuses to differ).
ACCURACY_METRICS: tuple[str, ...] = ("ndcg", "recall", "precision", "hit_rate", "mrr")
#: Bootstrap resamples (CIs) and permutations (p-values) of an audit.
DEFAULT_ROUNDS = 1000
#: Groups with fewer users are flagged and left out of gap tests.
MIN_GROUP_SIZE = 30
#: Largest seed accepted anywhere (numpy's legacy generators and torch take seeds below 2**32).
MAX_SEED = 2**32 - 1
#: The one message for a bad ``--threads``/``threads`` value (models, jobs and the command line).
BAD_THREADS = "threads must be a whole number >= 1, got {0!r}"
#: Defaults of the numeric :class:`~fairaudit.audit.AuditConfig` fields that commands offer as options.
AUDIT_DEFAULTS: dict[str, int | float] = {
    "k": 10,
    "bootstrap_rounds": DEFAULT_ROUNDS,
    "seed": 0,
    "min_group_size": MIN_GROUP_SIZE,
    "alpha": 0.05,
}
#: Allowed range of each numeric :class:`~fairaudit.audit.AuditConfig` field, as pydantic/annotated-types bounds
#: (``ge``/``gt``/``le``/``lt``). The CLI options and the audit configuration schema both read it.
AUDIT_BOUNDS: dict[str, dict[str, float]] = {
    "k": {"ge": 1},
    "bootstrap_rounds": {"ge": 1},
    "seed": {"ge": 0, "le": MAX_SEED},
    "min_group_size": {"ge": 1},
    "alpha": {"gt": 0, "lt": 1},
    "rbp_gamma": {"gt": 0, "lt": 1},
    "calibration_alpha": {"ge": 0, "le": 1},
    "max_groups": {"ge": 1},
}
#: Users probed per model and attribute by an audit's explanations.
DEFAULT_PROBE_USERS = 1000

_BAD_PERIOD = "period must be 'month', 'week' or 'N-days' (N a whole number >= 1, e.g. '14-days'); got {0!r}"
#: An ``N-days`` period; group 1 is N.
N_DAYS_PERIOD = re.compile(r"^(\d+)-days?$")


def check_period(text: str) -> str:
    """``text`` when it names a period of an audit by period (``month``, ``week`` or ``N-days``), else ``ValueError``.

    >>> check_period("14-days"), check_period("month")
    ('14-days', 'month')
    """
    match = N_DAYS_PERIOD.match(str(text))
    if text not in ("month", "week") and not (match and int(match.group(1)) >= 1):
        raise ValueError(_BAD_PERIOD.format(text))
    return text


# ---- analyses -------------------------------------------------------------------------------------
AttackKind = Literal["shilling", "fgsm", "pgd", "noise"]
ATTACKS: tuple[str, ...] = get_args(AttackKind)
Noise = Literal["gaussian", "sign"]
NOISES: tuple[str, ...] = get_args(Noise)
ShillingKind = Literal["random", "average", "bandwagon", "segment"]
SHILLING_KINDS: tuple[str, ...] = get_args(ShillingKind)
Intent = Literal["push", "nuke"]
INTENTS: tuple[str, ...] = get_args(Intent)
#: Bootstrap rounds of a robustness run's audit and paired comparisons (CLI default, dashboard).
ROBUSTNESS_ROUNDS = 200

#: Statistics a membership-inference attack scores members with (``fairaudit.privacy``).
MembershipAttack = Literal["score", "rank", "loss"]
MEMBERSHIP_ATTACKS: tuple[str, ...] = get_args(MembershipAttack)

ChoiceModel = Literal["position", "cascade"]
CHOICE_MODELS: tuple[str, ...] = get_args(ChoiceModel)
RetrainMode = Literal["scratch", "finetune"]
RETRAIN_MODES: tuple[str, ...] = get_args(RetrainMode)
Consumption = Literal["repeat", "once"]
CONSUMPTIONS: tuple[str, ...] = get_args(Consumption)

#: In-training fairness terms a sweep can strengthen (every kind but ``none``).
TRAINING_MITIGATIONS: tuple[str, ...] = tuple(kind for kind in FAIRNESS_KINDS if kind != "none")
#: Robustness defences trained into the LLM: APR adversarial training (strength = ``adv_weight``).
ROBUSTNESS_MITIGATIONS: tuple[str, ...] = ("apr",)
#: Differentially private training of the LLM (strength = the target epsilon; inf = the non-private twin).
PRIVACY_MITIGATIONS: tuple[str, ...] = ("privacy",)
#: Target epsilons of a privacy sweep by default (docs/privacy.md).
DEFAULT_EPSILONS: tuple[float, ...] = (float("inf"), 8.0, 3.0, 1.0)
MITIGATIONS: tuple[str, ...] = (*RERANK_KINDS, *TRAINING_MITIGATIONS, *ROBUSTNESS_MITIGATIONS, *PRIVACY_MITIGATIONS)

# ---- reports --------------------------------------------------------------------------------------
Paper = Literal["A4", "Letter"]
PAPERS: tuple[str, ...] = get_args(Paper)
#: Defaults of the compliance checks' limits (:class:`fairaudit.report.Thresholds`).
THRESHOLD_DEFAULTS: dict[str, float] = {
    "min_ratio": 0.8,
    "max_exposure_diff": 0.1,
    "alpha": 0.05,
    "max_relative_gap": 0.2,
    "max_gini": 0.9,
    "min_coverage": 0.2,
}
