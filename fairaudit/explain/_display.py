"""Explanations as a reader sees them: readable SHAP players and probe results in words.

Display helpers only: they never change a number, they fold and label the rows of
:func:`fairaudit.explain.explain_recommendation` and the probes of :func:`probe_attribute`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from fairaudit.explain._local import HISTORY, OTHER_HISTORY, PROFILE, TEXT
from fairaudit.metrics import metric_label

#: Text tokens with no letter or digit (punctuation, spaces): folded into one row of the explanation.
_NO_WORD = re.compile(r"^[\W_]*$")
#: Columns of :func:`readable_explanation`.
READABLE_COLUMNS = ("label", "kind", "shap_value")
#: The probe metric pages show first: overlap of the lists (1 = the same items).
DEFAULT_PROBE_METRIC = "jaccard"


def readable_explanation(explanation: pd.DataFrame, *, top: int = 15) -> pd.DataFrame:
    """The ``top`` largest SHAP players of a local explanation with readable labels, signed, largest first.

    History players read ``history: <title>`` (the block of the rest: ``other history: <n> items``), profile players ``profile: <attribute> = <value>``,
    text players ``word: <token>``. Text tokens with no letter or digit ("(", ".", spaces) are
    summed into one ``punctuation and spaces`` row and the players beyond ``top`` into one ``N other
    features`` row, so the values still add up to the score minus the base value of each game.

    >>> frame = pd.DataFrame({"kind": ["text", "text", "text", "profile"], "feature": ["0", "1", "2", "gender"],
    ...     "feature_value": [" comedy", "(", ".", "F"], "shap_value": [0.3, -0.01, 0.02, -0.1]})
    >>> readable_explanation(frame).values.tolist()
    [['word: comedy', 'text', 0.3], ['profile: gender = F', 'profile', -0.1], ['punctuation and spaces (2 tokens)', 'text', 0.01]]
    """
    kind = explanation["kind"].astype(str).to_numpy()
    value = explanation["feature_value"].astype(str).str.strip()
    block = (kind == HISTORY) & (explanation["feature"].astype(str) == OTHER_HISTORY).to_numpy()
    labels = np.select(
        [block, kind == HISTORY, kind == PROFILE, kind == TEXT],
        [f"{OTHER_HISTORY}: " + value, "history: " + value.where(value != "", explanation["feature"].astype(str)),
         "profile: " + explanation["feature"].astype(str) + " = " + value, "word: " + value],
        default=explanation["feature"].astype(str))
    frame = pd.DataFrame({"label": labels, "kind": kind, "shap_value": explanation["shap_value"].to_numpy(float)})
    punctuation = (kind == TEXT) & value.str.fullmatch(_NO_WORD).to_numpy()
    rows = frame[~punctuation]
    if punctuation.any():
        folded = pd.DataFrame({"label": [f"punctuation and spaces ({int(punctuation.sum())} tokens)"], "kind": TEXT,
                               "shap_value": [float(frame.loc[punctuation, "shap_value"].sum())]})
        rows = pd.concat([rows, folded], ignore_index=True)
    rows = rows.iloc[np.argsort(-rows["shap_value"].abs().to_numpy(), kind="stable")].reset_index(drop=True)
    if len(rows) > top:
        rest = rows.iloc[top - 1:]
        rows = pd.concat([rows.iloc[:top - 1], pd.DataFrame({
            "label": [f"{len(rest)} other features"], "kind": "other", "shap_value": [float(rest["shap_value"].sum())]})],
            ignore_index=True)
    return rows[list(READABLE_COLUMNS)]


def probe_sentences(probes: pd.DataFrame, *, metric: str = DEFAULT_PROBE_METRIC, k: int | None = None) -> list[str]:
    """One sentence per probed attribute: "no change" when every list stayed the same, else the value
    that changed the lists most, with its CI.

    ``probes``: the pooled rows (``attribute, value, metric, estimate, ci_low, ci_high``, e.g.
    :func:`fairaudit.plots.probe_summary` of :func:`probe_attribute`'s table) of a similarity metric
    where 1 means the same list.

    >>> pooled = pd.DataFrame({"attribute": "gender", "value": ["F", "M"], "metric": "jaccard",
    ...     "estimate": [1.0, 1.0], "ci_low": [1.0, 1.0], "ci_high": [1.0, 1.0]})
    >>> print(probe_sentences(pooled, k=10)[0])
    No change: re-scoring the probed users as if gender were F or M left every top-10 list exactly as it was (jaccard@10 = 1 for every value), so the model's lists do not depend on gender.
    >>> print(probe_sentences(pooled.assign(estimate=[0.8, 1.0], ci_low=[0.75, 1.0]), k=10)[0])
    Lists change with gender: as if gender were F, jaccard@10 with the original list is 0.800 [0.750, 1.000] (1 = the same items), so about 20% of the items differ.
    """
    rows = probes[probes["metric"] == metric]
    label = metric_label(metric, k)
    lists = f"top-{k} list" if k else "list"
    sentences = []
    for attribute, part in rows.groupby("attribute", sort=False):
        values = " or ".join(part["value"].astype(str))
        if np.allclose(part[["estimate", "ci_low", "ci_high"]].to_numpy(float), 1.0):
            sentences.append(f"No change: re-scoring the probed users as if {attribute} were {values} left every "
                             f"{lists} exactly as it was ({label} = 1 for every value), so the model's lists do not "
                             f"depend on {attribute}.")
            continue
        worst = part.loc[part["estimate"].idxmin()]
        sentences.append(f"Lists change with {attribute}: as if {attribute} were {worst['value']}, {label} with the "
                         f"original list is {worst['estimate']:.3f} [{worst['ci_low']:.3f}, {worst['ci_high']:.3f}] "
                         f"(1 = the same items), so about {1 - worst['estimate']:.0%} of the items differ.")
    return sentences
