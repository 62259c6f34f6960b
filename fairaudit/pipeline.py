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

import inspect
import os
import re
import types
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Mapping, Optional, Sequence, Union, get_args, get_origin
from typing import get_type_hints

import pydantic
import yaml

from fairaudit.audit import AUDIT_BOUNDS, AuditConfig, is_audit_folder
from fairaudit.data import (
    SPLIT_FUNCTIONS,
    SPLIT_METHODS,
    Dataset,
    OutputError,
    Split,
    check_folder_target,
    check_pdf_target,
    make_split,
)
from fairaudit.models import ModelFolderError, Recommender, check_device, create_model, is_model_folder, load_model
from fairaudit.service import DataSource, ExplainOptions, audit_models, trainable_kinds

CONFIG_COPY = "run_config.yaml"

_BAD_CONFIG = "Audit configuration '{0}': {1}"
_UNKNOWN_KEYS = "unknown key(s) {0} in '{1}'; expected some of {2}"
_MISSING_KEY = "missing required key '{0}'"
_BAD_VALUE = "{0}: {1} (got {2})"
_NOT_UNIQUE = "model names must be unique, got {0}"
_BAD_KIND = "model kind {0!r} cannot be trained; expected one of {1}"
_OUTSIDE = (
    "{0}: {1!r} resolves to {2}, outside the configuration's folder {3}; use a path inside it "
    "(or inside the folder you run from), or an absolute path"
)
_NOT_TEXT = "not valid UTF-8 text ({0})"
_MODEL_IN_THE_WAY = (
    "model '{0}': {1} already holds {2}; pass --overwrite (Python: overwrite=True) to re-train it there, "
    "or give the model another path"
)

#: Allowed ranges of model hyper-parameters (by name, for every kind) in configurations.
MODEL_PARAM_BOUNDS: dict[str, dict[str, float]] = {
    **{name: {"ge": 1} for name in ("epochs", "iterations", "dim", "batch_size", "factors", "cg_steps", "n_neighbors")},
    **{name: {"ge": 0} for name in ("weight_decay", "reg", "alpha", "shrinkage", "fairness_weight")},
    "lr": {"gt": 0},
    "id_dropout": {"ge": 0, "lt": 1},
    "holdout": {"ge": 0, "lt": 1},
    "seed": AUDIT_BOUNDS["seed"],
    "strength": {"ge": 0, "le": 1},
    "n_candidates": {"ge": 1},
    "patience": {"ge": 1},
    "validation_fraction": {"gt": 0, "le": 0.5},
    "weight_averaging": {"ge": 0, "lt": 1},
    "learning_rate": {"gt": 0},
    "text_half_life_days": {"gt": 0},
}
#: Allowed ranges of split parameters (``split.params``) in configurations.
SPLIT_PARAM_BOUNDS: dict[str, dict[str, float]] = {
    "test_fraction": {"gt": 0, "lt": 1},
    "cold_fraction": {"gt": 0, "lt": 1},
    "n": {"ge": 1},
}
#: Allowed ranges of the report thresholds (``report.thresholds``).
THRESHOLD_BOUNDS: dict[str, dict[str, float]] = {
    "min_ratio": {"ge": 0, "le": 1},
    "max_exposure_diff": {"ge": 0, "le": 1},
    "alpha": {"gt": 0, "lt": 1},
    "max_relative_gap": {"gt": 0, "le": 1},
    "max_gini": {"gt": 0, "le": 1},
    "min_coverage": {"gt": 0, "le": 1},
}


class ConfigError(ValueError):
    """An audit configuration that does not follow the schema; names every bad key path at once.

    The CLI exits with status 2 (bad usage) on it. ``problems`` holds one ``"key.path: what"`` line each.
    """

    def __init__(self, source: str, problems: Sequence[str]):
        self.source, self.problems = source, list(problems)
        super().__init__(_BAD_CONFIG.format(source, "; ".join(self.problems)))


# ---- the schema ---------------------------------------------------------------------------------
# pydantic models, strict (no "10" for 10, no 1 for True) and closed (extra="forbid") in every
# section; built from the types the package already declares (AuditConfig's fields, each model
# kind's __init__, the split functions, Thresholds), with ranges from the *_BOUNDS tables.

_STRICT = pydantic.ConfigDict(extra="forbid", strict=True)
_UNIONS = (Union, types.UnionType)


def _schema_type(hint: Any, bounds: dict[str, float] | None = None) -> Any:
    """The schema type of a declared type hint (tuples and sequences of text are YAML lists)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in _UNIONS:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and len(args) == 2:
            return Optional[_schema_type(inner[0], bounds)]
        return Any
    if origin is Literal:
        return hint
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        item = args[0] if args else Any
        return list[_schema_type(item)] if item in (str, int, float, bool) or get_origin(item) is Literal else list[Any]
    if hint is bool:
        return bool
    if hint is int:
        return Annotated[int, pydantic.Field(**(bounds or {}))]
    if hint is float:
        return Annotated[float, pydantic.Field(allow_inf_nan=False, **(bounds or {}))]
    if hint is str:
        return str
    if origin is dict or hint is dict:
        return dict[str, Any]
    return Any


def _model_of(name: str, hints: Mapping[str, Any], defaults: Mapping[str, Any], bounds, validators=None):
    """A strict, closed pydantic model with one optional field per hint."""
    specs = {
        key: (_schema_type(hint, bounds.get(key)), defaults.get(key, None))
        for key, hint in hints.items()
    }
    return pydantic.create_model(name, __config__=_STRICT, __validators__=validators or {}, **specs)


def _device_field(value: Any) -> Any:
    if isinstance(value, str):
        check_device(value)
    return value


@lru_cache(maxsize=None)
def _params_schema(kind: str):
    """Schema of ``models[i].params`` for ``kind``: the keyword parameters of its ``__init__``."""
    cls = type(create_model(kind))
    hints = get_type_hints(cls.__init__)
    names = [n for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self" and p.kind.name != "VAR_KEYWORD"]
    validators = {}
    if "device" in names:
        validators["check_device"] = pydantic.field_validator("device")(classmethod(lambda cls, v: _device_field(v)))
    return _model_of(f"{kind}_params", {n: hints.get(n, Any) for n in names}, {}, MODEL_PARAM_BOUNDS, validators)


@lru_cache(maxsize=None)
def _split_schema(method: str):
    """Schema of ``split.params`` for ``method``: the keyword parameters of its split function."""
    function = SPLIT_FUNCTIONS[method]
    hints = get_type_hints(function)
    names = [n for n in inspect.signature(function).parameters if n not in ("dataset", "seed")]
    return _model_of(f"{method}_split_params", {n: hints[n] for n in names}, {}, SPLIT_PARAM_BOUNDS)


def _trainable(kind: str) -> str:
    if kind not in trainable_kinds():
        raise ValueError(_BAD_KIND.format(kind, trainable_kinds()))
    return kind


@lru_cache(maxsize=None)
def _run_schema():
    """Schema of the whole file (model and split parameters are checked per kind/method after it)."""
    from fairaudit.report import PAPERS, Thresholds  # here: the report's imports are slow and rarely needed

    audit_hints = get_type_hints(AuditConfig)
    audit = _model_of(
        "audit", {f.name: audit_hints[f.name] for f in fields(AuditConfig) if f.name not in ("split", "data")},
        {}, AUDIT_BOUNDS,
    )  # fmt: skip
    thresholds = _model_of("thresholds", get_type_hints(Thresholds), {}, THRESHOLD_BOUNDS)
    explain_hints = get_type_hints(ExplainOptions)
    explain = _model_of("explain", {f.name: explain_hints[f.name] for f in fields(ExplainOptions)}, {},
                        {"probe_users": {"ge": 1}})  # fmt: skip
    seed = Annotated[int, pydantic.Field(**AUDIT_BOUNDS["seed"])]

    def model(title: str, validators=None, /, **specs):
        return pydantic.create_model(title, __config__=_STRICT, __validators__=validators or {}, **specs)

    data = model("data", None, path=(str, ...), mapping=(Optional[dict[str, str]], None))
    split = model(
        "split", None, method=(Literal[SPLIT_METHODS], "random"), seed=(seed, 0), params=(Optional[dict[str, Any]], None)
    )
    spec = model(
        "model", {"trainable": pydantic.field_validator("kind")(classmethod(lambda cls, v: _trainable(v)))},
        name=(Optional[str], None), kind=(str, ...), params=(Optional[dict[str, Any]], None), path=(Optional[str], None),
    )  # fmt: skip
    report = model(
        "report", None, title=(Optional[str], None), organisation=(Optional[str], None), paper=(Literal[PAPERS], "A4"),
        thresholds=(Optional[thresholds], None),
    )  # fmt: skip
    return model(
        "run", None, data=(data, ...), split=(Optional[split], None), models=(Annotated[list[spec], pydantic.Field(min_length=1)], ...), audit=(Optional[audit], None),
        explain=(Optional[explain], None), report=(Optional[report], None), output=(str, ...),
    )  # fmt: skip


def _key_path(loc: Sequence[Any]) -> str:
    """``("models", 1, "params", "epochs")`` -> ``"models[1].params.epochs"``.

    >>> _key_path(("models", 1, "params", "epochs")), _key_path(())
    ('models[1].params.epochs', 'top level')
    """
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"


def _problems(error: pydantic.ValidationError, schema, prefix: tuple = ()) -> list[str]:
    """One line per error of ``error`` (a validation of ``schema`` at key path ``prefix``), unknown keys per section."""
    unknown: dict[tuple, list[str]] = {}
    lines = []
    for item in error.errors(include_url=False):
        loc = prefix + tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
        elif item["type"] == "missing":
            lines.append(_MISSING_KEY.format(_key_path(loc)))
        else:
            message = re.sub(r" or instance of \w+$", "", item["msg"].removeprefix("Value error, "))
            message = message[:1].lower() + message[1:]
            shown = repr(item["input"])
            lines.append(_BAD_VALUE.format(_key_path(loc), message, shown if len(shown) <= 60 else shown[:57] + "..."))
    for section, keys in unknown.items():
        lines.append(_UNKNOWN_KEYS.format(sorted(keys), _key_path(section), _section_keys(schema, section[len(prefix):])))
    return lines


def _lists(value: Any) -> Any:
    """``value`` with every tuple, at any depth of mappings and lists, turned into a list."""
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _normalise(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The file's shorthands in their long form: ``data: PATH``, ``models: [KIND]``, ``explain: true``.

    Tuples (from Python callers) count as lists.
    """
    raw = _lists(dict(raw))
    if isinstance(raw.get("data"), str):
        raw["data"] = {"path": raw["data"]}
    if isinstance(raw.get("models"), list):
        raw["models"] = [{"kind": spec} if isinstance(spec, str) else spec for spec in raw["models"]]
    if raw.get("explain") is True:
        raw["explain"] = {"probe_users": ExplainOptions().probe_users}
    elif raw.get("explain") is False:
        raw["explain"] = None
    return raw


def _section_keys(schema, section: tuple) -> list[str]:
    """Allowed keys of the section at key path ``section`` of ``schema`` (list positions skipped)."""
    model = schema
    for part in section:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        while get_origin(annotation) in (*_UNIONS, list):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        if not (isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def audit_problems(mapping: Any, *, where: str = "audit") -> list[str]:
    """Problems of an audit section (the :class:`AuditConfig` fields but ``split``/``data``), one line each.

    >>> audit_problems({"k": 0})
    ['audit.k: input should be greater than or equal to 1 (got 0)']
    """
    schema = _run_schema()
    section = [a for a in get_args(schema.model_fields["audit"].annotation) if a is not type(None)][0]
    try:
        section.model_validate(mapping)
    except pydantic.ValidationError as err:
        return _problems(err, section, (where,))
    return []


def _output_problems(output: str, base_dir: Path) -> list[str]:
    """``output`` must be a path inside the configuration's folder (or the working folder), or absolute.

    >>> _output_problems("audits/q3", Path("/srv/configs")), len(_output_problems("../../x", Path("/srv/configs")))
    ([], 1)
    """
    try:
        if Path(output).is_absolute():
            return []
        target, base = (base_dir / output).resolve(), base_dir.resolve()
        inside = target.is_relative_to(base) or target.is_relative_to(Path(os.getcwd()).resolve())
    except (ValueError, OSError) as err:  # e.g. a NUL byte in the path
        return [_BAD_VALUE.format("output", f"not a usable path ({err})", repr(output))]
    return [] if inside else [_OUTSIDE.format("output", output, target, base)]


def validate_config(raw: Any, *, source: str = "<config>", base_dir: Path | None = None) -> dict[str, Any]:
    """Check a parsed configuration against the schema, before any work; returns it in long form.

    Every problem is reported at once, each naming its key path (``audit.k``,
    ``models[1].params.epochs``) and what was expected; raises :class:`ConfigError`.

    >>> validate_config({"data": "d", "models": ["popularity"], "output": "o"})["models"]
    [{'kind': 'popularity'}]
    >>> validate_config({"data": "d", "models": "popularity", "output": "o", "audit": {"k": "ten"}})
    Traceback (most recent call last):
    ...
    fairaudit.pipeline.ConfigError: Audit configuration '<config>': models: input should be a valid list (got 'popularity'); audit.k: input should be a valid integer (got 'ten')
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(source, ["expected a mapping of keys at the top level"])
    raw = _normalise(raw)
    schema = _run_schema()
    problems: list[str] = []
    try:
        schema.model_validate(raw)
    except pydantic.ValidationError as err:
        problems += _problems(err, schema)
    for position, spec in enumerate(raw.get("models") if isinstance(raw.get("models"), list) else []):
        if isinstance(spec, Mapping) and spec.get("kind") in trainable_kinds() and isinstance(spec.get("params"), Mapping):
            params = _params_schema(spec["kind"])
            where = ("models", position, "params")
            try:
                params.model_validate(spec["params"])
            except pydantic.ValidationError as err:
                problems += _problems(err, params, where)
    split = raw.get("split")
    if isinstance(split, Mapping) and split.get("method", "random") in SPLIT_METHODS and isinstance(split.get("params"), Mapping):
        params = _split_schema(split.get("method", "random"))
        try:
            params.model_validate(split["params"])
        except pydantic.ValidationError as err:
            problems += _problems(err, params, ("split", "params"))
    models = raw.get("models") if isinstance(raw.get("models"), list) else []
    names = [str(m.get("name") or m.get("kind")) for m in models if isinstance(m, Mapping)]
    if len(set(names)) != len(names):
        problems.append(f"models: {_NOT_UNIQUE.format(names)}")
    output = raw.get("output")
    if isinstance(output, str) and base_dir is not None:
        problems += _output_problems(output, Path(base_dir))
    if problems:
        raise ConfigError(source, problems)
    return raw


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
        """Validate a parsed YAML/JSON mapping into a config (see :func:`validate_config`); errors name the key."""
        raw = validate_config(raw, source=source, base_dir=base_dir)
        data = raw["data"]
        split = dict(raw.get("split") or {})
        models = tuple(
            ModelSpec(
                name=str(spec.get("name") or spec["kind"]),
                kind=str(spec["kind"]),
                params=dict(spec.get("params") or {}),
                path=spec.get("path"),
            )
            for spec in raw["models"]
        )
        explain = dict(raw.get("explain") or {})
        report = dict(raw.get("report") or {})
        return cls(
            data_path=str(data["path"]),
            mapping=dict(data.get("mapping") or {}),
            split_method=str(split.get("method", "random")),
            split_seed=int(split.get("seed", 0)),
            split_params=dict(split.get("params") or {}),
            models=models,
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
            message = " ".join(str(err).split())
            raise ConfigError(str(path), [f"not valid YAML/JSON ({message})"]) from err
        except UnicodeDecodeError as err:
            raise ConfigError(str(path), [_NOT_TEXT.format(err.reason)]) from err
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


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its outputs, and which models it trained (vs. reused)."""

    audit_dir: Path
    report_pdf: Path
    trained: tuple[str, ...]
    reused: tuple[str, ...]


def _model_folder(spec: ModelSpec, config: RunConfig) -> Path:
    return config.resolve(spec.path) if spec.path else config.resolve(config.output) / "models" / spec.name


def _reusable(
    spec: ModelSpec, config: RunConfig, dataset: Dataset, split: Split, overwrite: bool, log: Callable[[str], None]
) -> Recommender | None:
    """The model in ``spec``'s folder when it is this kind, parameters, data and split; ``None`` to train one.

    A folder holding anything else is refused before any training: other content always
    (:func:`~fairaudit.data.check_folder_target`), another FairAudit model unless ``overwrite``.
    """
    folder = _model_folder(spec, config)
    check_folder_target(folder, overwrite=True, is_ours=is_model_folder, kind="model folder")  # foreign: never
    if not is_model_folder(folder):
        return None
    try:
        model = load_model(folder, dataset)
    except ModelFolderError as err:
        held = f"a model that cannot be reused ({err})"
    else:
        same_split = model.split_.get("fingerprint") == split.describe()["fingerprint"]
        if model.kind == spec.kind and same_split and model.get_params() == {**model.get_params(), **spec.params}:
            log(f"{spec.name}: reusing {folder}")
            return model
        held = f"a {model.kind} model of other parameters or another split"
    if not overwrite:
        raise OutputError(_MODEL_IN_THE_WAY.format(spec.name, folder, held))
    log(f"{spec.name}: {folder} holds {held}; re-training it there (overwrite)")
    return None


def run_pipeline(
    config: RunConfig, *, log: Callable[[str], None] = lambda _: None, date=None, overwrite: bool = False
) -> RunResult:
    """Execute ``config``: load and split the data, train or reuse models, audit, write the PDF.

    Every output is checked before any work: ``OUTPUT/audit`` must be new, empty, or (with
    ``overwrite``) an audit folder; ``OUTPUT/audit.pdf`` new or a PDF; each model folder new, empty,
    the very model asked for (reused), or (with ``overwrite``) another FairAudit model, which is
    re-trained in place. Folders holding anything else are never written to.
    """
    from fairaudit.report import build_report

    out = config.resolve(config.output)
    audit_dir = out / "audit"
    check_folder_target(audit_dir, overwrite=overwrite, is_ours=is_audit_folder, kind="audit folder")
    check_pdf_target(out / "audit.pdf")
    dataset = config.data.resolved(config.base_dir).load()
    split = make_split(dataset, config.split_method, seed=config.split_seed, **config.split_params)
    reusable = {spec.name: _reusable(spec, config, dataset, split, overwrite, log) for spec in config.models}
    models, trained, reused = {}, [], []
    for spec in config.models:
        model = reusable[spec.name]
        if model is None:
            log(f"{spec.name}: training {spec.kind}")
            model = create_model(spec.kind, **spec.params).fit(dataset, split)
            model.save(_model_folder(spec, config), overwrite=overwrite)
        models[spec.name] = model
        (reused if reusable[spec.name] is not None else trained).append(spec.name)
    audit_config = AuditConfig.from_dict({**config.audit.to_dict(), "data": config.data.to_dict()})
    log("auditing")
    explain = ExplainOptions(**config.explain) if config.explain else None
    audit_models(dataset, models, audit_config, explain=explain, out=audit_dir, overwrite=overwrite, progress=log)
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

