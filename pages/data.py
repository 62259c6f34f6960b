"""Data page: the bundled sample or uploads, column mapping, validation report, profile by group."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fairaudit.data import DataError, apply_mapping, profile_by_group, read_columns
from fairaudit.service import DataSource
from pages import _state as S

ROLES = ("interactions", "users", "items")
TABLE_TYPES = ["csv", "tsv", "parquet"]
#: Column names the loader understands; anything else is kept as an attribute.
TARGETS = ("user_id", "item_id", "rating", "timestamp", "title", "genres", "description", "gender", "age", "zip")
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


def mapping_editor(paths: dict[str, str]) -> dict[str, str]:
    """One select box per uploaded column, pre-filled with what the loader would detect."""
    mapping: dict[str, str] = {}
    with st.expander("Column mapping", expanded=True):
        st.caption(
            "Each column is renamed to the name on the right before loading. Detected automatically for "
            "common names (userId, movieId, sex, zipcode…); change it where the guess is wrong."
        )
        for role, path in paths.items():
            try:
                columns = read_columns(path)
            except (ValueError, OSError, UnicodeDecodeError) as err:
                st.error(f"{role}: cannot read the header of this file ({S.md(err)}); upload a CSV, TSV or Parquet file.")
                continue
            detected = apply_mapping(pd.DataFrame(columns=columns)).columns.tolist()
            st.markdown(f"**{role}**")
            grid = st.columns(min(len(columns), 4) or 1)
            for i, (column, guess) in enumerate(zip(columns, detected)):
                options = [KEEP, *TARGETS]
                index = options.index(guess) if guess in TARGETS and guess != column else 0
                choice = grid[i % len(grid)].selectbox(S.md(column), options, index=index, key=f"map_{role}_{column}")
                if choice != KEEP and choice != column:
                    mapping[column] = choice
    return mapping


def add_dataset(label: str, source: DataSource) -> None:
    """Validate ``source``; on success add it to the session and select it, else show the report."""
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
    ss["select_dataset"] = label
    st.rerun()


def upload_tables() -> None:
    uploads = {
        role: st.file_uploader(
            f"{role.capitalize()} ({'required' if role == 'interactions' else 'optional'})",
            type=TABLE_TYPES,
            key=f"upload_{role}",
        )
        for role in ROLES
    }
    if uploads["interactions"] is None:
        st.caption("Interactions need `user_id, item_id` (optional `rating`, `timestamp`); users `user_id` + "
                   "attributes; items `item_id, title` (optional `genres` as `A|B`, `description`, attributes).")
        return
    paths = {}
    for role, upload in uploads.items():
        if upload is not None:  # saved under a content hash, so a changed file never hits a stale cache
            data = upload.getvalue()
            name = f"{role}-{S.content_hash(data)}-{upload.name}"
            paths[role] = str(S.workspace().save_upload(ss["session_id"], name, data))
    mapping = mapping_editor(paths)
    if st.button("Load uploaded tables", type="primary", key="load_tables"):
        name = uploads["interactions"].name
        add_dataset(f"upload · {name}", DataSource("files", files=paths, mapping=mapping, name=name))


def upload_zip() -> None:
    upload = st.file_uploader("MovieLens 100K/1M or a CSV/Parquet folder, as .zip", type=["zip"], key="upload_zip")
    if upload is None:
        return
    if st.button("Load zip", type="primary", key="load_zip"):
        try:
            folder = S.workspace().extract_zip(ss["session_id"], upload.name, upload.getvalue())
        except ValueError as err:
            st.error(S.md(err))
            return
        add_dataset(f"upload · {upload.name}", DataSource("folder", path=str(folder), name=upload.name))


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
    show_profile(dataset)

st.divider()
st.subheader("Add a dataset")
tables_tab, zip_tab = st.tabs(["Upload tables", "Upload a zip"])
with tables_tab:
    upload_tables()
with zip_tab:
    upload_zip()
