"""Model page: train (in the background, with live progress and cancel) or load a saved folder;
see the selected model's configuration and its quality on the holdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints

import pandas as pd
import streamlit as st

from fairaudit import service
from fairaudit.data import DataError, file_sha256, load_recommendations, load_test_split
from fairaudit.models import ImportedRecommender, create_model
from fairaudit.workspace import safe_filename
from fairaudit.workspace import TrainingJob
from pages import _state as S

#: Dashboard defaults that keep training on the sample interactive (any other value can be typed in).
QUICK_DEFAULTS = {"epochs": 20, "iterations": 5}
KIND_HELP = {
    "llm": "Two-tower recommender over a Hugging Face text encoder (reads item text; scores cold items).",
    "popularity": "Most-popular baseline: the same list for everyone (instant).",
    "itemknn": "Item-kNN (cosine) baseline.",
    "mf": "Matrix-factorisation baseline.",
}
POLL_S = 0.5

S.start_page()
st.title("Model")
ss = st.session_state
dataset = S.current_dataset()
if dataset is None:
    st.stop()


def param_inputs(kind: str) -> dict:
    """One input per hyper-parameter of ``kind``, pre-filled with its defaults (a select box where the
    parameter is typed as a ``Literal``)."""
    model = create_model(kind)
    defaults = model.get_params()
    hints = get_type_hints(type(model).__init__)
    params = {}
    cols = st.columns(3)
    for i, (name, value) in enumerate(defaults.items()):
        value = QUICK_DEFAULTS.get(name, value)
        box, key = cols[i % 3], f"param_{kind}_{name}"
        choices = get_args(hints[name]) if get_origin(hints.get(name)) is Literal else ()
        if value in choices:
            params[name] = box.selectbox(name, choices, index=choices.index(value), key=key)
        elif isinstance(value, bool):
            params[name] = box.checkbox(name, value=value, key=key)
        elif isinstance(value, int):
            params[name] = int(box.number_input(name, value=value, step=1, key=key))
        elif isinstance(value, float):
            params[name] = float(box.number_input(name, value=value, format="%g", key=key))
        elif isinstance(value, str) or value is None:
            text = box.text_input(name, value="" if value is None else value, key=key)
            params[name] = text or None
        else:
            text = box.text_input(f"{name} (JSON)", value=json.dumps(value), key=key)
            try:
                params[name] = json.loads(text)
            except ValueError:
                box.error(f"{name}: not valid JSON; using the default {json.dumps(value)}.")
                params[name] = value
    return params


def start_training(kind: str, params: dict) -> None:
    fingerprint = S.current_fingerprint()
    out_dir = S.workspace().model_dir(kind, fingerprint, params)
    # A folder saved by an earlier FairAudit (no config checksum) cannot be verified: it is re-trained in place.
    if (out_dir / "config.json").is_file() and "config_sha256" in S._config(out_dir):
        ss["select_model"] = S.model_label(out_dir)
        ss["job_message"] = ("info", f"This configuration was already trained on this data; "
                                     f"selected the saved model {S.md(out_dir.name)}.")
        return
    model = create_model(kind, **params)
    ss["job"] = TrainingJob(model, dataset, S.split_for(dataset), out_dir).start()
    ss["job_kind"] = kind


@st.fragment(run_every=POLL_S)
def training_progress() -> None:
    """Polls the background job; the rest of the page stays usable while it runs."""
    job: TrainingJob = ss["job"]
    p = job.latest
    if job.status == "running":
        epoch = f"epoch {p.epoch}/{p.n_epochs}" if p else "starting"
        st.progress(p.fraction if p else 0.0, text=f"Training {ss.get('job_kind', '')}: {epoch}")
        cols = st.columns(3)
        cols[0].metric("Loss", f"{p.loss:.4f}" if p and p.loss == p.loss else "—")
        cols[1].metric("Elapsed", f"{job.elapsed_s:.0f} s")
        left = job.time_left_s
        cols[2].metric("Time left", "—" if left is None else f"~{left:.0f} s")
        if p and p.message:
            st.caption(p.message)
        if len(job.losses) > 1:
            st.line_chart(pd.DataFrame({"loss": job.losses}), height=180, x_label="epoch", y_label="loss")
        if st.button("Cancel training", key="cancel_training"):
            job.cancel()
            st.toast("Cancelling after the current epoch…")
        return
    ss.pop("job")
    if job.status == "done":
        ss["select_model"] = S.model_label(job.out_dir)
        ss["job_message"] = ("success", f"Trained and saved {S.md(job.out_dir.name)} in {job.elapsed_s:.1f} s.")
    elif job.status == "cancelled":
        ss["job_message"] = ("warning", f"Training stopped: {S.md(job.error)}. Nothing was saved.")
    else:
        ss["job_message"] = ("error", f"Training failed: {S.md(job.error)}. Check the parameters and try again.")
    st.rerun()


def train_section() -> None:
    st.subheader("Train a model")
    # Re-rankers wrap a fitted base model: they are built by the Compare page's mitigation sweep.
    kinds = list(service.trainable_kinds())
    default = kinds.index("popularity") if "popularity" in kinds else 0
    kind = st.selectbox("Model kind", kinds, index=default, key="train_kind")
    st.caption(KIND_HELP.get(kind, ""))
    with st.expander("Hyper-parameters", expanded=False):
        params = param_inputs(kind)
    split = S.split_for(dataset)
    st.caption(
        f"Trained on a per-user random holdout split ({len(split.train):,} train / {len(split.test):,} test "
        f"interactions, seed {S.SPLIT_SEED}); saved to the workspace so it survives a restart."
    )
    running = "job" in ss
    if st.button("Train", type="primary", key="train", disabled=running):
        with S.user_errors("Starting training"):
            start_training(kind, params)
            st.rerun()
    if "job" in ss:
        training_progress()
    if "job_message" in ss:
        level, text = ss.pop("job_message")
        getattr(st, level)(text)


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
    if config.get("split", {}).get("fingerprint") != split.describe()["fingerprint"]:
        st.warning("This model was trained on a different split than the dashboard's; "
                   "its holdout figures may be optimistic.")
    with S.user_errors("Holdout evaluation"):
        quality = holdout_quality(model, split, path, S.weights_checksum(path), S.current_fingerprint(), k)
        st.markdown(f"**Holdout quality @ {k}** ({split.test['user_id'].nunique():,} test users)")
        st.dataframe(quality.round(4), hide_index=True)
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
load_section()
st.divider()
import_section()
