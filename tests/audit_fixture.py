"""A realistic audit folder built by hand, following the audit-folder contract in docs/architecture.md.

Used by the plot, report and comparison tests (and by ``bench/bench_report.py`` when the real audit
engine is not available). Numbers are computed from the per-user table it writes, so
``group_metrics.csv`` and ``gaps.csv`` agree with ``user_metrics.parquet``:

- two models, ``llm`` (planted: women get lower NDCG/recall) and ``popularity`` (no gender gap, lower accuracy);
- attributes ``gender``, ``age_band`` (``56+`` has 20 users and is flagged), ``region`` and ``gender*age_band``;
- item attributes ``popularity_tier`` and ``genre`` in ``item_exposure.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

ATTRIBUTES = ("gender", "age_band", "region", "gender*age_band")
PER_USER_METRICS = (
    "ndcg", "recall", "precision", "hit_rate", "mrr", "ild_embedding", "ild_genre",
    "genre_coverage", "novelty", "avg_popularity", "long_tail_share", "miscalibration",
)
MIN_GROUP_SIZE = 30
N_BOOT = 200


def make_users(n_users: int = 400, seed: int = 0, *, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Users with gender, age_band (one small band) and region; ``names`` renames group values."""
    rng = np.random.default_rng(seed)
    gender = np.where(np.arange(n_users) % 2 == 0, "F", "M")
    age = np.array(["18-24", "25-34", "35-55"])[rng.integers(0, 3, n_users)]
    age[:20] = "56+"
    region = np.array(["Northeast", "South", "West"])[rng.integers(0, 3, n_users)]
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(n_users)], "gender": gender,
                          "age_band": age, "region": region})
    for column in ("gender", "age_band", "region"):
        users[column] = users[column].replace(names or {})
    return users


def make_user_metrics(users: pd.DataFrame, models: tuple[str, ...] = ("llm", "popularity"), seed: int = 1) -> pd.DataFrame:
    """Per-user metrics with planted effects: model ``llm`` is better overall but worse for women."""
    rng = np.random.default_rng(seed)
    n = len(users)
    female = (users["gender"] == users["gender"].iloc[0]).to_numpy()
    base = rng.beta(2, 6, n)  # shared user difficulty, so the two models are paired
    frames = []
    for index, model in enumerate(models):
        if index == 0:
            ndcg = np.clip(base + 0.10 - 0.06 * female + rng.normal(0, 0.05, n), 0, 1)
        else:
            ndcg = np.clip(base + 0.05 + rng.normal(0, 0.05, n), 0, 1)
        frame = pd.DataFrame({"model": model, "user_id": users["user_id"].to_numpy()})
        frame["ndcg"] = ndcg
        frame["recall"] = np.clip(ndcg * 1.2 + rng.normal(0, 0.03, n), 0, 1)
        frame["precision"] = np.clip(ndcg * 0.3 + rng.normal(0, 0.02, n), 0, 1)
        frame["hit_rate"] = (rng.random(n) < np.clip(ndcg * 2, 0, 1)).astype(float)
        frame["mrr"] = np.clip(ndcg * 0.9 + rng.normal(0, 0.03, n), 0, 1)
        frame["ild_embedding"] = np.clip(rng.normal(0.55 + 0.05 * index, 0.05, n), 0, 1)
        frame["ild_genre"] = np.clip(rng.normal(0.70 - 0.03 * female, 0.08, n), 0, 1)
        frame["genre_coverage"] = np.clip(rng.normal(0.35, 0.06, n), 0, 1)
        frame["novelty"] = rng.normal(8.0 - 1.5 * index, 0.7, n)
        frame["avg_popularity"] = rng.normal(120 + 80 * index, 15, n)
        frame["long_tail_share"] = np.clip(rng.normal(0.20 - 0.15 * index, 0.05, n), 0, 1)
        frame["miscalibration"] = np.clip(rng.normal(0.40 + 0.1 * female, 0.1, n), 0, None)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _group_labels(users: pd.DataFrame, attribute: str) -> pd.Series:
    parts = attribute.split("*")
    labels = users[parts[0]].astype(str)
    for part in parts[1:]:
        labels = labels + "*" + users[part].astype(str)
    return labels


def _tables(users: pd.DataFrame, user_metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n = len(users)
    weights = rng.multinomial(n, np.full(n, 1 / n), size=N_BOOT).astype(float)
    metric_rows, gap_rows = [], []
    for model, frame in user_metrics.groupby("model", sort=False):
        values = frame.set_index("user_id").loc[users["user_id"], list(PER_USER_METRICS)].to_numpy()
        for attribute in ("all", *ATTRIBUTES):
            labels = pd.Series("all", index=users.index) if attribute == "all" else _group_labels(users, attribute)
            groups = sorted(labels.unique())
            means = {}
            for group in groups:
                member = (labels == group).to_numpy()
                boot = (weights[:, member] @ values[member]) / weights[:, member].sum(1, keepdims=True)
                mean = values[member].mean(0)
                means[group] = (mean, boot, member)
                for j, metric in enumerate(PER_USER_METRICS):
                    metric_rows.append((model, attribute, group, metric, mean[j], *np.quantile(boot[:, j], [0.025, 0.975]),
                                        int(member.sum()), bool(member.sum() < MIN_GROUP_SIZE)))
            if attribute == "all":
                continue
            for group in groups:
                mean, boot, member = means[group]
                if member.sum() < MIN_GROUP_SIZE:
                    continue
                rest = ~member
                rest_mean = values[rest].mean(0)
                rest_boot = (weights[:, rest] @ values[rest]) / weights[:, rest].sum(1, keepdims=True)
                diff = mean - rest_mean
                lo, hi = np.quantile(boot - rest_boot, [0.025, 0.975], axis=0)
                z = np.abs(diff) / np.maximum((boot - rest_boot).std(0), 1e-12)
                p = np.clip(np.exp(-0.717 * z - 0.416 * z**2), 1e-4, 1.0)  # normal tail approximation
                for j, metric in enumerate(PER_USER_METRICS):
                    gap_rows.append((model, attribute, group, "rest", "rest", metric, diff[j], mean[j] / rest_mean[j],
                                     lo[j], hi[j], p[j]))
            tested = [g for g in groups if means[g][2].sum() >= MIN_GROUP_SIZE]
            if len(tested) < 2:
                continue
            sign = np.array([-1.0 if m in ("avg_popularity", "miscalibration") else 1.0 for m in PER_USER_METRICS])
            best = np.argmax(np.array([means[g][0] * sign for g in tested]), axis=0)
            for group in tested:
                mean, boot, _ = means[group]
                for j, metric in enumerate(PER_USER_METRICS):
                    ref = tested[best[j]]
                    if ref == group:
                        continue
                    diff_boot = boot[:, j] - means[ref][1][:, j]
                    diff = mean[j] - means[ref][0][j]
                    z = abs(diff) / max(diff_boot.std(), 1e-12)
                    gap_rows.append((model, attribute, group, "best", ref, metric, diff, mean[j] / means[ref][0][j],
                                     *np.quantile(diff_boot, [0.025, 0.975]),
                                     float(np.clip(np.exp(-0.717 * z - 0.416 * z**2), 1e-4, 1.0))))
    group_metrics = pd.DataFrame(metric_rows, columns=["model", "attribute", "group", "metric", "value", "ci_low",
                                                       "ci_high", "n_users", "flagged"])
    gaps = pd.DataFrame(gap_rows, columns=["model", "attribute", "group", "reference", "reference_group", "metric",
                                           "difference",
                                           "ratio", "ci_low", "ci_high", "p_value"])
    order = np.argsort(gaps["p_value"].to_numpy())
    m = len(order)
    ranked = gaps["p_value"].to_numpy()[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    gaps["p_adjusted"] = np.empty(m)
    gaps.loc[gaps.index[order], "p_adjusted"] = adjusted
    gaps["direction"] = (np.where(gaps["difference"] < 0, "lower", "higher") + " for " + gaps["group"] + " than for "
                         + gaps["reference_group"])
    return group_metrics, gaps


def _item_exposure(users: pd.DataFrame, models: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    catalogue = {"popularity_tier": {"head": 0.2, "mid": 0.3, "tail": 0.5},
                 "genre": {"Action": 0.3, "Comedy": 0.3, "Drama": 0.4}}
    for index, model in enumerate(models):
        skew = 0.25 + 0.2 * index
        for user_attribute in ("all", "gender"):
            groups = ["all"] if user_attribute == "all" else sorted(users["gender"].unique())
            for g_index, user_group in enumerate(groups):
                for item_attribute, shares in catalogue.items():
                    names = list(shares)
                    exposure = np.array(list(shares.values()))
                    exposure = exposure + skew * (np.array([1.0, 0.0, -1.0]) * (0.6 if g_index else 0.5)) * exposure.max()
                    exposure = np.clip(exposure, 0.01, None)
                    exposure /= exposure.sum()
                    for browsing in ("dcg", "rbp"):
                        for name, share, cat in zip(names, exposure, shares.values()):
                            rows.append((model, user_attribute, user_group, item_attribute, name, browsing,
                                         float(share), cat, float((share + cat) / 2)))
    return pd.DataFrame(rows, columns=["model", "user_attribute", "user_group", "item_attribute", "item_group",
                                       "browsing", "exposure_share", "catalogue_share", "relevance_share"])


def _recommendations(users: pd.DataFrame, models: tuple[str, ...], k: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frames = []
    for model in models:
        items = rng.integers(0, 200, size=(len(users), k))
        frames.append(pd.DataFrame({
            "model": model, "user_id": np.repeat(users["user_id"].to_numpy(), k),
            "rank": np.tile(np.arange(1, k + 1), len(users)), "item_id": [f"i{j}" for j in items.ravel()],
            "score": np.tile(np.linspace(1, 0.1, k), len(users)),
        }))
    return pd.concat(frames, ignore_index=True)


def audit_json(users: pd.DataFrame, models: tuple[str, ...], *, data_fingerprint: str = "d41d8cd98f00b204") -> dict:
    """The audit.json document of the fixture (same layout as ``fairaudit.audit.run_audit``'s meta)."""
    split = {"method": "random", "seed": 0, "params": {"test_fraction": 0.2}}
    return {
        "config": {
            "k": 10, "attributes": list(ATTRIBUTES), "item_attributes": ["popularity_tier", "genre"],
            "bootstrap_rounds": N_BOOT, "seed": 0, "min_group_size": MIN_GROUP_SIZE, "include_small_groups": False,
            "alpha": 0.05, "browsing": ["dcg", "rbp"], "rbp_gamma": 0.8, "split": split, "fdr_family": "audit",
            "data": {"source": "sample_data"},
        },
        "data": {"name": "sample", "fingerprint": data_fingerprint, "n_users": len(users), "n_items": 200,
                 "n_interactions": 20 * len(users)},
        "models": {
            m: {"kind": "llm" if i == 0 else "popularity",
                "params": {"encoder": "all-MiniLM-L6-v2", "epochs": 5, "dim": 64} if i == 0 else {},
                "fingerprint": f"{i + 1:016x}", "split": split, "data_fingerprint": data_fingerprint}
            for i, m in enumerate(models)
        },
        "n_evaluated_users": {m: len(users) for m in models},
        "versions": {"python": "3.11", "fairaudit": "0.1.0", "numpy": np.__version__, "pandas": pd.__version__},
        "seed": 0,
        "notes": ["3 interactions with unknown items were dropped"],
        "timestamp": "2026-11-23T08:00:00+00:00",
        "audit_id": "a1b2c3d4e5f6",
    }


def write_audit_folder(path: Path, *, n_users: int = 400, models: tuple[str, ...] = ("llm", "popularity"),
                       names: dict[str, str] | None = None, seed: int = 0,
                       data_fingerprint: str = "d41d8cd98f00b204", user_attributes: bool = True) -> Path:
    """Write the complete fixture audit folder to ``path`` and return it (users: :func:`make_users` with the same args).

    ``user_metrics.parquet`` carries the users' plain attribute columns after the metrics, as
    ``fairaudit.audit`` writes it; ``user_attributes=False`` gives the older layout without them.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    users = make_users(n_users, seed, names=names)
    user_metrics = make_user_metrics(users, models, seed=seed + 1)
    group_metrics, gaps = _tables(users, user_metrics)
    group_metrics.to_csv(path / "group_metrics.csv", index=False)
    gaps.to_csv(path / "gaps.csv", index=False)
    _item_exposure(users, models).to_csv(path / "item_exposure.csv", index=False)
    stored = user_metrics.merge(users, on="user_id", how="left") if user_attributes else user_metrics
    stored.to_parquet(path / "user_metrics.parquet", index=False)
    _recommendations(users, models).to_parquet(path / "recommendations.parquet", index=False)
    (path / "audit.json").write_text(json.dumps(audit_json(users, models, data_fingerprint=data_fingerprint), indent=2))
    return path


def write_optional_explanations(path: Path, models: tuple[str, ...] = ("llm", "popularity")) -> None:
    """Add ``probes.csv`` and ``shap_drivers.csv`` in the layout ``fairaudit.explain`` writes."""
    rows = []
    for model in models:
        for attribute, values in (("gender", ("F", "M")), ("age_band", ("18-24", "56+"))):
            for index, value in enumerate(values):
                estimate = 1.0 if model != models[0] else 0.80 + 0.08 * index
                rows.append((model, attribute, "all", value, "jaccard", estimate, estimate - 0.04 * (model == models[0]),
                             min(1.0, estimate + 0.04), 180))
                rows.append((model, attribute, values[1 - index], value, "jaccard", estimate, estimate - 0.05,
                             min(1.0, estimate + 0.05), 90))
            rows.append((model, attribute, "all", "all", "jaccard_snsr", 0.08 if model == models[0] else 0.0,
                         0.0, 0.12, 180))
    pd.DataFrame(rows, columns=["model", "attribute", "original_value", "counterfactual_value", "metric", "estimate",
                                "ci_low", "ci_high", "n_users"]).to_csv(Path(path) / "probes.csv", index=False)
    drivers = pd.DataFrame({"model": models[0], "metric": "ndcg",
                            "feature": ["history_length", "gender=F", "share_of_drama", "age_band=56+"],
                            "mean_abs_shap": [0.031, 0.022, 0.012, 0.004], "mean_shap": [0.01, -0.02, 0.0, 0.0],
                            "r2": 0.4, "n_users": 400})
    drivers.to_csv(Path(path) / "shap_drivers.csv", index=False)


def analysis_tables() -> dict[str, pd.DataFrame]:
    """One small example of each optional table written by the analyses (FaiRLLM probe, robustness,
    audits by period), with text values a CSV reader would mangle unless told they are text."""
    fairllm = pd.DataFrame({  # the FaiRLLM probe table (fairaudit.explain.fairllm_probe)
        "model": "llm", "attribute": "gender", "group": ["NA", "all"], "reference": ["neutral", "repeat"],
        "metric": ["jaccard", "jaccard_change_vs_noise"], "estimate": [0.8123456789012345, 0.1],
        "ci_low": [0.7, 0.0], "ci_high": [0.9, 0.2], "n_users": 60, "p_value": [float("nan"), 0.012],
    })
    robustness = pd.DataFrame({  # fairaudit.robustness.run_robustness
        "attack": "pgd", "strength": 0.1, "model": "pgd@0.1", "attribute": ["all", "gender"], "group": ["all", "NA"],
        "quantity": ["value", "gap"], "metric": "ndcg", "n_users": 60, "clean": [0.3123456789012345, -0.01],
        "attacked": [0.2, -0.03], "difference": [-0.1123456789012345, -0.02], "ci_low": [-0.12, -0.05],
        "ci_high": [-0.1, 0.01], "significant": [True, False],
    })
    periods = dict(  # fairaudit.dynamics.add_periods_to_audit (audit --by-period)
        period_metrics=pd.DataFrame({
            "period": ["2020-01", "2020-02"], "start": [1577836800, 1580515200], "end": [1580515200, 1583020800],
            "model": "llm", "attribute": "gender", "group": ["NA", "007"], "metric": "ndcg",
            "value": [0.3123456789012345, 0.2], "ci_low": [0.2, 0.1], "ci_high": [0.4, 0.3], "n_users": [12, 40],
            "flagged": [True, False],
        }),
        period_trends=pd.DataFrame({
            "model": "llm", "attribute": "gender", "group": ["NA"], "reference": "rest", "metric": "ndcg",
            "n_periods": [2], "first": [-0.01], "last": [-0.0312345678901234], "slope": [float("nan")],
            "slope_ci_low": [float("nan")], "slope_ci_high": [float("nan")], "p_value": [float("nan")],
            "p_adjusted": [float("nan")],
        }),
        exposure_drift=pd.DataFrame({
            "model": "llm", "period": ["2020-01", "2020-02"], "start": [1577836800, 1580515200],
            "user_attribute": "all", "user_group": "all", "item_attribute": "provider", "item_group": "indie",
            "exposure_share": [0.1, 0.0812345678901234], "reference_share": 0.1,
            "difference": [0.0, -0.0187654321098766], "total_variation": [0.0, 0.0187654321098766],
        }),
    )
    profiles = dict(  # fairaudit.profiles.run_profile_audit (python -m fairaudit profiles)
        profile_accuracy=pd.DataFrame({
            "model_a": "without_texts", "model_b": "with_texts", "attribute": ["all", "activity"],
            "group": ["all", "NA"], "quantity": "value", "metric": "ndcg", "n_users": [120, 60],
            "a": [0.2, 0.1], "b": [0.2123456789012345, 0.15], "difference": [0.0123456789012345, 0.05],
            "ci_low": [0.0, 0.01], "ci_high": [0.02, 0.09], "significant": [False, True],
        }),
        profile_leakage=pd.DataFrame({
            "representation": ["text_profile", "text_profile"], "reference": ["chance", "interactions"],
            "attribute": "gender", "metric": ["auc", "auc_difference"], "estimate": [0.9123456789012345, 0.3],
            "ci_low": [0.85, 0.2], "ci_high": [0.95, 0.4], "chance": [0.5, 0.0], "n_users": 60,
            "significant": [True, True],
        }),
        text_counterfactual=pd.DataFrame({
            "model": "with_texts", "attribute": "gender", "group": ["NA", "007"], "metric": "jaccard",
            "value": [0.6123456789012345, 1.0], "ci_low": [0.5, 1.0], "ci_high": [0.7, 1.0], "n_users": [12, 40],
            "flagged": [True, False],
        }),
    )
    mia = pd.DataFrame({  # fairaudit.privacy.membership_inference (python -m fairaudit privacy)
        "model": "llm", "attack": "rank", "attribute": ["all", "gender"], "group": ["all", "NA"],
        "n_users": [120, 12], "n_members": [960, 96], "n_non_members": [240, 24], "auc": [0.5312345678901234, 0.6],
        "ci_low": [0.52, 0.45], "ci_high": [0.54, 0.75], "flagged": [False, True],
    })
    privacy_cost = pd.DataFrame({  # fairaudit.privacy.privacy_cost (python -m fairaudit privacy-cost)
        "model_base": "llm", "model_dp": "llm_dp", "epsilon": [1.0, 0.9987654321098765], "side": ["user", "item"],
        "attribute": ["gender", "provider"], "group": ["NA", "indie"], "metric": ["ndcg", "exposure_share"],
        "n_users": [12, 120], "base": [0.2, 0.1], "dp": [0.1512345678901234, 0.08], "cost": [0.0487654321098766, 0.02],
        "cost_ci_low": [0.01, 0.005], "cost_ci_high": [0.09, 0.035], "excess_cost": [0.02, float("nan")],
        "excess_cost_ci_low": [-0.01, float("nan")], "excess_cost_ci_high": [0.05, float("nan")],
        "pays_more": [False, False],
    })
    return {"fairllm": fairllm, "robustness": robustness, **periods, **profiles, "mia": mia,
            "privacy_cost": privacy_cost}
