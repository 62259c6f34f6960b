"""The audit service: the one orchestration the CLI, ``run_pipeline`` and the dashboard pages call.

- :class:`DataSource` says where a dataset comes from (the bundled sample, a folder or file, or
  uploaded tables, plus a column mapping); it is frozen and hashable (a cache key), loads the
  data (:meth:`DataSource.load`) and is recorded as ``config.data`` in ``audit.json``.
- :func:`audit_models` runs an audit end to end: the models' common split, :func:`run_audit`,
  the paired comparison when there are two or more models, the audit folder, and explanations.
- :func:`holdout_quality` is the mean accuracy of a model's top-K over the test users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, get_args

import pandas as pd

from fairaudit.audit import (
    AuditConfig,
    AuditResult,
    common_split,
    is_audit_folder,
    plain_attributes,
    run_audit,
    write_audit,
)
from fairaudit._choices import IMPORTED_KINDS as IMPORTED_KINDS  # re-exported: kinds audited, never trained
from fairaudit._choices import DEFAULT_PROBE_USERS, TRAINABLE_KINDS
from fairaudit.compare import add_comparison
from fairaudit.data import Dataset, Split, check_folder_target, load_dataset, load_sample, load_tables
from fairaudit.metrics import accuracy_metrics

if TYPE_CHECKING:  # torch loads with the first model, not with a data source
    from fairaudit.models import Recommender

SourceKind = Literal["sample", "folder", "files"]
#: Kinds of :class:`DataSource`: the bundled sample, a folder or file (``load_dataset``), uploaded tables.
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
#: Table roles of a ``"files"`` source; ``interactions`` is required.
TABLE_ROLES = ("interactions", "users", "items", "texts")
#: Row label of :func:`holdout_quality`'s means.
HOLDOUT_LABEL = "mean over test users"

_BAD_KIND = "Data source kind '{0}' is unknown; expected one of {1}"
_NO_PATH = "Data source '{0}' records no {1} (written without paths); give the data again, e.g. --data PATH"
_BAD_ROLE = "Uploaded table role '{0}' is unknown; expected some of {1} (interactions is required)"
_SPLIT_DIFFERS = (
    "Model '{0}' was trained on split {1} (fingerprint {2}), but the audit's ground truth is {3} (fingerprint {4}); "
    "audit it with the split it was trained on (drop --split/--test to use the model's split)"
)


def _pairs(value: Mapping[str, str] | tuple | None) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else (value or ())
    return tuple(sorted((str(k), str(v)) for k, v in items))


@dataclass(frozen=True)
class DataSource:
    """Where a dataset comes from: hashable, loadable, and recorded in ``audit.json`` (``config.data``).

    Parameters
    ----------
    kind : {"sample", "folder", "files"}
        The bundled sample; a folder or interactions file (``path``, read by ``load_dataset``);
        uploaded tables (``files``: role -> path, read by ``load_tables``).
    path : str
        Folder or file of a ``"folder"`` source.
    files : mapping or tuple of pairs
        ``{"interactions": path, "users": path, "items": path}`` of a ``"files"`` source.
    mapping : mapping or tuple of pairs
        Column renames ``{"theirs": "ours"}`` applied before loading.
    name : str
        Display name (uploads: the uploaded file's name).

    Mappings are stored as sorted tuples of pairs, so equal sources hash alike.

    Examples
    --------
    >>> source = DataSource("folder", path="sample_data", mapping={"sex": "gender"})
    >>> source.to_dict()
    {'source': 'folder', 'path': 'sample_data', 'mapping': {'sex': 'gender'}, 'name': ''}
    >>> DataSource.from_dict(source.to_dict()) == source and hash(source) == hash(DataSource.from_dict(source.to_dict()))
    True
    >>> DataSource.from_dict({"path": "sample_data", "models": {"pop": "models/pop"}}).kind  # an older audit.json
    'folder'
    """

    kind: SourceKind = "sample"
    path: str = ""
    files: tuple[tuple[str, str], ...] = field(default=())
    mapping: tuple[tuple[str, str], ...] = field(default=())
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(_BAD_KIND.format(self.kind, SOURCE_KINDS))
        object.__setattr__(self, "path", str(self.path))
        object.__setattr__(self, "files", _pairs(self.files))
        object.__setattr__(self, "mapping", _pairs(self.mapping))
        object.__setattr__(self, "name", str(self.name))
        unknown = [role for role, _ in self.files if role not in TABLE_ROLES]
        if unknown:
            raise ValueError(_BAD_ROLE.format(unknown[0], TABLE_ROLES))

    def load(self) -> Dataset:
        """Load and validate the data (raises ``DataError`` listing every blocking problem).

        >>> DataSource().load().summary()["n_users"]
        2000
        """
        mapping = dict(self.mapping) or None
        if self.kind == "sample":
            return load_sample()
        if self.kind == "files":
            paths = dict(self.files)
            if "interactions" not in paths:
                raise ValueError(_NO_PATH.format(self.name or self.kind, "interactions file"))
            return load_tables(
                paths["interactions"], paths.get("users"), paths.get("items"), texts=paths.get("texts"),
                mapping=mapping, name=self.name or None,
            )  # fmt: skip
        if not self.path:
            raise ValueError(_NO_PATH.format(self.name or self.kind, "path"))
        return load_dataset(self.path, mapping=mapping)

    def resolved(self, base_dir: str | Path) -> "DataSource":
        """The same source with relative paths taken from ``base_dir`` (e.g. a configuration file's folder).

        >>> DataSource("folder", path="data").resolved("/srv/audits").path
        '/srv/audits/data'
        """
        base = Path(base_dir)
        path = str((base / self.path).resolve()) if self.path else ""
        return replace(self, path=path, files={role: str((base / p).resolve()) for role, p in self.files})

    def to_dict(self, *, paths: bool = True) -> dict[str, Any]:
        """JSON-ready record (``config.data`` of ``audit.json``): ``source, path[, files], mapping, name``.

        ``paths=False`` leaves the file locations out (a dashboard session's private upload folder):
        the record then says only what kind of data, mapping and name were audited.

        >>> DataSource("files", files={"interactions": "/tmp/plays.csv"}, name="plays.csv").to_dict(paths=False)
        {'source': 'files', 'mapping': {}, 'name': 'plays.csv'}
        """
        record: dict[str, Any] = {"source": self.kind}
        if paths:
            record["path"] = self.path
            if self.kind == "files":
                record["files"] = dict(self.files)
        return {**record, "mapping": dict(self.mapping), "name": self.name}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any] | None) -> "DataSource":
        """Inverse of :meth:`to_dict`; also reads the ``config.data`` of older audit folders.

        Older records: ``{"path", "models"}`` (CLI), ``{"path", "mapping"}`` (``run``) and
        ``{"name", "source", "mapping"}`` (dashboard). Other keys (``models``) are ignored.

        >>> DataSource.from_dict({"name": "sample_data", "source": "sample", "mapping": {}})
        DataSource(kind='sample', path='', files=(), mapping=(), name='sample_data')
        """
        record = dict(record or {})
        kind = record.get("source") or ("files" if record.get("files") else "folder" if record.get("path") else "sample")
        return cls(
            kind=kind,
            path=str(record.get("path") or ""),
            files=record.get("files") or {},
            mapping=record.get("mapping") or {},
            name=str(record.get("name") or ""),
        )


@dataclass(frozen=True)
class ExplainOptions:
    """Explanations :func:`audit_models` adds to the audit folder (``shap_drivers.csv``, ``probes.csv`` ...).

    Attributes
    ----------
    probe_users : int or None
        Users probed per model and attribute (a seeded sample; ``None`` probes every user).
    """

    probe_users: int | None = DEFAULT_PROBE_USERS


def explain_options(explain: ExplainOptions | int | bool | None) -> ExplainOptions | None:
    """``audit_models``' ``explain`` argument as options: ``None``/``False`` -> none, ``True`` -> defaults,
    an int -> that many probed users.

    >>> explain_options(True) == ExplainOptions(), explain_options(50).probe_users, explain_options(None)
    (True, 50, None)
    """
    if explain is None or explain is False:
        return None
    if explain is True:
        return ExplainOptions()
    if isinstance(explain, ExplainOptions):
        return explain
    return ExplainOptions(probe_users=int(explain))


def explanation_attributes(specs: tuple[str, ...] | list[str], dataset: Dataset) -> list[str]:
    """The plain attributes behind the audited ``specs`` that are user columns (what is explained and probed).

    >>> import pandas as pd
    >>> users = pd.DataFrame({"user_id": ["a"], "gender": ["F"], "age_band": ["18-24"]})
    >>> data = Dataset(pd.DataFrame(columns=["user_id", "item_id"]), users, pd.DataFrame())
    >>> explanation_attributes(["gender*age_band", "popularity_tier"], data)
    ['gender', 'age_band']
    """
    return [a for a in plain_attributes(specs) if a in dataset.users.columns]


def audit_models(
    dataset: Dataset,
    models: Mapping[str, Recommender],
    config: AuditConfig = AuditConfig(),
    *,
    explain: ExplainOptions | int | bool | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    baseline: str | None = None,
    progress: Callable[[str], None] | None = None,
    split: Split | None = None,
) -> AuditResult:
    """Audit fitted ``models`` on the split they were trained on; compare, write and explain.

    Steps: the one split all models were trained on (:func:`~fairaudit.audit.common_split`,
    refusing models trained on different splits), :func:`~fairaudit.audit.run_audit`, the paired
    comparison of the models when there are two or more
    (:func:`fairaudit.compare.add_comparison`, against ``baseline``, default the first), with
    ``explain`` the explanation tables of every model for the plain user attributes behind the
    audited specs (:func:`~fairaudit.explain.explain_audit`), and, when ``out`` is given, the
    audit folder holding all of it (:func:`~fairaudit.audit.write_audit`).

    Parameters
    ----------
    dataset : Dataset
        The data the models were trained on.
    models : mapping
        Display name -> fitted model.
    config : AuditConfig
        K, attributes, resampling and thresholds; ``config.data`` records the source
        (:meth:`DataSource.to_dict`).
    explain : ExplainOptions, int, bool or None
        Add SHAP gap drivers and counterfactual probes (an int: users probed per model and attribute).
    out : str or Path, optional
        Audit folder to write (atomically, under a lock; see :meth:`~fairaudit.audit.AuditResult.write`).
    overwrite : bool
        Replace an existing audit folder ``out`` (refused otherwise).
    baseline : str, optional
        Model the others are compared with (default: the first).
    progress : callable, optional
        Receives a short status line per step.
    split : Split, optional
        The ground truth to audit on (e.g. a test file for imported lists); every model must have
        been fitted on it (same fingerprint), else ``ValueError`` naming the model. Default: the
        models' common split.

    Returns
    -------
    AuditResult
        With ``comparison``/``verdicts`` when two or more models were audited, and
        ``probes``/``shap_drivers``/``gap_decomposition``/``explanations`` with ``explain``.

    Examples
    --------
    >>> from fairaudit.data import make_split
    >>> from fairaudit.models import create_model
    >>> data = DataSource().load()
    >>> model = create_model("popularity").fit(data, make_split(data, "random", seed=0))
    >>> config = AuditConfig(k=5, attributes=("gender",), bootstrap_rounds=20, embedding_diversity=False)
    >>> result = audit_models(data, {"pop": model}, config)
    >>> sorted(set(result.gaps["attribute"]))
    ['gender']
    """
    options = explain_options(explain)
    say = progress or (lambda _line: None)
    if out is not None:  # refuse an output it may not write before the work, not after it
        check_folder_target(out, overwrite=overwrite, is_ours=is_audit_folder, kind="audit folder")
    if split is None:
        split = common_split(dataset, models)
    else:
        check_split(models, split)
    result = run_audit(dataset, split, models, config, progress=progress)
    if len(models) >= 2:
        say("comparing the models")
        result = add_comparison(result, baseline=baseline)
    if options is not None:
        from fairaudit.explain import explain_audit  # torch and shap: only when explanations are asked for

        say("explaining gaps and probing attributes")
        attributes = explanation_attributes(result.config.attributes, dataset)
        result = explain_audit(result, dataset, models, attributes=attributes, probe_users=options.probe_users)
    if out is not None:
        write_audit(result, out, overwrite=overwrite)
    return result


def check_split(models: Mapping[str, Recommender], split: Split) -> None:
    """Refuse (``ValueError``) any model not fitted on ``split`` (its recorded split fingerprint differs).

    >>> from fairaudit.data import make_split
    >>> from fairaudit.models import create_model
    >>> data = DataSource().load()
    >>> model = create_model("popularity").fit(data, make_split(data, "random", seed=0))
    >>> check_split({"pop": model}, make_split(data, "random", seed=1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Model 'pop' was trained on split random...
    """
    want = split.describe()
    for name, model in models.items():
        got = model.split_
        if got.get("fingerprint") != want["fingerprint"]:
            raise ValueError(_SPLIT_DIFFERS.format(
                name, _split_words(got), got.get("fingerprint"), _split_words(want), want["fingerprint"]
            ))  # fmt: skip


def _split_words(info: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in (info.get("params") or {}).items() if k != "sha256")
    return f"{info.get('method')} (seed {info.get('seed')}{', ' + params if params else ''})"


def trainable_kinds() -> tuple[str, ...]:
    """Registered model kinds that are trained on data (re-rankers wrap a fitted model; imported lists are read).

    >>> {"llm", "popularity", "itemknn", "mf"} <= set(trainable_kinds()) and "rerank_mmr" not in trainable_kinds()
    True
    >>> "imported" in trainable_kinds()
    False
    """
    from fairaudit.models import model_kinds

    return tuple(kind for kind in model_kinds() if kind in TRAINABLE_KINDS)


def holdout_quality(model: Recommender, split: Split, *, k: int = 10) -> pd.Series:
    """Mean accuracy (``ndcg, recall, precision, hit_rate, mrr`` at ``k``) of ``model`` over the test users.

    The users are those an audit evaluates: test users the model has lists for
    (:meth:`~fairaudit.models.Recommender.evaluated_users`), so this figure is the audit's overall mean
    (and a generative model answers only for its seeded sample of users).

    >>> from fairaudit.data import make_split
    >>> from fairaudit.models import create_model
    >>> data = DataSource().load()
    >>> split = make_split(data, "random", seed=0)
    >>> quality = holdout_quality(create_model("popularity").fit(data, split), split, k=10)
    >>> quality.name, list(quality.index)
    ('mean over test users', ['ndcg', 'recall', 'precision', 'hit_rate', 'mrr'])
    """
    users = pd.Index(split.test["user_id"].astype(str).unique())
    users = users[users.isin(pd.Index(model.evaluated_users()))]
    recs = model.recommend(users.to_numpy(), k=k)
    return accuracy_metrics(recs, split.test, k=k).mean().rename(HOLDOUT_LABEL)
