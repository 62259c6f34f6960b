"""LLM-written profile summaries: one short natural-language sentence per user, from their own texts.

The generative model of :mod:`fairaudit.models._generative` (the packaged SmolLM2-135M-Instruct or any
local causal-LM folder) reads a user's newest texts and answers, greedily and cached on disk, what
the user likes. The summaries are for reading (an analyst checks what a profile says about a user,
and whether it repeats a gender marker); the recommender's profile is the pooled embedding
(:func:`fairaudit.models.encode_profiles`), not this text.
"""

from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from fairaudit.models._generative import LanguageModel, get_language_model

SYSTEM = "You write one-sentence profiles of users of a movie recommender, from what they wrote."
QUESTION = "A user wrote:\n{texts}\nIn one short sentence, what kind of films does this user like?"
#: Newest texts per user put into the prompt.
MAX_TEXTS = 8


def summary_prompts(texts: pd.DataFrame, user_ids: Sequence[str], lm: LanguageModel, *, max_texts: int = MAX_TEXTS) -> pd.Series:
    """The chat prompt per user (empty for users without texts), with up to ``max_texts`` newest texts.

    >>> lm = LanguageModel.__new__(LanguageModel)
    >>> lm.tokenizer = type("T", (), {"chat_template": None})()
    >>> t = pd.DataFrame({"user_id": ["a", "a"], "text": ["I love horror.", "Drama too."]})
    >>> summary_prompts(t, ["a", "b"], lm).tolist()[1], "- I love horror.\\n- Drama too." in summary_prompts(t, ["a"], lm)["a"]
    ('', True)
    """
    ids = pd.Index(pd.Series(list(user_ids), dtype=object).astype(str))
    kept = texts[texts["user_id"].astype(str).isin(ids)]
    if "timestamp" in kept:
        kept = kept.sort_values("timestamp", kind="stable")
    newest = kept.groupby("user_id", sort=False).tail(max_texts)
    bullets = ("- " + newest["text"].astype(str)).groupby(newest["user_id"].astype(str), sort=False).agg("\n".join)
    prompts = bullets.map(lambda body: lm.chat(SYSTEM, QUESTION.format(texts=body)))
    return prompts.reindex(ids).fillna("")


def profile_summaries(
    texts: pd.DataFrame | None,
    user_ids: Sequence[str],
    *,
    lm: LanguageModel | str | None = None,
    max_new_tokens: int = 40,
    max_texts: int = MAX_TEXTS,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> pd.Series:
    """One generated sentence per user of ``user_ids`` (index), ``""`` for users without texts.

    ``lm``: a :class:`~fairaudit.models.LanguageModel`, a local causal-LM folder, or None for the
    packaged SmolLM2-135M-Instruct. Greedy decoding; answers are cached on disk by the model.
    """
    if not isinstance(lm, LanguageModel):
        lm = get_language_model(None if lm is None else str(lm))
    lm.load()
    ids = pd.Index(pd.Series(list(user_ids), dtype=object).astype(str))
    if texts is None or texts.empty:
        return pd.Series("", index=ids, name="summary")
    prompts = summary_prompts(texts, ids, lm, max_texts=max_texts)
    asked = prompts[prompts != ""]
    answers = lm.generate(asked.tolist(), max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    out = pd.Series("", index=ids, name="summary", dtype=object)
    out[asked.index] = [answer.strip().split("\n")[0] for answer in answers]
    return out
