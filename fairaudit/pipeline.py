"""A whole audit described by one YAML/JSON file: train if needed -> audit -> report.

The file is the audit's reproducible description (data source and column mapping, split,
models, K, resampling, thresholds, report options). ``run_pipeline`` executes it; running
it twice gives identical numbers (models are trained with fixed seeds, or loaded when
their folder already holds a model trained on the same data and split) and an identical
PDF apart from the date.

Example configuration::

    data: {path: sample_data}
    split: {method: random, seed: 0, params: {test_fraction: 0.2}}
    models:
      - {name: popularity, kind: popularity}
      - {name: llm, kind: llm, params: {epochs: 10}, path: models/llm}
    audit: {k: 10, bootstrap_rounds: 1000, attributes: [gender, age_band, region, gender*age_band]}
    explain: {probe_users: 1000}   # optional: SHAP gap drivers and counterfactual probes
    report: {title: Quarterly audit, organisation: ACME, paper: A4, thresholds: {min_ratio: 0.8}}
    output: audits/q3
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from fairaudit.audit import AuditConfig
from fairaudit.data import Dataset, Split, make_split
from fairaudit.models import ModelFolderError, Recommender, create_model, load_model
from fairaudit.service import DataSource, ExplainOptions, audit_models

CONFIG_COPY = "run_config.yaml"

_BAD_CONFIG = "Audit configuration '{0}': {1}"
_UNKNOWN_KEYS = "unknown key(s) {0} in '{1}'; expected some of {2}"
_MISSING_KEY = "missing required key '{0}'"


@dataclass(frozen=True)
class ModelSpec:
    """One model of a run: train ``kind`` with ``params``, or reuse the folder ``path``."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """The parsed audit configuration file; paths are relative to the file's folder."""

    data_path: str
    models: tuple[ModelSpec, ...]
    output: str
    mapping: Mapping[str, str] = field(default_factory=dict)
    split_method: str = "random"
    split_seed: int = 0
    split_params: Mapping[str, Any] = field(default_factory=dict)
    audit: AuditConfig = AuditConfig()
    explain: Mapping[str, Any] = field(default_factory=dict)
    report: Mapping[str, Any] = field(default_factory=dict)
    base_dir: Path = Path(".")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, source: str = "<config>", base_dir: Path = Path(".")) -> "RunConfig":
        """Validate a parsed YAML/JSON mapping into a config; errors name the key and the fix."""
        _check_keys(raw, {"data", "split", "models", "audit", "explain", "report", "output"}, source, "top level")
        for key in ("data", "models", "output"):
            if key not in raw:
                raise ValueError(_BAD_CONFIG.format(source, _MISSING_KEY.format(key)))
        data = raw["data"] if isinstance(raw["data"], Mapping) else {"path": raw["data"]}
        _check_keys(data, {"path", "mapping"}, source, "data")
        split = dict(raw.get("split") or {})
        _check_keys(split, {"method", "seed", "params"}, source, "split")
        models = []
        for position, spec in enumerate(raw["models"]):
            spec = {"kind": spec} if isinstance(spec, str) else dict(spec)
            _check_keys(spec, {"name", "kind", "params", "path"}, source, f"models[{position}]")
            if "kind" not in spec:
                raise ValueError(_BAD_CONFIG.format(source, _MISSING_KEY.format(f"models[{position}].kind")))
            models.append(
                ModelSpec(
                    name=str(spec.get("name", spec["kind"])),
                    kind=str(spec["kind"]),
                    params=dict(spec.get("params") or {}),
                    path=spec.get("path"),
                )
            )
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(_BAD_CONFIG.format(source, f"model names must be unique, got {names}"))
        explain = raw.get("explain") or {}
        explain = {"probe_users": ExplainOptions().probe_users} if explain is True else dict(explain)
        _check_keys(explain, {"probe_users"}, source, "explain")
        report = dict(raw.get("report") or {})
        _check_keys(report, {"title", "organisation", "paper", "thresholds"}, source, "report")
        return cls(
            data_path=str(data["path"]),
            mapping=dict(data.get("mapping") or {}),
            split_method=str(split.get("method", "random")),
            split_seed=int(split.get("seed", 0)),
            split_params=dict(split.get("params") or {}),
            models=tuple(models),
            audit=AuditConfig.from_dict(raw.get("audit") or {}),
            explain=explain,
            report=report,
            output=str(raw["output"]),
            base_dir=base_dir,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        """Read a ``.yaml``/``.yml``/``.json`` configuration file."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(_BAD_CONFIG.format(path, f"not valid YAML/JSON ({err})")) from err
        if not isinstance(raw, Mapping):
            raise ValueError(_BAD_CONFIG.format(path, "expected a mapping of keys at the top level"))
        return cls.from_mapping(raw, source=str(path), base_dir=path.resolve().parent)

    def to_mapping(self) -> dict[str, Any]:
        """The configuration as written in a file (round-trips through ``from_mapping``)."""
        return {
            "data": {"path": self.data_path, "mapping": dict(self.mapping)},
            "split": {"method": self.split_method, "seed": self.split_seed, "params": dict(self.split_params)},
            "models": [
                {"name": m.name, "kind": m.kind, "params": dict(m.params), **({"path": m.path} if m.path else {})}
                for m in self.models
            ],
            "audit": {k: v for k, v in self.audit.to_dict().items() if k not in ("split", "data")},
            "explain": dict(self.explain),
            "report": dict(self.report),
            "output": self.output,
        }

    @property
    def data(self) -> DataSource:
        """The data source as written in the file (``path`` relative to it; see :meth:`DataSource.resolved`)."""
        return DataSource("folder", path=self.data_path, mapping=self.mapping)

    def resolve(self, path: str) -> Path:
        """``path`` relative to the configuration file's folder."""
        return (self.base_dir / path).resolve()


def _check_keys(section: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ValueError(_BAD_CONFIG.format(source, _UNKNOWN_KEYS.format(unknown, where, sorted(allowed))))


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its outputs, and which models it trained (vs. reused)."""

    audit_dir: Path
    report_pdf: Path
    trained: tuple[str, ...]
    reused: tuple[str, ...]


def _model_for(spec: ModelSpec, config: RunConfig, dataset: Dataset, split: Split, log: Callable[[str], None]):
    """Load ``spec``'s folder when it holds a model of this kind for this data and split; else train and save."""
    folder = config.resolve(spec.path) if spec.path else config.resolve(config.output) / "models" / spec.name
    if (folder / "config.json").is_file():
        try:
            model = load_model(folder, dataset)
        except ModelFolderError as err:
            log(f"{spec.name}: not reusing {folder} ({err}); retraining")
        else:
            same_split = model.split_.get("fingerprint") == split.describe()["fingerprint"]
            if model.kind == spec.kind and same_split and model.get_params() == {**model.get_params(), **spec.params}:
                log(f"{spec.name}: reusing {folder}")
                return model, False
            log(f"{spec.name}: {folder} holds a different model or split; retraining")
    log(f"{spec.name}: training {spec.kind}")
    model: Recommender = create_model(spec.kind, **spec.params).fit(dataset, split)
    model.save(folder)
    return model, True


def run_pipeline(config: RunConfig, *, log: Callable[[str], None] = lambda _: None, date=None) -> RunResult:
    """Execute ``config``: load and split the data, train or reuse models, audit, write the PDF."""
    from fairaudit.report import build_report

    dataset = config.data.resolved(config.base_dir).load()
    split = make_split(dataset, config.split_method, seed=config.split_seed, **config.split_params)
    models, trained, reused = {}, [], []
    for spec in config.models:
        model, was_trained = _model_for(spec, config, dataset, split, log)
        models[spec.name] = model
        (trained if was_trained else reused).append(spec.name)
    audit_config = AuditConfig.from_dict({**config.audit.to_dict(), "data": config.data.to_dict()})
    log("auditing")
    out = config.resolve(config.output)
    audit_dir = out / "audit"
    explain = ExplainOptions(**config.explain) if config.explain else None
    audit_models(dataset, models, audit_config, explain=explain, out=audit_dir, progress=log)
    (audit_dir / CONFIG_COPY).write_text(yaml.safe_dump(config.to_mapping(), sort_keys=False))
    log("writing the report")
    report = dict(config.report)
    pdf = build_report(
        audit_dir,
        out / "audit.pdf",
        organisation=report.get("organisation"),
        title=report.get("title"),
        thresholds=report.get("thresholds"),
        paper=report.get("paper", "A4"),
        date=date,
    )
    return RunResult(audit_dir=audit_dir, report_pdf=pdf, trained=tuple(trained), reused=tuple(reused))

