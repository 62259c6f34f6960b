"""Model page: train with a preset (in a worker process, with live progress for every phase and
cancel), compare trained models on a leaderboard, load a saved folder or import another system's
lists; see the selected model's configuration, validation curve and holdout quality."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import get_args, get_type_hints

import pandas as pd
import streamlit as st

from fairaudit import service
from fairaudit.data import DataError, file_sha256, load_recommendations, load_test_split
from fairaudit.models import ImportedRecommender, create_model, privacy_record, privacy_summary
from fairaudit.workspace import (
    DEFAULT_KIND,
    PACKAGED_ENCODER,
    PRESET_HELP,
    PRESET_NAMES,
    default_choice,
    leaderboard,
    param_choices,
    param_help,
    physical_cores,
    preset_params,
    rebalance_threads,
    running_jobs,
    safe_filename,
    settings_name,
    start_training,
)
from pages import _state as S

KIND_HELP = {
    "llm": "Two-tower recommender over a Hugging Face text encoder (reads item text; scores cold items).",
    "popularity": "Most-popular baseline: the same list for everyone (instant).",
    "itemknn": "Item-kNN (cosine) baseline.",
    "mf": "Matrix-factorisation baseline (ALS or BPR, on the implicit library).",
    "generative": "Generative LLM (SmolLM2-135M by default, or any local causal-LM folder): ranks candidates by the "
                  "likelihood of their titles, or writes titles that are matched to the catalogue. Slow on a CPU; "
                  "audits a seeded sample of users.",
}
#: Seconds between progress refreshes of the jobs panel: each refresh reruns the panel in the server, so a
#: faster poll costs the other sessions (at 0.5 s a second session waited 6-8 s for a page, bench_dashboard).
POLL_S = 2.0
#: The LLM's differential-privacy settings, drawn in their own panel (docs/privacy.md).
PRIVACY_PARAMS = {"dp_epsilon": "Target ε (empty: no DP)", "dp_delta": "δ (empty: 1 / n_users^1.1)",
                  "dp_max_grad_norm": "Clipping norm C (per user)"}  # fmt: skip

S.start_page()
st.title("Model")
ss = st.session_state
dataset = S.current_dataset()
if dataset is None:
    st.stop()


def _apply_preset(kind: str, preset: str) -> None:
    """Reset the Advanced inputs, so each is drawn again with the preset's value (never set through the
    Session State API: browsers then keep showing the widget's own default)."""
    for name in preset_params(kind, preset):
        ss.pop(f"param_{kind}_{name}", None)
    ss["_preset_applied"] = (kind, preset, S.current_fingerprint())


def param_inputs(kind: str, preset: str) -> dict:
    """One input per hyper-parameter of ``kind`` with its help text: a select box where the choices are known
    (options, devices here, columns this dataset has), else a typed input. Starts from ``preset``."""
    if ss.get("_preset_applied") != (kind, preset, S.current_fingerprint()):
        _apply_preset(kind, preset)
    defaults = preset_params(kind, preset)
    hints = get_type_hints(type(create_model(kind)).__init__)
    choices, helps = param_choices(kind, dataset), param_help(kind)
    params, cols = {}, st.columns(3)
    for i, (name, default) in enumerate((n, d) for n, d in defaults.items() if n not in PRIVACY_PARAMS):
        box, key, help_text = cols[i % 3], f"param_{kind}_{name}", helps.get(name) or None
        if name in choices and isinstance(default, (list, tuple)):
            params[name] = tuple(box.multiselect(name, choices[name], default=default_choice(default, choices[name]),
                                                 key=key, help=help_text))  # fmt: skip
        elif name in choices:
            if not choices[name]:
                box.caption(f"{name}: this dataset has no suitable column (only used by its fairness term).")
                params[name] = default
                continue
            value = default_choice(default, choices[name])
            params[name] = box.selectbox(name, choices[name], index=list(choices[name]).index(value), key=key,
                                         help=help_text)  # fmt: skip
        elif isinstance(default, bool):
            params[name] = box.checkbox(name, value=default, key=key, help=help_text)
        elif name == "encoder":
            text = box.text_input(name, value=default or "", key=key, placeholder=PACKAGED_ENCODER, help=help_text)
            params[name] = (text or "").strip() or None
        elif isinstance(default, (int, float)) or (default is None and {int, float} & set(get_args(hints.get(name)))):
            whole = isinstance(default, int) or int in get_args(hints.get(name))
            value = box.number_input(name, value=default, key=key, step=1 if whole else None,
                                     format=None if whole else "%g", help=help_text)  # fmt: skip
            params[name] = value if value is None else (int(value) if whole else float(value))
        elif isinstance(default, str) or default is None:
            params[name] = box.text_input(name, value=default or "", key=key, help=help_text) or None
        else:
            text = box.text_input(f"{name} (JSON)", value=json.dumps(default), key=key, help=help_text)
            try:
                params[name] = json.loads(text)
            except ValueError:
                box.error(f"{name}: not valid JSON; using the preset's {S.md(json.dumps(default))}.")
                params[name] = default
    return params


def privacy_inputs(kind: str, preset: str) -> dict:
    """ε, δ and the clipping norm of DP-SGD training (call after :func:`param_inputs`, which resets presets)."""
    defaults, helps, cols = preset_params(kind, preset), param_help(kind), st.columns(3)
    out = {}
    for box, (name, label) in zip(cols, PRIVACY_PARAMS.items()):
        value = box.number_input(label, value=defaults[name], min_value=1e-9, max_value=1.0 if name == "dp_delta" else None,
                                 format="%g", key=f"param_{kind}_{name}", help=helps.get(name) or None)  # fmt: skip
        out[name] = None if value is None else float(value)
    return out


def start_job(kind: str, params: dict) -> None:
    fingerprint = S.current_fingerprint()
    out_dir = S.workspace().model_dir(kind, fingerprint, params)
    # A folder saved by an earlier FairAudit (no config checksum) cannot be verified: it is re-trained in place.
    if (out_dir / "config.json").is_file() and "config_sha256" in S.model_config(out_dir):
        ss["select_model"] = S.model_label(out_dir)
        ss["job_message"] = ("info", f"This configuration was already trained on this data; "
                                     f"selected the saved model {S.md(ss['select_model'])}.")
        return
    create_model(kind, **params)  # refuses bad values here, as a message, before a worker starts
    job = start_training(
        S.workspace().root, kind=kind, params=params, data=S.current_source().to_dict(), out_dir=out_dir,
        session=ss["session_id"], label=f"{kind}-{settings_name(kind, params)}", split_method=S.SPLIT_METHOD,
        split_seed=S.SPLIT_SEED, threads=int(ss["train_threads"]),
        info={"data_name": dataset.name, "settings": settings_name(kind, params)},
    )  # fmt: skip
    ss["job"] = job


def _progress_text(job) -> tuple[float, str]:
    state = job.state()
    phase, kind = state.get("phase", "starting"), job.spec.get("kind", "")
    if phase == "encoding" and state.get("total"):
        return state.get("done", 0) / state["total"], (
            f"Training {kind}: encoding item texts {state.get('done', 0):,}/{state['total']:,}")
    if phase == "training" and state.get("n_epochs"):
        return state.get("epoch", 0) / state["n_epochs"], f"Training {kind}: epoch {state.get('epoch', 0)}/{state['n_epochs']}"
    return 0.0, f"Training {kind}: {phase}"


def show_running(job, *, key: str) -> None:
    """Progress of one running job: phase with n/N, rate, loss, elapsed and time left, and Cancel."""
    fraction, text = _progress_text(job)
    st.progress(min(fraction, 1.0), text=text)
    state = job.state()
    cols = st.columns(4)
    loss = state.get("loss")
    cols[0].metric("Loss", "—" if loss is None else f"{loss:.4f}")
    cols[1].metric("Elapsed", f"{job.elapsed_s:.0f} s")
    left = job.time_left_s
    cols[2].metric("Time left", "—" if left is None else f"~{left:.0f} s", help="Of the current phase.")
    rate = state.get("rate")
    cols[3].metric("Rate", "—" if not rate else f"{rate:.0f} {state.get('unit', '')}/s")
    if state.get("message"):
        st.caption(S.md(state["message"]))
    losses = job.losses
    if len(losses) > 1:
        st.line_chart(pd.DataFrame({"loss": losses}), height=160, x_label="epoch", y_label="loss")
    # A callback (see S.follow_job); the panel's next run finds the job ended and says so.
    st.button("Cancel training", key=key, on_click=job.cancel)


def jobs_panel() -> None:
    """The session's jobs (from the workspace, so a reload lists them again); polls only while one runs."""
    polling = "job" in ss or any(j.status == "running" for j in S.session_jobs())
    st.fragment(run_every=POLL_S if polling else None)(_jobs_panel)()


def _jobs_panel() -> None:
    job = ss.get("job")
    if job is not None and job.status != "running":
        ss.pop("job")
        label = S.model_label(job.out_dir) if job.status == "done" else job.label
        if job.status == "done":
            ss["select_model"] = label
            ss["job_message"] = ("success", f"Trained and saved {S.md(label)} in {job.elapsed_s:.1f} s.")
        elif job.status == "cancelled":
            ss["job_message"] = ("warning", f"Training stopped: {S.md(job.error)}. Nothing was saved.")
        else:
            ss["job_message"] = ("error", f"Training failed: {S.md(job.error)}. Check the parameters and try again.")
        st.rerun()
    jobs = S.session_jobs()
    running = [j for j in jobs if j.status == "running"]
    for one in running:
        st.markdown(f"**{S.md(one.label)}**")
        show_running(one, key="cancel_training" if job is not None and one.id == job.id else f"cancel_{one.id}")
    finished = [j for j in jobs if j not in running][:10]
    if finished:
        with st.expander(f"Finished jobs of this session ({len(finished)})"):
            for one in finished:
                st.caption(f"{S.md(one.label)}: {S.md(one.describe())} ({one.elapsed_s:.1f} s)")


def train_section() -> None:
    st.subheader("Train a model")
    # Re-rankers wrap a fitted base model: they are built by the Compare page's mitigation sweep.
    kinds = list(service.trainable_kinds())
    kind = st.selectbox("Model kind", kinds, index=kinds.index(DEFAULT_KIND) if DEFAULT_KIND in kinds else 0,
                        key="train_kind")  # fmt: skip
    st.caption(KIND_HELP.get(kind, ""))
    preset = st.radio("Preset", PRESET_NAMES, horizontal=True, key="train_preset",
                      captions=[PRESET_HELP[p] for p in PRESET_NAMES])  # fmt: skip
    with st.expander("Advanced: every hyper-parameter", expanded=False):
        params = param_inputs(kind, preset)
    if set(PRIVACY_PARAMS) <= set(preset_params(kind, preset)):
        with st.expander("Privacy: differentially private training (DP-SGD)", expanded=False):
            st.caption("Set a target ε to train with user-level DP-SGD (Opacus): each user's gradient is clipped to C "
                       "and calibrated noise added; the ε actually spent is saved with the model and shown in the "
                       "leaderboard. Early stopping, fairness terms and the in-batch loss are refused under DP.")
            params.update(privacy_inputs(kind, preset))
    ss.setdefault("train_threads", physical_cores())
    st.number_input("Threads per job", min_value=1, max_value=max(os.cpu_count() or 1, 1), step=1, key="train_threads",
                    help="Torch threads of a training job (default: the physical cores). While several jobs run, "
                         "each gets one thread, so the dashboard stays responsive.")  # fmt: skip
    split = S.split_for(dataset)
    st.caption(
        f"Trained in a separate worker process on a per-user random holdout split ({len(split.train):,} train / "
        f"{len(split.test):,} test interactions, seed {S.SPLIT_SEED}); saved to the workspace so it survives a restart."
    )
    if st.button("Train", type="primary", key="train"):
        with S.user_errors("Starting training"):
            start_job(kind, params)
            rebalance_threads(S.workspace().root, int(ss["train_threads"]))
            st.rerun()
    if "job_message" in ss:
        level, text = ss.pop("job_message")
        getattr(st, level)(text)
    others = len(running_jobs(S.workspace().root)) - len([j for j in S.session_jobs() if j.status == "running"])
    if others > 0:
        st.caption(f"{others} job(s) of other sessions are running; each job uses one thread meanwhile.")
    jobs_panel()


@st.cache_data(show_spinner="Scoring every model on the holdout…", max_entries=16)
def _leaderboard(_models, _dataset, _split, keys: tuple, data_fp: str, k: int, _info) -> tuple[pd.DataFrame, list]:
    return leaderboard(_models, _dataset, _split, k=k, info=_info)


def leaderboard_section() -> None:
    st.subheader("Leaderboard")
    folders = S.available_models()
    if not folders:
        st.info(S.NO_MODEL_HINT)
        return
    saved = {m.label: m for m in S.workspace().saved_models(S.current_fingerprint())}
    split, k = S.split_for(dataset), S.selected_k()
    with S.user_errors("Scoring the models"):
        models = {label: S.model_at(path, dataset) for label, path in folders.items()}
        info = {label: {"fit_s": saved[label].info.get("fit_s") if label in saved else None,
                        "data": saved[label].info.get("data_name", dataset.name) if label in saved else dataset.name}
                for label in models}  # fmt: skip
        keys = tuple((label, path, S.weights_checksum(path)) for label, path in folders.items())
        table, warnings = _leaderboard(models, dataset, split, keys, S.current_fingerprint(), k, info)
        st.caption(f"Holdout quality @ {k} on {split.test['user_id'].nunique():,} test users, against a popularity "
                   "baseline fitted on the same split; `vs baseline` is the NDCG difference with its paired-bootstrap "
                   "95% interval.")  # fmt: skip
        st.dataframe(table, hide_index=True, column_config={
            "fit_s": st.column_config.NumberColumn("fit (s)", format="%.1f"),
            **{c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
               if c not in ("model", "kind", "data", "fit_s")}})  # fmt: skip
        for warning in warnings:
            st.warning(S.md(warning))


def show_validation(config: dict) -> None:
    """The model's validation record (``config["validation"]``: metric, curve, best step, chosen settings),
    read defensively: anything missing or oddly shaped is left out."""
    record = config.get("validation")
    if not isinstance(record, dict) or not record:
        return
    metric = str(record.get("metric", "validation metric"))
    st.markdown(f"**Validation** ({S.md(metric)})")
    curve = record.get("curve")
    if isinstance(curve, list):
        points = pd.DataFrame([p for p in curve if isinstance(p, dict)])
        if {"step", "value"} <= set(points.columns):
            points = points[["step", "value"]].apply(pd.to_numeric, errors="coerce").dropna()
            if len(points):
                st.line_chart(points.set_index("step")["value"].rename(metric), height=180, x_label="step",
                              y_label=metric)  # fmt: skip
    if record.get("best_step") is not None:
        st.caption(f"Best step: {S.md(record['best_step'])}")
    if isinstance(record.get("chosen"), dict) and record["chosen"]:
        st.caption("Chosen settings: " + ", ".join(f"{S.md(k)} = {S.md(v)}" for k, v in record["chosen"].items()))


def load_section() -> None:
    st.subheader("Load a saved model folder")
    path = st.text_input("Folder (with config.json and model.safetensors)", key="load_path")
    if st.button("Load folder", key="load_folder") and path:
        try:
            S.model_at(path, dataset)
        except S.USER_ERRORS as err:
            st.error(f"{S.md(err)}\n\nPick a folder written by FairAudit for this dataset "
                     "(Model page or `python -m fairaudit train`).")
            return
        if path not in ss["loaded_models"]:
            ss["loaded_models"].append(path)
        ss["select_model"] = S.loaded_label(path)
        st.rerun()


@st.cache_data(show_spinner="Scoring the holdout…", max_entries=32)
def holdout_quality(_model, _split, path: str, weights_sha: str, data_fp: str, k: int) -> pd.DataFrame:
    """Mean accuracy of the model's top-``k`` over the test users (cached per model, data and K)."""
    return service.holdout_quality(_model, _split, k=k).to_frame().T


def selected_section() -> None:
    st.subheader("Selected model")
    chosen = S.selected_model(dataset)
    if chosen is None:
        return
    label, model = chosen
    path = S.available_models()[label]
    split, k = S.split_for(dataset), S.selected_k()
    config = json.loads((Path(path) / "config.json").read_text())
    cols = st.columns(3)
    cols[0].metric("Kind", model.kind)
    cols[1].metric("Fingerprint", model.fingerprint()[-8:])
    cols[2].metric("Trained on", f"{config.get('split', {}).get('n_train', 0):,} interactions")
    st.caption(f"Privacy: {S.md(privacy_summary(privacy_record(config)))}")
    if config.get("split", {}).get("fingerprint") != split.describe()["fingerprint"]:
        st.warning("This model was trained on a different split than the dashboard's; "
                   "its holdout figures may be optimistic.")
    with S.user_errors("Holdout evaluation"):
        quality = holdout_quality(model, split, path, S.weights_checksum(path), S.current_fingerprint(), k)
        st.markdown(f"**Holdout quality @ {k}** ({split.test['user_id'].nunique():,} test users)")
        st.dataframe(quality.round(4), hide_index=True)
    show_validation(config)
    with st.expander("Configuration (config.json)"):
        st.json({key: value for key, value in config.items() if key not in ("user_ids", "item_ids")}, expanded=2)


IMPORT_TYPES = ["csv", "tsv", "parquet"]


def show_import_report() -> None:
    """The last import's validation report (kept in the session across the rerun that selects it)."""
    report = ss.get("import_report")
    if not report:
        return
    st.success(f"Imported **{S.md(report['file'])}**: " + "; ".join(S.md(line) for line in report["systems"])
               + ". Pick it in the sidebar's **Model** box to audit, compare or report on it.")
    st.caption(f"Ground truth: {S.md(report['truth'])}")
    if report["warnings"]:
        with st.expander(f"Validation report: {len(report['warnings'])} warning(s)", expanded=True):
            for line in report["warnings"]:
                st.warning(S.md(line))
    else:
        st.caption("Validation: no problems found.")


def import_recommendations(upload, test_upload, name: str) -> None:
    """Validate the uploaded lists against the dataset and the ground truth; on success save each system
    (an ``imported`` model folder in this session's private folder) and select the first."""
    ws, session = S.workspace(), ss["session_id"]
    content = upload.getvalue()
    path = ws.save_upload(session, f"recommendations-{S.content_hash(content)}-{upload.name}", content, folder="imported")
    warnings = []
    if test_upload is not None:
        test = test_upload.getvalue()
        test_path = ws.save_upload(session, f"test-{S.content_hash(test)}-{test_upload.name}", test, folder="imported")
        split, test_warnings = load_test_split(test_path, dataset)
        warnings += test_warnings
        truth = f"held-out interactions of {test_upload.name} ({len(split.test):,} rows)"
    else:
        split = S.split_for(dataset)
        truth = f"the dashboard's split ({split.method}, seed {S.SPLIT_SEED}; {len(split.test):,} test interactions)"
    frame, list_warnings = load_recommendations(path, dataset, split=split, k=S.selected_k(), name=name or None)
    warnings += list_warnings
    sha, labels, systems = file_sha256(path), [], []
    for system, lists in frame.groupby("model", sort=False):
        model = ImportedRecommender.from_recommendations(lists, dataset, split, system=str(system),
                                                         source=upload.name, sha256=sha)  # fmt: skip
        folder = ws.session_dir(session) / "imported" / f"{safe_filename(str(system))}-{sha[:10]}-{split.describe()['fingerprint'][:8]}"
        model.save(folder, overwrite=True)
        label = S.imported_label(str(system))
        ss["imported_models"][label] = str(folder)
        labels.append(label)
        systems.append(f"{label}: {lists['user_id'].nunique():,} users, {len(lists):,} rows")
    ss["import_report"] = {"file": upload.name, "systems": systems, "truth": truth,
                           "warnings": [str(issue) for issue in warnings]}  # fmt: skip
    if labels:
        ss["select_model"] = labels[0]
    st.rerun()


def import_section() -> None:
    st.subheader("Import recommendations from another system")
    st.caption(
        "Audit a recommender FairAudit did not train: upload its top-K lists (CSV, TSV or Parquet with "
        "`user_id, item_id` and `rank` or `score`; an optional `model` column holds several systems). The lists "
        "are judged on the dashboard's split unless you upload the held-out test interactions the system did not "
        "train on. Uploads stay private to this browser session."
    )
    show_import_report()
    upload = st.file_uploader("Recommendations file", type=IMPORT_TYPES, key="import_recs")
    test_upload = st.file_uploader("Held-out test interactions (optional)", type=IMPORT_TYPES, key="import_test")
    name = st.text_input("System name", key="import_name",
                         help="Used when the file has no `model` column (default: the file's name).")
    if upload is None or not st.button("Import recommendations", type="primary", key="import_button"):
        return
    try:
        import_recommendations(upload, test_upload, name.strip())
    except DataError as err:
        ss.pop("import_report", None)
        st.error(f"**{S.md(upload.name)}** cannot be imported. Fix these problems in the file and upload it "
                 f"again:\n\n{S.md(err)}")
    except S.USER_ERRORS as err:
        ss.pop("import_report", None)
        st.error(f"**{S.md(upload.name)}** cannot be imported: {S.md(err)}")


train_section()
st.divider()
selected_section()
st.divider()
leaderboard_section()
st.divider()
load_section()
st.divider()
import_section()
