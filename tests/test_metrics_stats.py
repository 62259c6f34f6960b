"""Statistics: BH, bootstrap coverage, permutation null, SliceReport behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.metrics import SliceReport, benjamini_hochberg, bootstrap_sums, permutation_sums


def _bh_loop(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    for rank, i in enumerate(order, start=1):
        out[i] = min(1.0, min(p[order[j - 1]] * m / j for j in range(rank, m + 1)))
    return out


def test_benjamini_hochberg_hand_example_and_loop():
    # m = 4: sorted 0.01, 0.03, 0.04, 0.2 -> 0.04, min(0.06, 0.0533), 0.0533, 0.2
    assert benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2])).tolist() == pytest.approx(
        [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    )
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50) ** 3
    assert benjamini_hochberg(p) == pytest.approx(_bh_loop(p.tolist()), abs=1e-12)
    with_nan = benjamini_hochberg(np.array([0.5, np.nan, 0.01]))
    assert np.isnan(with_nan[1]) and with_nan[[0, 2]].tolist() == pytest.approx([0.5, 0.02])


def test_permutation_sums_preserve_group_sizes_and_totals():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(40, 2))
    defined = np.ones_like(values, dtype=bool)
    for labels in (np.repeat([0, 1], [15, 25]), np.repeat([0, 1, 2], [10, 10, 20])):
        n_labels = labels.max() + 1
        sums, counts = permutation_sums(values, defined, labels, n_labels, 30, np.random.default_rng(2))
        assert counts[:, :, 0].tolist() == [np.bincount(labels).tolist()] * 30
        assert sums.sum(axis=1) == pytest.approx(np.broadcast_to(values.sum(axis=0), (30, 2)))
        assert np.unique(sums[:, 0, 0]).size > 20  # labels really are shuffled


def test_bootstrap_sums_centre_and_nan_aware():
    values = np.arange(10.0)[:, None]
    defined = np.ones_like(values, dtype=bool)
    defined[0] = False
    sums, counts = bootstrap_sums(np.where(defined, values, 0), defined, 2000, np.random.default_rng(0))
    means = sums[:, 0] / counts[:, 0]
    assert means.mean() == pytest.approx(5.0, abs=0.05)  # mean of 1..9
    assert means.std() == pytest.approx(np.std(np.arange(1.0, 10.0)) / 3, rel=0.1)


def _frame(values: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.Series]:
    labels = np.concatenate([[g] * len(v) for g, v in values.items()])
    index = pd.Index([f"u{i}" for i in range(len(labels))])
    metric = np.concatenate(list(values.values()))
    return pd.DataFrame({"ndcg": metric}, index=index), pd.Series(labels, index=index)


def test_bootstrap_interval_covers_truth_on_simulated_data():
    rng = np.random.default_rng(5)
    covered = 0
    for rep in range(60):
        frame, groups = _frame({"F": rng.normal(0.3, 0.1, 80), "M": rng.normal(0.5, 0.1, 120)})
        report = SliceReport(frame, groups, rounds=300, seed=rep)
        rows = report.by_group.set_index("group")
        covered += rows.loc["F", "ci_low"] <= 0.3 <= rows.loc["F", "ci_high"]
        gap = report.gaps("rest").set_index("group").loc["F"]
        assert gap["ci_high"] < 0 and gap["difference"] == pytest.approx(
            frame["ndcg"][groups == "F"].mean() - frame["ndcg"][groups == "M"].mean()
        )
    assert 0.85 <= covered / 60 <= 1.0


def test_permutation_p_values_roughly_uniform_under_null():
    rng = np.random.default_rng(7)
    p = []
    for rep in range(120):
        frame, groups = _frame({"A": rng.exponential(1, 40), "B": rng.exponential(1, 60), "C": rng.exponential(1, 50)})
        p += SliceReport(frame, groups, rounds=199, seed=rep).gaps("rest")["p_value"].tolist()
    p = np.array(p)
    assert 0.01 <= (p < 0.05).mean() <= 0.10
    assert 0.4 <= p.mean() <= 0.6
    assert p.min() >= 1 / 200


def test_slice_report_means_flags_best_and_reproducibility():
    rng = np.random.default_rng(0)
    frame, groups = _frame({"a": rng.uniform(0, 1, 50), "b": rng.uniform(0.5, 1.5, 40), "tiny": rng.uniform(0, 1, 5)})
    frame["miscalibration"] = rng.uniform(0, 1, len(frame))
    frame.iloc[[0, 1], 1] = np.nan
    report = SliceReport(frame, groups, rounds=100, seed=3, min_group_size=30,
                         higher_is_better={"miscalibration": False})  # fmt: skip
    table = report.by_group.set_index(["group", "metric"])
    direct = frame.groupby(groups).mean()
    for (group, metric), row in table.iterrows():
        assert row["value"] == pytest.approx(direct.loc[group, metric], abs=1e-12)
    assert table.loc[("a", "miscalibration"), "n_users"] == 48
    assert table.loc[("tiny", "ndcg"), "flagged"] and not table.loc[("a", "ndcg"), "flagged"]

    rest = report.gaps("rest")
    assert "tiny" not in set(rest["group"])
    best = report.gaps("best").set_index("metric")
    assert best.loc["ndcg", "reference_group"] == "b" and best.loc["ndcg", "group"] == "a"
    lower = direct.loc[["a", "b"], "miscalibration"].idxmin()
    assert best.loc["miscalibration", "reference_group"] == lower

    with_small = SliceReport(frame, groups, rounds=100, seed=3, include_small_groups=True).gaps("rest")
    assert "tiny" in set(with_small["group"])

    again = SliceReport(frame, groups, rounds=100, seed=3, min_group_size=30,
                        higher_is_better={"miscalibration": False})  # fmt: skip
    pd.testing.assert_frame_equal(again.by_group, report.by_group)
    pd.testing.assert_frame_equal(again.gaps("best"), report.gaps("best"))
    other = SliceReport(frame, groups, rounds=100, seed=4).by_group
    assert not np.allclose(other["ci_low"], report.by_group["ci_low"])


def test_slice_report_errors():
    frame, groups = _frame({"a": np.ones(3)})
    with pytest.raises(ValueError, match="Group labels must cover every user"):
        SliceReport(frame, groups.iloc[:2])
    with pytest.raises(ValueError, match="rounds must be a positive integer"):
        SliceReport(frame, groups, rounds=0)
    with pytest.raises(ValueError, match="Unknown gap reference 'worst'"):
        SliceReport(frame, groups, rounds=5).gaps("worst")


def test_two_groups_give_identical_rest_and_best_p_values():
    """With two testable groups, "vs best" is "vs rest": same statistic, same permutations, same p-value."""
    rng = np.random.default_rng(11)
    frame, groups = _frame({"F": rng.exponential(1.0, 70), "M": rng.exponential(1.2, 130)})
    frame["hit_rate"] = (rng.random(len(frame)) < 0.3).astype(float)  # many ties in the permutation null
    report = SliceReport(frame, groups, rounds=299, seed=2)
    rest = report.gaps("rest").set_index(["group", "metric"])
    best = report.gaps("best").set_index(["group", "metric"])
    assert len(best) == 2
    for key, row in best.iterrows():
        assert row["p_value"] == rest.loc[key, "p_value"], key
        assert row["difference"] == pytest.approx(rest.loc[key, "difference"], abs=1e-12)
        assert row["mdg"] == pytest.approx(rest.loc[key, "mdg"], rel=1e-9)


def test_best_p_value_uses_the_range_of_group_means():
    rng = np.random.default_rng(5)
    frame, groups = _frame({g: rng.normal(0, 1, 60) for g in "abcd"})
    report = SliceReport(frame, groups, rounds=199, seed=1)
    best = report.gaps("best")
    null = report._null.sums / report._null.counts
    spread = null.max(axis=1) - null.min(axis=1)  # (rounds, metrics)
    for row in best.itertuples():
        expected = (1 + (spread[:, 0] >= abs(row.difference) * (1 - 1e-12)).sum()) / 200
        assert row.p_value == pytest.approx(expected)
    # the worst group's p-value is the smallest, and no vs-best p-value is below its vs-rest one by chance alone
    assert best.set_index("group")["p_value"].idxmin() == best.set_index("group")["difference"].abs().idxmax()


def test_minimum_detectable_gap_shrinks_with_group_size_and_is_powered():
    rng = np.random.default_rng(3)
    small, _ = _frame({"a": rng.normal(0, 1, 40), "b": rng.normal(0, 1, 400)})
    large, _ = _frame({"a": rng.normal(0, 1, 400), "b": rng.normal(0, 1, 400)})
    mdg_small = SliceReport(small, _frame({"a": np.zeros(40), "b": np.zeros(400)})[1], rounds=299).gaps("rest")
    mdg_large = SliceReport(large, _frame({"a": np.zeros(400), "b": np.zeros(400)})[1], rounds=299).gaps("rest")
    # normal theory: (z_.975 + z_.8) * sd * sqrt(1/n1 + 1/n2)
    assert mdg_small["mdg"].iloc[0] == pytest.approx(2.80 * np.sqrt(1 / 40 + 1 / 400), rel=0.15)
    assert mdg_large["mdg"].iloc[0] == pytest.approx(2.80 * np.sqrt(2 / 400), rel=0.15)
