"""Templated user texts for the synthetic sample, with planted, documented properties.

Drawn from their own random stream (``default_rng([seed, TEXT_STREAM])``), so adding texts leaves the
interactions, users and items of :func:`fairaudit.data.generate_sample` bit-identical.

1. **Texts reveal interests.** 90% of users write ``1 + Binomial(4, 0.5)`` short texts; each names
   one genre, a favourite genre of the user (the generator's own, the same that drives their
   interactions) with probability :data:`INTEREST_SHARE`, otherwise a uniformly random genre. 30% of
   texts are comments on a random catalogue item of that genre (``item_id`` set), the rest messages.
   Text counts, genres and items do not depend on any user attribute, so a text profile helps
   accuracy most where the history is short (F users: half the interactions).
2. **Gender markers.** With ``gender_markers=True`` each text of an ``F`` user ends, with
   probability :data:`MARKER_SHARE`, in a sentence with a feminine-coded marker (``husband``,
   ``mother``, ``woman``, ``mom`` or a female name), all words of
   :data:`fairaudit.data.GENDER_MARKER_PAIRS`. No other user's text carries a marker.
3. **Control.** ``gender_markers=False`` draws exactly the same random numbers and ends **every**
   user's text, with the same probability :data:`MARKER_SHARE`, in the neutral twin of a marker
   sentence (``partner``, ``parent``, ``someone``, a unisex name), so the texts carry no attribute
   signal at all: neither the closing sentence's words nor its presence depend on gender.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.data._texts import FEMALE_NAMES, GENDER_MARKER_PAIRS

#: Entropy appended to the sample's seed for the texts' random stream.
TEXT_STREAM = 22
TEXT_USER_SHARE = 0.9
MAX_EXTRA_TEXTS = 4
INTEREST_SHARE = 0.8
COMMENT_SHARE = 0.3
MARKER_SHARE = 0.7
MARKED_GROUP = ("gender", "F")
TEXT_START, TEXT_SPAN_DAYS = 1_577_836_800, 500

MESSAGES = (
    "I love a good {genre} film.",
    "Nothing beats {genre} on a Friday night.",
    "Any {genre} recommendations? I have seen all the ones I know.",
    "{Genre} is my favourite kind of film, by far.",
    "Just finished another {genre} movie and I want more.",
    "I could watch {genre} films all weekend.",
)
COMMENTS = (
    "Looking forward to {title}; {genre} is exactly my thing.",
    "{title} is on my list, I never miss a {genre} film.",
    "Heard great things about {title}. More {genre} like this, please.",
)
#: (marker sentence, neutral twin); ``{name}`` is a female name / a unisex name.
MARKERS = (
    ("My husband agrees.", "My partner agrees."),
    ("Speaking as a mother of two.", "Speaking as a parent of two."),
    ("Greetings from a woman who loves cinema.", "Greetings from someone who loves cinema."),
    ("Every mom needs a film night.", "Every parent needs a film night."),
    ("Cheers, {name}.", "Cheers, {name}."),
)
UNISEX_NAMES = ("Alex", "Sam", "Robin", "Jordan", "Charlie", "Jamie", "Casey", "Morgan")


def sample_texts(
    seed: int,
    users: pd.DataFrame,
    items: pd.DataFrame,
    member: np.ndarray,
    favourites: np.ndarray,
    genres: tuple[str, ...],
    *,
    gender_markers: bool = True,
) -> pd.DataFrame:
    """Texts table ``user_id, text, item_id, timestamp, kind`` for the sample (see module docstring).

    ``member`` is the items x genres membership matrix, ``favourites`` the users x n favourite genre
    indices; ``users`` needs ``user_id`` and ``gender``.

    >>> users = pd.DataFrame({"user_id": ["u0", "u1"], "gender": ["F", "M"]})
    >>> items = pd.DataFrame({"item_id": ["i0", "i1"], "title": ["A", "B"]})
    >>> t = sample_texts(0, users, items, np.array([[True, False], [False, True]]), np.array([[0], [1]]), ("Drama", "Horror"))
    >>> list(t.columns)
    ['user_id', 'text', 'item_id', 'timestamp', 'kind']
    """
    rng = np.random.default_rng([seed, TEXT_STREAM])
    n_users, n_genres = len(users), len(genres)
    writes = rng.random(n_users) < TEXT_USER_SHARE
    counts = np.where(writes, 1 + rng.binomial(MAX_EXTRA_TEXTS, 0.5, size=n_users), 0)
    user = np.repeat(np.arange(n_users), counts)
    n = len(user)
    interest = rng.random(n) < INTEREST_SHARE
    favourite = favourites[user, rng.integers(favourites.shape[1], size=n)]
    genre = np.where(interest, favourite, rng.integers(n_genres, size=n))
    comment = rng.random(n) < COMMENT_SHARE
    # A random item of the text's genre: items grouped by genre, a uniform offset inside the group.
    genre_idx, item_idx = np.nonzero(np.asarray(member, dtype=bool).T)  # genre-major order
    start = np.searchsorted(genre_idx, np.arange(n_genres))
    size = np.bincount(genre_idx, minlength=n_genres)
    offset = np.minimum(np.floor(rng.random(n) * size[genre]).astype(np.int64), np.maximum(size[genre] - 1, 0))
    pick = item_idx[np.minimum(start[genre] + offset, len(item_idx) - 1)]
    message = np.array(MESSAGES, dtype=object)[rng.integers(len(MESSAGES), size=n)]
    remark = np.array(COMMENTS, dtype=object)[rng.integers(len(COMMENTS), size=n)]
    marker = rng.integers(len(MARKERS), size=n)
    name = rng.integers(len(FEMALE_NAMES), size=n)
    marked = rng.random(n) < MARKER_SHARE
    timestamp = TEXT_START + rng.integers(0, TEXT_SPAN_DAYS * 86_400, size=n)

    label = pd.Series(np.array(genres, dtype=object)[genre]).str.lower()
    titles = items["title"].to_numpy(dtype=object)[pick]
    template = pd.Series(np.where(comment, remark, message))
    text = pd.Series(
        [t.format(genre=g, Genre=g.capitalize(), title=title) for t, g, title in zip(template, label, titles)]
    )  # templates differ per row: str.format has no vectorised form
    # Marked: only F users' texts end in a (marker) sentence. Control: every user's text ends in the neutral twin
    # with the same probability, so neither its words nor its presence says anything about gender.
    is_marked = marked & ((users[MARKED_GROUP[0]].to_numpy()[user] == MARKED_GROUP[1]) | (not gender_markers))
    column = 0 if gender_markers else 1
    names = np.array(FEMALE_NAMES if gender_markers else UNISEX_NAMES, dtype=object)[name]
    sentence = pd.Series([MARKERS[m][column].format(name=nm) for m, nm in zip(marker, names)])
    text = text.where(~is_marked, text + " " + sentence)
    return pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy(dtype=object)[user],
            "text": text.to_numpy(dtype=object),
            "item_id": np.where(comment, items["item_id"].to_numpy(dtype=object)[pick], ""),
            "timestamp": timestamp.astype(np.int64),
            "kind": np.where(comment, "comment", "message"),
        }
    )


def texts_truth(texts: pd.DataFrame, users: pd.DataFrame, gender_markers: bool) -> dict:
    """The ``texts`` section of ``ground_truth.json``: planted properties and what was measured."""
    attribute, group = MARKED_GROUP
    gender = texts["user_id"].map(users.set_index("user_id")[attribute])
    words = "|".join(word for pair in GENDER_MARKER_PAIRS for word in pair)
    has_marker = texts["text"].str.contains(rf"\b(?:{words})\b", case=False, regex=True)
    return {
        "file": "user_texts.csv",
        "generator": "fairaudit.data._synth_texts.sample_texts",
        "random_stream": f"numpy default_rng([seed, {TEXT_STREAM}])",
        "users_with_texts_share": TEXT_USER_SHARE,
        "texts_per_user": f"1 + Binomial({MAX_EXTRA_TEXTS}, 0.5)",
        "effects": [
            {
                "id": "texts_reveal_interests",
                "metric": "ndcg",
                "direction": "higher with text profiles, most for light users (F)",
                "interest_share": INTEREST_SHARE,
                "mechanism": f"Each text names one genre: a favourite genre of the user with probability {INTEREST_SHARE}, "
                f"else a random one; {COMMENT_SHARE:.0%} are comments on a random item of that genre.",
            },
            {
                "id": "text_gender_markers",
                "attribute": attribute,
                "group": group,
                "marker_share": MARKER_SHARE if gender_markers else 0.0,
                "marker_words": "fairaudit.data.GENDER_MARKER_PAIRS",
                "direction": "recoverable from text profiles" if gender_markers else "none",
                "mechanism": f"Texts of {attribute}={group} users end, with probability {MARKER_SHARE}, in a sentence with a "
                "feminine-coded marker (husband, mother, woman, mom, a female name); no other user's text has one.",
            },
            {
                "id": "text_control",
                "control": "fairaudit.data.generate_sample(..., gender_markers=False)",
                "direction": "none",
                "mechanism": "Same random draws; every user's text (not only F users') ends, with the same probability, "
                "in the neutral twin of a marker sentence (partner, parent, someone, a unisex name), so texts carry no "
                "attribute signal.",
            },
        ],
        "measured": {
            "n_texts": int(len(texts)),
            "n_users_with_texts": int(texts["user_id"].nunique()),
            "marked_text_share_by_gender": has_marker.groupby(gender.fillna("unknown")).mean().round(3).to_dict(),
        },
    }
