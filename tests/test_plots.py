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
    trace = plots.gap_forest_chart(gaps, metric="ndcg", model="llm", alpha=alpha).data[0]
    drawn = dict(zip(trace.y, trace.marker.color))
    for row in rows.itertuples():
        excludes_zero = row.ci_low > 0 or row.ci_high < 0
        expected = plots.GAP_FLAG if row.p_adjusted < alpha else plots.GAP_NOMINAL if excludes_zero else plots.GAP_OK
        assert drawn[f"{row.attribute} = {plots.safe_label(row.group)}"] == expected, row
    assert plots.GAP_FLAG in trace.marker.color and plots.GAP_OK in trace.marker.color


def test_forest_never_draws_an_interval_excluding_zero_as_no_gap():
    # Uncorrected CIs exclude 0 for F and X, but only F survives the BH correction: X is marked open orange,
    # so the colour always agrees with the interval drawn; the legend names all three markers.
    gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": ["X", "F", "M"], "reference": "rest",
                         "metric": "ndcg", "difference": [-.05, -.1, .01], "ci_low": [-.09, -.15, -.02],
                         "ci_high": [-.01, -.05, .04], "p_adjusted": [.2, .01, .7]})
    fig = plots.gap_forest_chart(gaps, metric="ndcg", model="m")
    trace = fig.data[0]
    assert list(trace.y) == ["g = F", "g = M", "g = X"]  # natural order
    assert list(trace.marker.color) == [plots.GAP_FLAG, plots.GAP_OK, plots.GAP_NOMINAL]
    assert list(trace.marker.symbol) == ["diamond", "diamond", "diamond-open"]
    assert [t.name for t in fig.data[1:]] == ["BH-adjusted p < 0.05", "CI excludes 0, not significant after BH "
                                              "correction", "CI includes 0"]
    assert "95% bootstrap CI (uncorrected)" in fig.layout.xaxis.title.text


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
    assert heat.data[0].customdata.sum(axis=1) == pytest.approx([1.0, 1.0])  # shares within each user group


def test_exposure_heatmap_colours_the_deviation_from_the_catalogue_share(tables):
    ie = tables["item_exposure"]
    rows = ie[(ie["model"] == "llm") & (ie["user_attribute"] == "gender") & (ie["item_attribute"] == "genre")
              & (ie["browsing"] == "dcg")]
    heat = plots.exposure_by_user_group_chart(ie, user_attribute="gender", item_attribute="genre", model="llm",
                                              browsing="dcg").data[0]
    deviation = rows.pivot_table(index="user_group", columns="item_group", values="exposure_share") - \
        rows.pivot_table(index="user_group", columns="item_group", values="catalogue_share")
    deviation = deviation.reindex(index=plots.natural_order(rows["user_group"]),
                                  columns=plots.natural_order(rows["item_group"]))
    assert heat.z == pytest.approx(deviation.to_numpy())
    # A diverging scale centred on 0 that spans the largest deviation (not 0-100%: small shares stay visible).
    assert heat.zmid == 0 and heat.zmax == pytest.approx(abs(deviation.to_numpy()).max()) and heat.zmin == -heat.zmax
    assert heat.zmax < 0.5


def test_natural_order_of_group_values():
    assert plots.natural_order(["25-34", "Under 18", "55+", "18-24", "unknown", "35-44"]) == \
        ["Under 18", "18-24", "25-34", "35-44", "55+", "unknown"]
    assert plots.natural_order(["heavy", "light", "medium"]) == ["light", "medium", "heavy"]
    assert plots.natural_order(["tail", "mid", "head"]) == ["head", "mid", "tail"]
    assert plots.natural_order(["West", "South", "Midwest"]) == ["Midwest", "South", "West"]
    assert plots.natural_order(["M*55+", "F*Under 18", "F*25-34"]) == ["F*Under 18", "F*25-34", "M*55+"]


def test_charts_draw_groups_in_natural_order():
    gm = pd.DataFrame({"model": "m", "attribute": "age_band", "group": ["55+", "18-24", "Under 18"],
                       "metric": "ndcg", "value": [.2, .3, .4], "ci_low": [.1, .2, .3], "ci_high": [.3, .4, .5],
                       "n_users": [40, 40, 20], "flagged": [False, False, True]})
    bar = plots.group_metric_chart(gm, metric="ndcg", attribute="age_band").data[0]
    assert list(bar.x) == ["Under 18", "18-24", "55+"] and list(bar.y) == [.4, .3, .2]
    assert bar.text == ("n<30", "", "")
    assert bar.insidetextanchor == "start"  # the n<30 label sits at the bar's foot, clear of the error bar
    dots = plots.diversity_calibration_chart(gm.assign(metric="novelty"), attribute="age_band",
                                             metrics=("novelty",)).data[0]
    assert list(dots.x) == ["Under 18", "18-24", "55+"]


def test_reference_lines_are_labelled(tables):
    gm = tables["group_metrics"]
    fig = plots.group_metric_chart(gm, metric="ndcg", attribute="gender", model="llm")
    overall = gm[(gm["model"] == "llm") & (gm["attribute"] == "all") & (gm["metric"] == "ndcg")]["value"].iloc[0]
    (line,) = [a for a in fig.layout.annotations]
    assert line.text == f"all users: {overall:.3f}"
    forest = plots.gap_forest_chart(tables["gaps"], metric="ndcg", model="llm")
    assert [a.text for a in forest.layout.annotations] == ["no gap"]


def test_diversity_axes_span_the_intervals_not_zero(tables):
    gm = tables["group_metrics"]
    fig = plots.diversity_calibration_chart(gm, attribute="gender", model="llm", metrics=("novelty",))
    rows = gm[(gm["model"] == "llm") & (gm["attribute"] == "gender") & (gm["metric"] == "novelty")]
    low, high = fig.layout.yaxis.range
    assert low > 0 and low < rows["ci_low"].min() and high > rows["ci_high"].max()
    assert high - low < 2 * (rows["ci_high"].max() - rows["ci_low"].min())


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


def test_local_shap_chart_is_signed_and_sorted_by_magnitude():
    explanation = pd.DataFrame({"label": [f"history: Film {i}" for i in (1, 2, 10, 11)] + ["profile: gender = F"],
                                "shap_value": [0.01, -0.2, 0.05, -0.03, 0.1]})
    bar = plots.local_shap_chart(explanation).data[0]
    assert list(bar.y) == ["history: Film 2", "profile: gender = F", "history: Film 10", "history: Film 11",
                           "history: Film 1"]  # by |value|, never as text (1, 10, 11, 2)
    assert list(bar.x) == pytest.approx([-0.2, 0.1, 0.05, -0.03, 0.01])
    assert list(bar.marker.color) == [plots.SHAP_DOWN, plots.SHAP_UP, plots.SHAP_UP, plots.SHAP_DOWN, plots.SHAP_UP]
    folded = plots.local_shap_chart(explanation.assign(kind=["history"] * 4 + ["other"])).data[0]
    assert folded.y[-1] == "profile: gender = F"  # the folded rest ("other") is drawn last, whatever its size
    long = plots.local_shap_chart(pd.DataFrame({"label": ["history: " + "A" * 50], "shap_value": [0.1]}))
    assert long.data[0].y[0] == "history: " + "A" * 50  # 59 characters: drawn in full


def test_readable_local_explanation_keeps_the_sum_and_drops_punctuation_players():
    from fairaudit.explain import readable_explanation

    tokens = ["(", " The", " Matrix", ")", ".", " "]
    frame = pd.DataFrame({
        "kind": ["history"] * 20 + ["profile"] + ["text"] * len(tokens),
        "feature": [f"i{i}" for i in range(20)] + ["gender"] + [str(i) for i in range(len(tokens))],
        "feature_value": [f"Film {i}" for i in range(20)] + ["F"] + tokens,
        "shap_value": [0.001 * (i + 1) * (-1) ** i for i in range(20)] + [-0.5] + [0.01, 0.2, -0.3, 0.02, 0.03, 0.0]})
    shown = readable_explanation(frame, top=6)
    assert shown["shap_value"].sum() == pytest.approx(frame["shap_value"].sum())  # nothing is lost, only folded
    assert shown["label"].tolist()[:4] == ["profile: gender = F", "word: Matrix", "word: The", "punctuation and spaces "
                                           "(4 tokens)"]
    assert shown["label"].iloc[-1] == "19 other features" and len(shown) == 6  # 24 players: 5 shown + the rest
    assert not any(label in ("word: (", "word: )", "word: .") for label in shown["label"])


def test_gap_breakdown_sums_contributions_by_role_in_natural_order():
    decomposition = pd.DataFrame({
        "metric": "ndcg", "attribute": "age_band", "reference": "rest",
        "group": ["55+"] * 3 + ["Under 18"] * 3,
        "feature": ["age_band", "gender", "activity"] * 2,
        "role": ["own attribute", "other attribute", "behaviour"] * 2,
        "contribution": [-0.02, 0.005, -0.01, 0.03, 0.0, 0.01], "observed_gap": [-0.03] * 3 + [0.05] * 3})
    fig = plots.gap_breakdown_chart(decomposition, attribute="age_band", k=5)
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert list(bars) == ["own attribute", "other attribute", "behaviour"]
    assert list(bars["own attribute"].y) == ["Under 18", "55+"]
    assert list(bars["behaviour"].x) == pytest.approx([0.01, -0.01])
    (observed,) = [t for t in fig.data if t.type == "scatter"]
    assert list(observed.x) == pytest.approx([0.05, -0.03]) and fig.layout.barmode == "relative"
    assert "NDCG@5" in fig.layout.title.text


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
