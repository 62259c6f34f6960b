"""Figures from the tidy audit tables: titles and axes name metric and K, small groups and significant
gaps are marked, user text is escaped, and bad input gives the documented messages."""

from __future__ import annotations

import pandas as pd
import pytest

from audit_fixture import write_audit_folder, write_optional_explanations
from fairaudit import plots
from fairaudit.plots import _MISSING_COLUMNS, _NO_ROWS


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = write_audit_folder(tmp_path_factory.mktemp("audit"), n_users=240,
                                names={"F": "<b>x</b>", "West": "W" * 60})
    write_optional_explanations(folder)
    return {name: pd.read_csv(folder / f"{name}.csv", keep_default_na=False)
            for name in ("group_metrics", "gaps", "item_exposure", "probes", "shap_drivers")}


def all_figures(t):
    gm, gaps, ie = t["group_metrics"], t["gaps"], t["item_exposure"]
    return {
        "group_metric": plots.group_metric_chart(gm, metric="ndcg", attribute="age_band", k=10),
        "gap_forest": plots.gap_forest_chart(gaps, metric="ndcg", model="llm", k=10),
        "exposure_share": plots.exposure_share_chart(ie, item_attribute="popularity_tier", model="llm", k=10),
        "exposure_by_user_group": plots.exposure_by_user_group_chart(
            ie, user_attribute="gender", item_attribute="genre", model="llm", k=10),
        "diversity": plots.diversity_calibration_chart(gm, attribute="gender", k=10),
        "tradeoff": plots.tradeoff_chart(gm, gaps, metric="ndcg", attribute="gender", k=10),
        "probe": plots.probe_chart(t["probes"], k=10),
        "shap": plots.shap_bar_chart(t["shap_drivers"]),
    }


def test_every_figure_has_title_and_axis_labels(tables):
    for name, fig in all_figures(tables).items():
        assert fig.layout.title.text, name
        assert fig.layout.xaxis.title.text or name == "diversity", name
        assert fig.layout.template.layout.font.family.startswith("DejaVu Sans"), name


def test_metric_figures_name_the_metric_and_k(tables):
    figures = all_figures(tables)
    assert figures["group_metric"].layout.yaxis.title.text == "NDCG@10"
    assert "NDCG@10" in figures["gap_forest"].layout.xaxis.title.text
    assert "@10" in figures["exposure_share"].layout.yaxis.title.text
    assert "NDCG@10" in figures["tradeoff"].layout.xaxis.title.text
    assert "NDCG@10" in figures["tradeoff"].layout.yaxis.title.text
    titles = [a.text for a in figures["diversity"].layout.annotations]
    assert "Novelty@10 (bits)" in titles and "Miscalibration (KL)@10" in titles


def test_small_groups_are_grey_hatched_and_labelled(tables):
    fig = plots.group_metric_chart(tables["group_metrics"], metric="ndcg", attribute="age_band", model="llm")
    bar = fig.data[0]
    small = list(bar.x).index("56+")
    assert bar.marker.color[small] == plots.SMALL_GROUP
    assert bar.marker.pattern.shape[small] == "/"
    assert bar.text[small] == "n<30"
    assert all(c != plots.SMALL_GROUP for i, c in enumerate(bar.marker.color) if i != small)
    hidden = plots.group_metric_chart(tables["group_metrics"], metric="ndcg", attribute="age_band", model="llm",
                                      show_flagged=False)
    assert "56+" not in hidden.data[0].x


def test_error_bars_are_the_ci(tables):
    gm = tables["group_metrics"]
    row = gm[(gm["model"] == "llm") & (gm["attribute"] == "age_band") & (gm["metric"] == "ndcg")].iloc[0]
    bar = plots.group_metric_chart(gm, metric="ndcg", attribute="age_band", model="llm").data[0]
    assert bar.y[0] == pytest.approx(row.value)
    assert bar.error_y.array[0] == pytest.approx(row.ci_high - row.value)
    assert bar.error_y.arrayminus[0] == pytest.approx(row.value - row.ci_low)


def test_forest_colours_follow_bh_significance(tables):
    gaps = tables["gaps"]
    rows = gaps[(gaps["model"] == "llm") & (gaps["metric"] == "ndcg") & (gaps["reference"] == "rest")]
    alpha = float(rows["p_adjusted"].median())  # some gaps on each side of the level
    colours = plots.gap_forest_chart(gaps, metric="ndcg", model="llm", alpha=alpha).data[0].marker.color
    expected = [plots.GAP_FLAG if p < alpha else plots.GAP_OK for p in rows["p_adjusted"]]
    assert list(colours) == expected
    assert plots.GAP_FLAG in colours and plots.GAP_OK in colours


def test_user_text_is_escaped_and_shortened(tables):
    fig = plots.group_metric_chart(tables["group_metrics"], metric="ndcg", attribute="gender")
    assert "&lt;b&gt;x&lt;/b&gt;" in fig.data[0].x and "<b>x</b>" not in fig.data[0].x
    region = plots.group_metric_chart(tables["group_metrics"], metric="ndcg", attribute="region").data[0].x
    long = [x for x in region if x.startswith("WWW")][0]
    assert len(long) == plots.MAX_LABEL and long.endswith("…")


def test_exposure_chart_values_are_the_table_shares(tables):
    ie = tables["item_exposure"]
    rows = ie[(ie["model"] == "llm") & (ie["user_attribute"] == "all") & (ie["item_attribute"] == "genre")
              & (ie["browsing"] == "dcg")]
    fig = plots.exposure_share_chart(ie, item_attribute="genre", model="llm", browsing="dcg")
    assert list(fig.data[0].y) == pytest.approx(rows["exposure_share"].tolist())
    assert list(fig.data[1].y) == pytest.approx(rows["catalogue_share"].tolist())
    assert list(fig.data[2].y) == pytest.approx(rows["relevance_share"].tolist())
    heat = plots.exposure_by_user_group_chart(ie, user_attribute="gender", item_attribute="genre", model="llm")
    assert heat.data[0].z.sum(axis=1) == pytest.approx([1.0, 1.0])  # shares within each user group


def test_tradeoff_uses_the_largest_absolute_gap(tables):
    gm, gaps = tables["group_metrics"], tables["gaps"]
    fig = plots.tradeoff_chart(gm, gaps, metric="ndcg", attribute="gender")
    rows = gaps[(gaps["attribute"] == "gender") & (gaps["metric"] == "ndcg") & (gaps["reference"] == "rest")]
    for trace in fig.data:
        expected = rows[rows["model"] == trace.name]["difference"].abs().max()
        assert trace.y[0] == pytest.approx(expected)


def test_probe_chart_uses_pooled_rows_of_one_model(tables):
    probes = tables["probes"]
    pooled = probes[(probes["original_value"] == "all") & (probes["counterfactual_value"] != "all")]
    fig = plots.probe_chart(probes, model="llm", metric="jaccard")
    expected = pooled[(pooled["model"] == "llm") & (pooled["metric"] == "jaccard")]
    assert [y for t in fig.data for y in t.y] == [f"{a} = {v}" for a, v in zip(expected["attribute"],
                                                                                expected["counterfactual_value"])]
    assert [x for t in fig.data for x in t.x] == pytest.approx(expected["estimate"].tolist())
    other = plots.probe_chart(probes, model="popularity")
    assert all(x == 1.0 for t in other.data for x in t.x) and "popularity" in other.layout.title.text
    simple = pd.DataFrame({"attribute": "g", "value": ["a", "b"], "metric": "prag", "estimate": [0.5, 0.6],
                           "ci_low": [0.4, 0.5], "ci_high": [0.6, 0.7]})
    assert list(plots.probe_chart(simple).data[0].y) == ["g = a", "g = b"]


def test_shap_chart_follows_the_table(tables):
    shap = plots.shap_bar_chart(tables["shap_drivers"], top=2)
    assert list(shap.data[0].y) == ["history_length", "gender=F"]
    assert list(shap.data[0].x) == pytest.approx([0.031, 0.022])
    assert "NDCG@10" in shap.layout.title.text


def test_bad_input_messages(tables):
    with pytest.raises(ValueError) as err:
        plots.group_metric_chart(tables["group_metrics"], metric="nope", attribute="gender")
    assert str(err.value) == _NO_ROWS.format("group_metrics.csv", "metric='nope', attribute='gender', model=None")
    with pytest.raises(KeyError) as err:
        plots.shap_bar_chart(pd.DataFrame({"feature": ["a"]}))
    assert _MISSING_COLUMNS.format("shap_drivers.csv", ["mean_abs_shap"]) in str(err.value)


def test_pareto_chart_highlights_the_front_with_ci_bars():
    # Accuracy up, exposure gap toward 0: λ=0.5 is beaten by λ=1 on both (0.27 > 0.26, |0.01| < |-0.03|).
    sweep = pd.DataFrame({
        "mitigation": "rerank_exposure", "strength": [0.0, 0.5, 1.0], "accuracy_metric": "ndcg",
        "accuracy": [0.30, 0.26, 0.27], "accuracy_ci_low": [0.28, 0.24, 0.25], "accuracy_ci_high": [0.32, 0.28, 0.29],
        "target_metric": "exposure_gap", "target_goal": "zero", "target": [-0.10, -0.03, 0.01],
        "target_ci_low": [-0.12, -0.05, -0.01], "target_ci_high": [-0.08, -0.01, 0.04],
    })
    fig = plots.pareto_chart(sweep, k=20)
    front, dominated = fig.data
    assert (front.name, dominated.name) == ("Pareto front", "dominated")
    assert front.text == ("λ=0", "λ=1") and dominated.text == ("λ=0.5",)
    assert front.marker.color != dominated.marker.color == plots.DOMINATED
    assert list(front.y) == [0.30, 0.27] and "lines" in front.mode and "lines" not in dominated.mode
    assert list(front.error_x.arrayminus) == pytest.approx([0.02, 0.02])
    assert list(front.error_x.array) == pytest.approx([0.02, 0.03])
    assert list(dominated.error_y.array) == pytest.approx([0.02])
    assert "NDCG@20" in fig.layout.title.text and "closer to 0 is better" in fig.layout.xaxis.title.text
    # With the goal "low" the most negative gap is best: λ=0 now dominates λ=0.5.
    low = plots.pareto_chart(sweep.assign(target_goal="low"))
    assert low.data[0].text == ("λ=0",) and low.data[1].text == ("λ=0.5", "λ=1")


def test_pareto_chart_names_missing_columns():
    with pytest.raises(KeyError, match=r"Table sweep.csv lacks column\(s\) \['mitigation'"):
        plots.pareto_chart(pd.DataFrame({"strength": [0.0]}))
