"""Data page: the bundled sample or uploads, column mapping, validation report, profile by group."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fairaudit.data import DataError, apply_mapping, profile_by_group, text_examples, text_summary
from fairaudit.service import DataSource
from fairaudit.workspace import (
    ENCODINGS,
    TABLE_ROLES,
    DroppedFile,
    inspect_file,
    missing_columns,
    upload_problems,
)
from pages import _state as S

#: Column names the loader understands; anything else is kept as an attribute.
TARGETS = ("user_id", "item_id", "rating", "timestamp", "title", "genres", "description", "gender", "age", "zip",
           "text", "kind")  # fmt: skip
KEEP = "(keep name)"

S.start_page()
st.title("Data")
st.caption(
    "Start on the bundled sample (planted, documented biases; region is a null control) or upload "
    "your own interactions, users and items. Uploads stay private to this browser session."
)
ss = st.session_state


def show_validation(dataset) -> None:
    """Warnings are repairs the loader made; each says what changed and how many rows."""
    if not dataset.warnings:
        st.success("Validation: no problems found.")
        return
    title = f"Validation report: {len(dataset.warnings)} warning(s) — repaired while loading"
    with st.expander(title, expanded=True):
        for issue in dataset.warnings:
            st.warning(S.md(issue))


def show_profile(dataset) -> None:
    st.subheader("Profile by group")
    st.caption(
        "Groups that interact less, or mostly with popular items, usually get worse recommendations; "
        f"groups under {S.MIN_GROUP_SIZE} users are marked small and their figures are unreliable. "
        "Activity levels and popularity tiers here count all interactions (no split exists yet); "
        "an audit recomputes them from the training interactions only."
    )
    attributes = S.attribute_choices(dataset)
    if not attributes:
        st.info("This dataset has no user attributes (only user_id), so there are no groups to audit by.")
        return
    attribute = st.selectbox("Profile attribute", attributes, key="profile_attribute")
    table = profile_by_group(dataset, attribute, min_group_size=S.MIN_GROUP_SIZE)
    small = table.loc[table["small"], "group"].tolist()
    if small:
        st.warning(f"Small groups (under {S.MIN_GROUP_SIZE} users): {S.md(', '.join(map(str, small)))}.")
    st.dataframe(
        table.rename(columns={"small": f"small (<{S.MIN_GROUP_SIZE})"}),
        hide_index=True,
        column_config={"user_share": st.column_config.NumberColumn(format="percent")},
    )
    if "popularity_tier" in dataset.items:
        tiers = dataset.items["popularity_tier"].value_counts()
        st.caption(
            "Item popularity tiers (head = items taking the first half of all interactions): "
            + ", ".join(f"{t} {int(tiers.get(t, 0)):,} items" for t in ("head", "mid", "tail"))
        )


def show_texts(dataset) -> None:
    """Coverage of the optional user texts (user_texts.csv): who wrote how much, and a few rows."""
    if dataset.texts is None:
        return
    st.subheader("User texts")
    st.caption(
        "Reviews, comments or messages the users wrote (user_texts.csv). The LLM recommender can read them as "
        "a text profile (train with use_texts); they can also reveal attributes such as gender (docs/profiles.md)."
    )
    summary = text_summary(dataset)
    cols = st.columns(4)
    cols[0].metric("Texts", f"{summary['n_texts']:,}")
    cols[1].metric("Users with texts", f"{summary['n_users_with_texts']:,}",
                   help=f"{summary['share_users_with_texts']:.0%} of the users")  # fmt: skip
    cols[2].metric("Texts per user", f"{summary['texts_per_user_mean']:.1f}",
                   help=f"mean over users with texts; median {summary['texts_per_user_median']:g}, "
                   f"max {summary['texts_per_user_max']:,}")  # fmt: skip
    cols[3].metric("Characters per text", f"{summary['characters_mean']:.0f}", help="mean")
    if summary["kinds"]:
        st.caption("Kinds: " + ", ".join(f"{S.md(k)} {n:,}" for k, n in summary["kinds"].items()))
    st.dataframe(text_examples(dataset, n=5), hide_index=True)


def mapping_editor(files: dict[str, DroppedFile]) -> dict[str, str]:
    """One select box per column of each table (role -> file), pre-filled with what the loader would detect."""
    mapping: dict[str, str] = {}
    with st.expander("Column mapping", expanded=True):
        st.caption(
            "Each column is renamed to the name on the right before loading. Detected automatically for "
            "common names (userId, movieId, sex, zipcode…); change it where the guess is wrong."
        )
        for role, file in files.items():
            columns = list(file.columns)
            detected = apply_mapping(pd.DataFrame(columns=columns)).columns.tolist()
            st.markdown(f"**{role}** ({S.md(file.name)})")
            grid = st.columns(min(len(columns), 4) or 1)
            for i, (column, guess) in enumerate(zip(columns, detected)):
                options = [KEEP, *TARGETS]
                index = options.index(guess) if guess in TARGETS and guess != column else 0
                choice = grid[i % len(grid)].selectbox(S.md(column), options, index=index, key=f"map_{role}_{column}")
                if choice != KEEP and choice != column:
                    mapping[column] = choice
    return mapping


def add_dataset(label: str, source: DataSource) -> None:
    """Validate ``source``; on success add it to the session (remembered for reloads) and select it."""
    try:
        S.dataset_from_source(source)
    except DataError as err:
        st.error(f"**{S.md(label)}** cannot be loaded. Fix these problems in the file and upload it again:\n\n"
                 f"{S.md(err)}")
        return
    except (ValueError, OSError) as err:
        st.error(f"**{S.md(label)}** cannot be loaded: {S.md(err)}")
        return
    ss["datasets"][label] = source
    S.remember_datasets()
    ss["select_dataset"] = label
    st.rerun()


def load_tables(files: list[DroppedFile]) -> None:
    """Tables: what each holds (guessed, changeable), the column mapping, then Load."""
    st.markdown("**What each file holds**")
    cols = st.columns(min(len(files), 3))
    roles = {}
    for i, file in enumerate(files):
        options = list(TABLE_ROLES)
        roles[file.name] = cols[i % len(cols)].selectbox(
            S.md(file.name), options, index=options.index(file.role) if file.role in options else None,
            key=f"role_{file.name}", placeholder="choose…")  # fmt: skip
    problems = upload_problems(files, roles)
    if problems:
        for problem in problems:
            st.error(S.md(problem))
        return
    by_role = {roles[f.name]: f for f in files}
    mapping = mapping_editor(by_role)
    missing = [m for role, f in by_role.items() for m in missing_columns(f, role, mapping)]
    for problem in missing:
        st.error(S.md(problem))
    if st.button("Load", type="primary", key="load_upload", disabled=bool(missing)):
        paths = {}
        for role, file in by_role.items():  # saved under a content hash, so a changed file never hits a stale cache
            name = f"{role}-{S.content_hash(file.content)}-{file.name}"
            paths[role] = str(S.workspace().save_upload(ss["session_id"], name, file.content))
        name = by_role["interactions"].name
        add_dataset(f"upload · {name}", DataSource("files", files=paths, mapping=mapping, name=name))


def drop_zone() -> None:
    """One place for every upload: tables, a zip of a dataset folder, or raw MovieLens files. Every file is
    checked first; a file with a problem gets its message and nothing else is drawn."""
    uploads = st.file_uploader(
        "Drop your data here: tables (CSV, TSV, Parquet), a .zip of a dataset folder, or the MovieLens files "
        "(u.data, u.user, u.item)", accept_multiple_files=True, key="upload_files")  # fmt: skip
    encoding = st.selectbox(
        "Text encoding", ENCODINGS, key="upload_encoding",
        help="How text tables are read. auto: UTF-8, else Latin-1 (with a warning). Files saved by older Excel "
             "versions are often cp1252.")  # fmt: skip
    if not uploads:
        st.caption("Interactions need `user_id, item_id` (optional `rating`, `timestamp`); users `user_id` + "
                   "attributes; items `item_id, title` (optional `genres` as `A|B`, `description`, attributes); "
                   "user texts `user_id, text` (optional `item_id`, `timestamp`, `kind`).")
        return
    files = [inspect_file(u.name, u.getvalue(), encoding=encoding) for u in uploads]
    # Each file's own problems, a mix of kinds, incomplete MovieLens sets; tables' roles are checked below,
    # once the analyst can change them.
    problems = [f.problem for f in files if f.problem] or (
        upload_problems(files, {}) if any(f.kind != "table" for f in files) else [])
    if problems:
        for problem in problems:
            st.error(S.md(problem))
        return
    for file in files:
        if file.warning:
            st.warning(S.md(file.warning))
    kind = files[0].kind
    if kind == "table":
        load_tables(files)
    elif st.button("Load", type="primary", key="load_upload"):
        ws, session = S.workspace(), ss["session_id"]
        name = files[0].name if kind == "zip" else ", ".join(sorted(f.name for f in files))
        try:
            folder = (ws.extract_zip(session, name, files[0].content) if kind == "zip"
                      else ws.save_movielens(session, {f.name: f.content for f in files}))  # fmt: skip
        except ValueError as err:
            st.error(S.md(err))
            return
        add_dataset(f"upload · {name}", DataSource("folder", path=str(folder), name=name))


dataset = S.current_dataset()
if dataset is not None:
    st.subheader(f"Current dataset: {S.md(ss.get('dataset', S.SAMPLE_LABEL))}")
    size = dataset.summary()
    cols = st.columns(4)
    cols[0].metric("Users", f"{size['n_users']:,}")
    cols[1].metric("Items", f"{size['n_items']:,}")
    cols[2].metric("Interactions", f"{size['n_interactions']:,}")
    cols[3].metric("Fingerprint", S.current_fingerprint()[:8], help="SHA-256 prefix of the three tables")
    show_validation(dataset)
    show_texts(dataset)
    show_profile(dataset)

st.divider()
st.subheader("Add a dataset")
drop_zone()
