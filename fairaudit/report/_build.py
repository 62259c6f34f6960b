"""Assemble the audit PDF from an audit folder: sections, tables and the dashboard's charts."""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

import fairaudit
from fairaudit import plots
from fairaudit.audit import ALL, AuditResult, select_rows
from fairaudit.data import check_pdf_target, write_bytes_atomic
from fairaudit.metrics import METRICS
from fairaudit.models import privacy_summary
from fairaudit.models._encoder import DEFAULT_ENCODER
from fairaudit.plots import metric_label
from fairaudit.report._charts import ChartRenderer
from fairaudit.report._document import Paper, ReportPDF, render_toc
from fairaudit.report._robustness import robustness_section
from fairaudit.report._dynamics import periods_section
from fairaudit.report._fairllm import fairllm_section
from fairaudit.report._privacy import has_privacy, privacy_section
from fairaudit.report._profiles import profiles_section
from fairaudit.report._findings import audit_findings
from fairaudit.report._rules import (
    RATIO_METRICS,
    Thresholds,
    by_severity,
    check_counts,
    format_number as fmt,
)

DEFAULT_TITLE = "Fairness audit of recommender models"
#: Per-user metrics beyond accuracy (with RATIO_METRICS: every per-user metric of the registry).
DIVERSITY = tuple(m.name for m in METRICS.where(level="user") if m.family != "accuracy")
#: Metrics whose gaps, and the comparison's per-group gap changes, are tabulated in full (every gap is in
#: gaps.csv and in the threshold checks; every gap change in ``python -m fairaudit compare``'s comparison.csv).
GAP_TABLE_METRICS = METRICS.names(family="accuracy", headline=True)
#: How the audit grouped its gap tests for the Benjamini-Hochberg correction (``fdr_family`` in audit.json).
_FDR_FAMILIES = {
    "attribute": "within each attribute (all models, groups, metrics and references of that attribute): one family "
                 "per audited question, so a strong effect of one attribute cannot lower the bar for another",
    "model": "within each model and attribute (the groups, metrics and references of one model's attribute): each "
             "model is judged as if audited alone",
    "audit": "across all gaps of the audit (all models, attributes, groups, metrics and references): strong effects "
             "of one attribute lower the bar for every other",
}
_FDR_UNKNOWN = "over the family of gaps recorded by the audit engine (fdr_family not recorded in audit.json)"
#: Said in the comparison section of a multi-model folder that holds no comparison.csv.
NO_COMPARISON = ("Not computed: the audit folder holds no comparison.csv; add it with `python -m fairaudit compare "
                 "AUDIT_DIR` (or fairaudit.compare.add_comparison before writing the audit) and rebuild the report.")
#: Probe metrics drawn as charts (every pooled probe row is in the table).
PROBE_CHART_METRICS = ("jaccard", "prag")
#: Features listed and drawn per model and metric in the SHAP section.
SHAP_TOP = 15
#: Table-of-contents lines that fit on one page (Letter, the shorter paper, holds 40 lines of 5.5 mm).
TOC_LINES_PER_PAGE = 40
#: Findings listed in the executive summary (all of them are on the dashboard's Audit page).
SUMMARY_FINDINGS = 8
_SOFTWARE = ("fairaudit", "fpdf2", "plotly", "kaleido", "pandas", "numpy")


def _ci(value: float, low: float, high: float) -> str:
    """``value [low, high]``, or just ``value`` when the interval is a point (no CI in the audit)."""
    if low == high == value:
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def build_report(
    audit_dir: str | Path,
    out_pdf: str | Path,
    *,
    organisation: str | None = None,
    title: str | None = None,
    thresholds: Thresholds | Mapping[str, float] | None = None,
    paper: Paper = "A4",
    date: dt.date | None = None,
    charts: bool = True,
) -> Path:
    """Write the audit PDF for ``audit_dir`` to ``out_pdf`` and return its path.

    Parameters
    ----------
    audit_dir : path
        An audit folder (``fairaudit.audit.write_audit``), read with ``AuditResult.read``; its optional
        ``probes.csv``, ``shap_drivers.csv`` and, for several models, ``comparison.csv`` and
        ``verdicts.csv`` (:func:`fairaudit.compare.add_comparison`) are drawn when present. Nothing is
        recomputed: every number is one the folder holds.
    out_pdf : path
        Where to write the PDF (atomically). A folder, or an existing file that is not a PDF, is
        refused before any work (:class:`fairaudit.data.OutputError`); an earlier PDF is replaced.
    organisation, title : str, optional
        Printed on the cover (as literal text).
    thresholds : Thresholds or mapping, optional
        Limits of the pass/attention/fail checks (default :class:`Thresholds`).
    paper : {"A4", "Letter"}
        Page size.
    date : date, optional
        Report date (default: today, UTC). The PDF depends only on the audit folder, the arguments
        and the installed software: the same inputs and date give byte-identical files.
    charts : bool
        Embed the charts (kaleido + Chromium); ``False`` gives a text-only report.

    Examples
    --------
    >>> build_report("missing-folder", "x.pdf")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fairaudit.audit.MissingAuditFileError: Audit folder 'missing-folder' lacks ...
    """
    check_pdf_target(out_pdf)
    audit = AuditResult.read(audit_dir)
    if not isinstance(thresholds, Thresholds):
        thresholds = Thresholds.from_mapping(thresholds)
    date = date or dt.datetime.now(dt.timezone.utc).date()
    title = title or DEFAULT_TITLE
    audit_id = str(audit.meta.get("audit_id", "not recorded"))
    pdf = ReportPDF(paper=paper, running_title=title, footer_note=f"Audit {audit_id} - {date.isoformat()}",
                    creation_date=dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc))
    sections = _Sections(audit, thresholds)
    sections.write(_NullPDF(), title=title, organisation=organisation, date=date)  # plan: gathers the charts
    figures = [f if isinstance(f, go.Figure) else None for f in sections.charts]
    with ChartRenderer(figures, enabled=charts) as renderer:
        sections.write(pdf, title=title, organisation=organisation, date=date, renderer=renderer)
    return write_bytes_atomic(out_pdf, bytes(pdf.output()))


class _NullPDF:
    """Stands in for the PDF while the sections are planned: every call does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class _Sections:
    """Writes each section of the report onto a PDF.

    :meth:`write` runs twice: first onto a :class:`_NullPDF`, which only gathers the charts (so
    they can render in the background), then onto the real PDF, placing them in the same order.
    """

    def __init__(self, audit: AuditResult, thresholds: Thresholds) -> None:
        self.audit, self.thresholds = audit, thresholds
        self.config = audit.config
        #: audit.json's config as recorded (the methodology says "not recorded" rather than assume a default).
        self.recorded = dict(audit.meta.get("config") or {})
        self.k = self.config.k
        #: The ranked findings (the Audit page's, from the same function) and every check behind them.
        self.findings = audit_findings(audit, thresholds)
        self.checks = self.findings.checks
        #: Each planned chart: its figure, or the message saying why it could not be drawn.
        self.charts: list[go.Figure | str] = []
        self.pdf: Any = None
        self.renderer: ChartRenderer | None = None
        self._placed = 0

    def write(self, pdf: Any, *, title: str, organisation: str | None, date: dt.date,
              renderer: ChartRenderer | None = None) -> None:
        self.pdf, self.renderer, self._placed = pdf, renderer, 0
        self.cover(title, organisation, date)
        self.pdf.add_page()
        n_models, n_attributes = len(self.audit.models), len(self.audit.attributes)
        entries = 24 + 3 * n_models + 2 * n_attributes  # an upper bound of the headings written below
        self.pdf.insert_toc_placeholder(render_toc, pages=1 + (entries - 1) // TOC_LINES_PER_PAGE)
        self.summary()
        self.data()
        self.model_cards()
        self.results()
        self.explanations()
        if self.audit.fairllm is not None:
            fairllm_section(self.pdf, self.audit.fairllm, self.chart)
        if self.audit.robustness is not None:
            robustness_section(self.pdf, self.audit.robustness, self.audit.meta.get("robustness"))
        if self.audit.period_metrics is not None:
            periods_section(self.pdf, self.audit, self.chart)
        if has_privacy(self.audit):
            privacy_section(self.pdf, self.audit, self.chart)
        if self.audit.profile_leakage is not None or self.audit.text_counterfactual is not None:
            profiles_section(self.pdf, self.audit)
        if n_models > 1:
            self.comparison()
        self.methodology()
        self.appendix()

    # ---- helpers ---------------------------------------------------------------------------
    def chart(self, make: Any, caption: str | None = None) -> None:
        """Plan the chart ``make()`` (first pass) or place it (second pass)."""
        if self.renderer is None:
            try:
                self.charts.append(make())
            except (KeyError, ValueError) as err:
                self.charts.append(f"Chart not drawn: {err}")
            return
        index, self._placed = self._placed, self._placed + 1
        planned = self.charts[index]
        if isinstance(planned, str):
            self.pdf.paragraph(planned, style="I", size=8)
            return
        data = self.renderer.png(index)
        if data is None:
            self.pdf.paragraph(f"Chart not included: {self.renderer.error}.", style="I", size=8)
            return
        self.pdf.png(data, caption=caption)

    # ---- sections --------------------------------------------------------------------------
    def cover(self, title: str, organisation: str | None, date: dt.date) -> None:
        pdf, audit = self.pdf, self.audit
        pdf.add_page()
        pdf.ln(30)
        pdf.set_font(pdf.body_font, "B", size=22)
        pdf.multi_cell(0, 11, pdf.clean(title), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        if organisation:
            pdf.paragraph(organisation, size=14)
        pdf.paragraph(f"Models: {', '.join(audit.models)}", size=12)
        pdf.paragraph(f"Report date: {date.isoformat()}", size=11)
        pdf.ln(6)
        rows = [("Audit id", audit.meta.get("audit_id", "not recorded")),
                ("Audit run at", audit.meta.get("timestamp", "not recorded")),
                ("Data", f"{audit.data.get('name', 'not recorded')}"),
                ("Data fingerprint", audit.data_fingerprint),
                ("Configuration fingerprint", audit.config_fingerprint)]
        rows += [(f"Model fingerprint: {name}", audit.model_meta(name).get("fingerprint", "not recorded"))
                 for name in audit.models]
        pdf.data_table(("Item", "Value"), rows, widths=(35, 65), size=9)

    def summary(self) -> None:
        pdf, audit, t = self.pdf, self.audit, self.thresholds
        pdf.heading("Executive summary")
        pdf.paragraph(
            f"This report audits {len(audit.models)} recommender model(s) at K = {self.k} on "
            f"{audit.data.get('n_users', 'an unrecorded number of')} users, by "
            f"{', '.join(audit.attributes) or 'no attribute'}. All numbers come from the audit folder; "
            f"intervals are 95% bootstrap confidence intervals.")
        findings = self.findings
        pdf.heading("Findings", level=1)
        if findings.headline:
            pdf.paragraph(findings.headline, style="B", size=10)
        pdf.paragraph(f"{findings.scope()} Ranked fail, attention, pass, then by how far the estimate lies beyond "
                      f"its limit; the {SUMMARY_FINDINGS} first of {len(findings.table)} findings (one per affected "
                      "group and family, mirror pairs merged; the dashboard's Audit page lists them all).", size=8.5)
        pdf.data_table(("#", "Verdict", "Model", "Family", "Finding"),
                       [(r.rank, r.verdict.upper(), r.model, r.family, r.sentence)
                        for r in findings.table.head(SUMMARY_FINDINGS).itertuples()],
                       widths=(5, 12, 15, 14, 104), size=7, padding=0.4)
        pdf.heading("Threshold checks", level=1)
        pdf.bullets(t.rules(), size=7.5)
        totals = findings.counts()
        pdf.paragraph(f"{len(self.checks)} checks: {totals['pass']} pass, {totals['attention']} need attention, "
                      f"{totals['fail']} fail. Counts per model and attribute (the user attribute of group checks, "
                      "the item attribute of exposure shares, 'all' for the catalogue); every check with its estimate "
                      "and CI, failures first, is listed in the appendix 'All threshold checks'.", size=8.5)
        pdf.data_table(("Model", "Check", "Attribute", "Pass", "Attention", "Fail"),
                       [tuple(row) for row in check_counts(self.checks).itertuples(index=False)],
                       widths=(26, 26, 34, 12, 14, 12), size=7, padding=0.3)

    def all_checks(self) -> None:
        """Appendix table of every threshold check, most severe first."""
        pdf, t = self.pdf, self.thresholds
        pdf.heading("All threshold checks", level=1)
        if self.checks.empty:
            pdf.paragraph("No check could be evaluated.")
            return
        pdf.paragraph(f"Every check of the executive summary: failures first, then attention, then pass. Rules: "
                      f"accuracy ratio >= {t.min_ratio:g}, exposure share minus catalogue share within "
                      f"+/-{t.max_exposure_diff:g}, relative gap of diversity and calibration within "
                      f"+/-{t.max_relative_gap:g}, exposure Gini <= {t.max_gini:g}, catalogue coverage >= "
                      f"{t.min_coverage:g} (in full in the executive summary).", size=8.5)
        pdf.data_table(
            ("Status", "Model", "Check", "Subject", "Metric", "Estimate [95% CI]"),
            [(r.status.upper(), r.model, r.check, r.subject,
              metric_label(r.metric, self.k) if r.metric in METRICS else "exposure - catalogue",
              _ci(r.estimate, r.ci_low, r.ci_high)) for r in by_severity(self.checks).itertuples()],
            widths=(17, 18, 21, 52, 27, 31), size=6.5, padding=0.35)

    def data(self) -> None:
        pdf, audit = self.pdf, self.audit
        pdf.heading("Data")
        info = audit.data
        rows = [(key.replace("_", " "), info[key]) for key in ("name", "n_users", "n_items", "n_interactions")
                if key in info]
        rows += [("evaluated users: " + m, n) for m, n in (audit.meta.get("n_evaluated_users") or {}).items()]
        split = self.config.split or {}
        rows.append(("split", json.dumps(split, sort_keys=True, default=str)))
        pdf.data_table(("Property", "Value"), rows, widths=(35, 65), size=9)
        pdf.heading("Group sizes", level=1)
        gm = audit.group_metrics
        first = gm[(gm["model"] == audit.models[0]) & (gm["attribute"] != "all")]
        sizes = _in_reading_order(first.drop_duplicates(["attribute", "group"]), by="attribute")
        pdf.data_table(("Attribute", "Group", "Users", "Small group"),
                       [(r.attribute, r.group, int(r.n_users), "yes - not tested" if r.flagged else "")
                        for r in sizes.itertuples()], widths=(30, 40, 15, 20), size=8)
        pdf.heading("Validation warnings and notes", level=1)
        notes = list(audit.meta.get("notes") or []) + list(info.get("warnings") or [])
        pdf.bullets(notes or ["None recorded."])
        pdf.heading("Suppressed small groups", level=1)
        small = sizes[sizes["flagged"].astype(bool)]
        pdf.paragraph(
            f"Groups with fewer than {self.config.min_group_size} users are flagged: their values are reported with "
            f"their (wide) intervals, but they are left out of gap tests, of the multiple-testing correction and "
            f"of the threshold checks, and drawn grey and hatched in charts.")
        pdf.bullets([f"{r.attribute} = {r.group} ({int(r.n_users)} users)" for r in small.itertuples()]
                    or ["No group is below the minimum size."])

    def model_cards(self) -> None:
        pdf, audit = self.pdf, self.audit
        pdf.heading("Model cards")
        gm = audit.group_metrics
        for name in audit.models:
            meta = audit.model_meta(name)
            pdf.heading(f"Model: {name}", level=1)
            params = meta.get("params") or {}
            rows = [("kind", meta.get("kind", "not recorded")), ("fingerprint", meta.get("fingerprint", "not recorded")),
                    ("encoder", _encoder(meta.get("kind"), params)),
                    ("training data fingerprint", meta.get("data_fingerprint", "not recorded")),
                    ("training split", json.dumps(meta.get("split"), sort_keys=True, default=str)),
                    ("privacy", privacy_summary(meta.get("privacy")))]  # epsilon spent of a DP-trained model
            rows += [(f"hyper-parameter: {key}", json.dumps(value, default=str)) for key, value in sorted(params.items())]
            pdf.data_table(("Property", "Value"), rows, widths=(35, 65), size=8.5)
            overall = select_rows(gm, model=name, attribute=ALL, metric=RATIO_METRICS)
            pdf.paragraph("Holdout quality (all evaluated users, 95% CI):", style="B", size=9)
            pdf.data_table(("Metric", "Value [95% CI]", "Users"),
                           [(metric_label(r.metric, self.k), _ci(r.value, r.ci_low, r.ci_high), int(r.n_users))
                            for r in overall.itertuples()], widths=(25, 40, 15), size=8.5)

    def _group_table(self, attribute: str, metrics: tuple[str, ...]) -> None:
        gm = self.audit.group_metrics
        chosen = _in_reading_order(select_rows(gm, attribute=attribute, metric=metrics))
        present = [m for m in metrics if (chosen["metric"] == m).any()]
        wide = chosen.pivot_table(index=["model", "group", "n_users", "flagged"], columns="metric",
                                values=["value", "ci_low", "ci_high"], sort=False, aggfunc="first")
        body = []
        for (model, group, n, flagged), row in wide.iterrows():
            cells = [f"{fmt(row[('value', m)])}\n[{fmt(row[('ci_low', m)])}, {fmt(row[('ci_high', m)])}]"
                     if ("value", m) in row.index else "n/a" for m in present]
            body.append((model, group + (" (small)" if flagged else ""), int(n), *cells))
        self.pdf.data_table(("Model", "Group", "Users", *[metric_label(m, self.k) for m in present]), body,
                            widths=(16, 20, 9, *[18] * len(present)), size=7)

    def results(self) -> None:
        pdf, audit = self.pdf, self.audit
        pdf.heading("Results")
        pdf.paragraph("Each cell gives the group mean and its 95% bootstrap CI. Groups marked (small) are below "
                      f"{self.config.min_group_size} users and not tested.")
        for attribute in audit.attributes:
            pdf.heading(f"Accuracy by {attribute}", level=1)
            self._group_table(attribute, RATIO_METRICS)
            self.chart(lambda a=attribute: plots.group_metric_chart(
                audit.group_metrics, metric=plots.DEFAULT_METRIC, attribute=a, k=self.k, min_group_size=self.config.min_group_size))
        gaps = audit.gaps
        for name in audit.models:
            pdf.heading(f"Gaps vs the rest of users: {name}", level=1)
            tested = select_rows(gaps, model=name, reference="rest", metric=GAP_TABLE_METRICS)
            pdf.data_table(("Attribute", "Group", "Metric", "Difference [95% CI]", "Ratio", "BH p", "Significant"),
                           [(r.attribute, r.group, metric_label(r.metric, self.k), _ci(r.difference, r.ci_low, r.ci_high),
                             fmt(r.ratio), f"{r.p_adjusted:.3g}", "yes" if r.p_adjusted < self.thresholds.alpha else "no")
                            for r in tested.itertuples()], widths=(20, 18, 16, 28, 10, 10, 12), size=7)
            self.chart(lambda n=name: plots.gap_forest_chart(gaps, metric=plots.DEFAULT_METRIC, model=n, alpha=self.thresholds.alpha,
                                                             k=self.k))
        self.exposure()
        pdf.heading("Diversity, novelty and calibration", level=0)
        for attribute in audit.attributes:
            pdf.heading(f"Diversity and calibration by {attribute}", level=1)
            self._group_table(attribute, plots.DIVERSITY_METRICS)
            if "*" not in attribute:
                self.chart(lambda a=attribute: plots.diversity_calibration_chart(audit.group_metrics, attribute=a,
                                                                                 k=self.k))

    def exposure(self) -> None:
        pdf, audit = self.pdf, self.audit
        ie = audit.item_exposure
        pdf.heading("Item exposure")
        gm = audit.group_metrics
        catalogue = gm[(gm["attribute"] == "all") & ~gm["metric"].isin(RATIO_METRICS + DIVERSITY)]
        if not catalogue.empty:
            pdf.data_table(("Model", "Catalogue metric", "Value"),
                           [(r.model, metric_label(r.metric, self.k), fmt(r.value)) for r in catalogue.itertuples()],
                           widths=(25, 45, 20), size=8)
        overall = select_rows(ie, user_attribute=ALL)
        for name in audit.models:
            pdf.heading(f"Exposure of item groups: {name}", level=1)
            shown = select_rows(overall, model=name)
            pdf.data_table(("Item attribute", "Item group", "Browsing", "Exposure", "Catalogue", "Relevance",
                            "Exposure - catalogue"),
                           [(r.item_attribute, r.item_group, r.browsing, fmt(r.exposure_share), fmt(r.catalogue_share),
                             fmt(r.relevance_share), fmt(r.exposure_share - r.catalogue_share))
                            for r in shown.itertuples()], widths=(20, 20, 12, 13, 13, 13, 15), size=7.5)
            item_attributes = list(dict.fromkeys(shown["item_attribute"]))
            for item_attribute in item_attributes:
                self.chart(lambda n=name, i=item_attribute: plots.exposure_share_chart(ie, item_attribute=i, model=n,
                                                                                       k=self.k))
            by_user = ie[(ie["model"] == name) & (ie["user_attribute"] != "all")]
            if not item_attributes or by_user.empty:
                continue
            first = item_attributes[0]
            shares = select_rows(by_user, item_attribute=first)
            shares = shares[shares["browsing"] == sorted(shares["browsing"].unique())[0]]
            wide = shares.pivot_table(index=["user_attribute", "user_group"], columns="item_group",
                                      values="exposure_share", sort=False, aggfunc="first")
            pdf.paragraph(f"Exposure share of {first} groups within each user group's lists "
                          f"({shares['browsing'].iloc[0]} browsing; all item attributes: item_exposure.csv).", size=9)
            pdf.data_table(("User attribute", "User group", *map(str, wide.columns)),
                           [(u, g, *map(fmt, values)) for (u, g), values in zip(wide.index, wide.to_numpy())],
                           widths=(25, 25, *[15] * len(wide.columns)), size=7.5)
            user_attribute = next(a for a in [*by_user["user_attribute"], "*"] if "*" not in a)
            if user_attribute != "*":
                self.chart(lambda n=name, i=first, u=user_attribute: plots.exposure_by_user_group_chart(
                    ie, user_attribute=u, item_attribute=i, model=n, k=self.k))

    def explanations(self) -> None:
        pdf, audit = self.pdf, self.audit
        pdf.heading("Explanations")
        pdf.heading("Counterfactual attribute probes", level=1)
        for reason in ((audit.explanations or {}).get("not_probed") or {}).values():  # e.g. imported lists
            pdf.paragraph(f"Not probed: {reason}.", style="I", size=9)
        if audit.probes is None:
            pdf.paragraph("Not run: the audit folder holds no probes.csv (see `python -m fairaudit probe`).")
        else:
            probes = plots.probe_summary(audit.probes)
            pdf.paragraph("Similarity of each user's list, re-scored as if the attribute held the value shown, to "
                          "their original list (1 = unchanged), averaged over users holding another known value, "
                          "with 95% CIs. Models that do not read the profile give exactly 1.")
            model_of = probes["model"] if "model" in probes.columns else pd.Series("", index=probes.index)
            pdf.data_table(("Model", "Attribute", "Value", "Metric", "Estimate [95% CI]"),
                           [(m, r.attribute, r.value, r.metric, _ci(r.estimate, r.ci_low, r.ci_high))
                            for m, r in zip(model_of, probes.itertuples())], widths=(18, 20, 22, 18, 28), size=8)
            for model in dict.fromkeys(model_of):
                part = probes[model_of == model]
                for metric in [m for m in dict.fromkeys(part["metric"]) if m in PROBE_CHART_METRICS]:
                    self.chart(lambda p=part, m=metric: plots.probe_chart(p, metric=m, k=self.k))
        pdf.heading("SHAP drivers of the gaps", level=1)
        if audit.shap_drivers is None:
            pdf.paragraph("Not run: the audit folder holds no shap_drivers.csv (see `python -m fairaudit explain`).")
        else:
            drivers = audit.shap_drivers
            keys = [c for c in ("model", "metric") if c in drivers.columns]
            pdf.paragraph("Mean absolute SHAP value of each user feature in a surrogate model of the per-user metric: "
                          "what the metric's differences between users go with (associations, not causes).")
            for _, part in (drivers.groupby(keys, sort=False) if keys else [("", drivers)]):
                part = part.sort_values("mean_abs_shap", ascending=False, kind="stable").head(SHAP_TOP)
                pdf.data_table((*keys, "Feature", "Mean |SHAP|"),
                               [(*(getattr(r, c) for c in keys), r.feature, f"{r.mean_abs_shap:.4f}")
                                for r in part.itertuples()], widths=(*[15] * len(keys), 50, 20), size=8)
                self.chart(lambda p=part: plots.shap_bar_chart(p, top=SHAP_TOP, k=self.k))

    def comparison(self) -> None:
        """The folder's stored comparison (``comparison.csv``, ``verdicts.csv``); never recomputed here."""
        pdf, audit = self.pdf, self.audit
        pdf.heading("Model comparison")
        table = audit.comparison
        if table is None:
            pdf.paragraph(NO_COMPARISON, style="I", size=9)
        else:
            self._comparison_tables(table)
        for attribute in (a for a in audit.attributes if "*" not in a):
            self.chart(lambda a=attribute: plots.tradeoff_chart(audit.group_metrics, audit.gaps, metric=plots.DEFAULT_METRIC,
                                                                attribute=a, k=self.k))

    def _comparison_tables(self, table: pd.DataFrame) -> None:
        pdf, audit = self.pdf, self.audit
        base = str(table["model_a"].iloc[0]) if len(table) else audit.models[0]
        pdf.paragraph(f"Each model against the baseline {base} on the same users: paired-bootstrap differences "
                      "(B - A; the same resampled users for both models) of the overall metrics, and of each "
                      "group's gap vs the rest of users.")
        overall = select_rows(table, attribute=ALL, quantity="value", metric=RATIO_METRICS + DIVERSITY)
        pdf.data_table(("A", "B", "Metric", "A", "B", "B - A [95% CI]"),
                       [(r.model_a, r.model_b, metric_label(r.metric, self.k), fmt(r.a), fmt(r.b),
                         _ci(r.difference, r.ci_low, r.ci_high)) for r in overall.itertuples()],
                       widths=(16, 16, 28, 12, 12, 30), size=7.5)
        pdf.heading("Gap changes per group", level=1)
        missing = [a for a in audit.attributes if a not in set(table["attribute"])]
        if missing:
            pdf.paragraph(f"No per-group comparison for {', '.join(missing)}: user_metrics.parquet lacks the user "
                          "attribute columns (audit written before they were stored); run `python -m fairaudit "
                          "compare` with --data.", style="I", size=9)
        changes = select_rows(table, quantity="directed_gap", metric=GAP_TABLE_METRICS)
        if not changes.empty:
            pdf.paragraph("Per tested group: |gap| = |group mean - rest mean| under A, B's gap measured on the same "
                          "side (negative: B reverses it), and the change B - A with its paired-bootstrap 95% CI "
                          "(group and rest resampled separately, the same users for both models). Verdict: narrower "
                          "(or reversed) when the whole CI is below 0, wider when above 0. All metrics: "
                          "`python -m fairaudit compare`.", size=9)
            pdf.data_table(("B", "Attribute", "Group", "Metric", "|gap| A", "Gap B", "Change [95% CI]", "Verdict"),
                           [(r.model_b, r.attribute, r.group, metric_label(r.metric, self.k), fmt(r.a), fmt(r.b),
                             _ci(r.difference, r.ci_low, r.ci_high),
                             _gap_change_word(r.b, r.ci_low, r.ci_high))
                            for r in changes.itertuples()], widths=(15, 20, 20, 15, 11, 11, 27, 16), size=7)
            if audit.verdicts is not None:
                pdf.paragraph("Gap verdicts (the largest gap of each attribute):", style="B", size=9)
                pdf.bullets(select_rows(audit.verdicts, metric=GAP_TABLE_METRICS)["verdict"].tolist(), size=9)

    def methodology(self) -> None:
        pdf, config = self.pdf, self.recorded
        rounds, seed = config.get("bootstrap_rounds", "not recorded"), config.get("seed", "not recorded")
        pdf.heading("Methodology and limitations")
        pdf.heading("Metric definitions", level=1)
        pdf.bullets([
            f"NDCG@{self.k}: DCG of the top-{self.k} list (binary relevance = held-out interaction, gain 1/log2(rank+1)) "
            "divided by the ideal DCG; Recall@K: share of the user's held-out items in the list; Precision@K: share of "
            "the list that is held out; HitRate@K: 1 if any held-out item is in the list; MRR: 1/rank of the first hit.",
            "Exposure: position weights of a browsing model (dcg: 1/log2(rank+1); rbp: gamma^(rank-1)) summed per "
            "item group and normalised to shares; compared with the item group's share of the catalogue and of "
            "relevant (held-out) items.",
            "Diversity: intra-list diversity = mean pairwise (1 - cosine similarity) of the listed items' LLM "
            "embeddings or genre vectors; novelty = mean -log2 popularity; miscalibration = KL divergence between "
            "the genre mix of a user's history and of their list (Steck 2018, alpha = 0.01).",
        ], size=9)
        pdf.heading("Confidence intervals, tests and multiple testing", level=1)
        pdf.bullets([
            f"Confidence intervals: percentile bootstrap with {rounds} resamples of users (seed {seed}), "
            "resampling within each group; gap CIs resample the group and its reference independently.",
            "Gap p-values: two-sided permutation tests (group labels shuffled among the users of the attribute), "
            "p = (1 + #extreme) / (1 + rounds). Against the rest: |group - rest| against its own permutation "
            "distribution. Against the best group: |group - best| against the permutation distribution of the largest "
            "difference between any two tested groups (a max-T / Tukey-type statistic), because the best group is "
            "picked from the data; with two groups both tests are the same test.",
            "Minimum detectable gap (gaps.csv mdg): the gap each test would detect with 80% power at the unadjusted "
            "level, from its permutation critical value and the bootstrap standard error; a non-significant gap "
            "smaller than it is reported as too small to tell, not as no gap.",
            f"Multiple testing: Benjamini-Hochberg adjustment {_FDR_FAMILIES.get(config.get('fdr_family'), _FDR_UNKNOWN)}; "
            f"a gap is significant when the adjusted p < {self.thresholds.alpha:g}.",
            f"Groups with fewer than {self.config.min_group_size} users are reported but not tested.",
            "Interaction-derived groupings (user activity levels, item popularity tiers) are computed from the "
            "training interactions only, so held-out interactions never decide a user's or an item's group.",
            "Model comparison: paired bootstrap - the same resampled users for both models - of differences (B - A), "
            "overall and per group; gap changes resample each group and its rest separately (fairaudit.compare).",
        ], size=9)
        pdf.heading("What this audit cannot show", level=1)
        pdf.bullets([
            "Offline accuracy on held-out interactions is not user satisfaction; unobserved items count as irrelevant.",
            "Associations, not causes: a gap may reflect differences in users' histories rather than in the model.",
            "Only the recorded attributes are audited; missing or self-reported attributes can hide groups.",
            "Small groups and intersections have wide intervals; absence of a significant gap is not evidence of "
            "fairness.",
            "The thresholds are policy choices of the analyst, not legal standards.",
        ], size=9)

    def appendix(self) -> None:
        pdf, audit = self.pdf, self.audit
        pdf.heading("Appendix")
        self.all_checks()
        pdf.heading("Full configuration", level=1)
        pdf.monospace(json.dumps(self.recorded, indent=2, sort_keys=True, default=str))
        pdf.heading("Software versions", level=1)
        recorded = audit.meta.get("versions") or {}
        rows = [(f"audit: {name}", version) for name, version in sorted(recorded.items())]
        rows += [(f"report: {name}", _version(name)) for name in _SOFTWARE]
        rows.append(("report: python", platform.python_version()))
        pdf.data_table(("Software", "Version"), rows, widths=(40, 40), size=8)


def _in_reading_order(rows: pd.DataFrame, by: str = "model") -> pd.DataFrame:
    """``rows`` grouped by ``by`` (in order of appearance), groups in :func:`fairaudit.plots.natural_order`
    within ("Under 18" before "18-24", tiers head, mid, tail).

    >>> rows = pd.DataFrame({"model": "m", "group": ["25-34", "Under 18", "18-24"]})
    >>> _in_reading_order(rows)["group"].tolist()
    ['Under 18', '18-24', '25-34']
    """
    first = {v: i for i, v in enumerate(dict.fromkeys(rows[by]))}
    rank = {g: i for i, g in enumerate(plots.natural_order(rows["group"]))}
    order = np.lexsort((rows["group"].astype(str).map(rank).to_numpy(), rows[by].map(first).to_numpy()))
    return rows.iloc[order]


def _gap_change_word(gap_b: float, low: float, high: float) -> str:
    """Verdict on a directed gap change: ``narrower``/``reversed`` (CI below 0), ``wider`` (above 0).

    >>> _gap_change_word(0.01, -0.03, -0.01), _gap_change_word(-0.01, -0.05, -0.02), _gap_change_word(0.1, -0.01, 0.02)
    ('narrower', 'reversed', 'no sig. change')
    """
    if high < 0:
        return "reversed" if gap_b < 0 else "narrower"
    return "wider" if low > 0 else "no sig. change"


def _encoder(kind: object, params: Mapping[str, Any]) -> str:
    """The text encoder of a model card: recorded name, the default for LLM models, else none."""
    if params.get("encoder"):
        return str(params["encoder"])
    return f"{DEFAULT_ENCODER} (default)" if kind == "llm" else "none (not a text-based model)"


def _version(name: str) -> str:
    if name == "fairaudit":
        return fairaudit.__version__
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
