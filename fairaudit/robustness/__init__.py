"""Robustness audits: shilling (data-poisoning) and representation attacks, who they hurt, and a detector.

Attacks never touch the user's files: poisoned data live in memory and, when a run writes an output
folder, as the fake profiles inside it. The perturbation math (FGSM, PGD, noise, APR training) lives
in :mod:`fairaudit.models._adversarial`, where the LLM recommender's adversarial training uses it too.
"""

from fairaudit.robustness._detect import (
    DETECTION_COLUMNS,
    FEATURES,
    NEIGHBOURS,
    THRESHOLD,
    detection_quality,
    shilling_scores,
)
from fairaudit._choices import NOISES, ROBUSTNESS_ROUNDS
from fairaudit.robustness._run import (
    ATTACKS,
    AUDIT_FOLDER,
    CLEAN,
    ROBUSTNESS_COLUMNS,
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    TARGET_EXPOSURE,
    TARGET_HIT,
    AttackKind,
    RobustnessResult,
    attack_name,
    defence_gain,
    is_robustness_folder,
    read_robustness,
    robustness_steps,
    run_robustness,
    summarise,
    write_robustness,
)
from fairaudit.robustness._shilling import (
    INTENTS,
    SHILLING_KINDS,
    Poisoning,
    ShillingAttack,
    choose_targets,
    inject_profiles,
)

__all__ = [
    "ATTACKS",
    "AUDIT_FOLDER",
    "CLEAN",
    "DETECTION_COLUMNS",
    "FEATURES",
    "INTENTS",
    "NEIGHBOURS",
    "NOISES",
    "ROBUSTNESS_ROUNDS",
    "ROBUSTNESS_COLUMNS",
    "SHILLING_KINDS",
    "SUMMARY_COLUMNS",
    "SUMMARY_FILE",
    "TARGET_EXPOSURE",
    "TARGET_HIT",
    "THRESHOLD",
    "AttackKind",
    "Poisoning",
    "RobustnessResult",
    "ShillingAttack",
    "attack_name",
    "defence_gain",
    "choose_targets",
    "detection_quality",
    "inject_profiles",
    "is_robustness_folder",
    "read_robustness",
    "robustness_steps",
    "run_robustness",
    "shilling_scores",
    "summarise",
    "write_robustness",
]
