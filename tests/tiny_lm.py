"""A tiny, randomly initialised causal language model in a local Hugging Face folder, for fast tests.

Two Llama layers, a byte-level tokenizer (256 byte symbols + specials, no merges) and safetensors
weights: exactly the kind of folder ``GenerativeRecommender(lm=DIR)`` accepts, built in a second.
"""

from __future__ import annotations

from pathlib import Path

import torch


def build_tiny_lm(folder: Path, *, seed: int = 0, init_std: float = 0.02) -> Path:
    """Write a tiny causal LM + tokenizer to ``folder`` and return it.

    ``init_std`` is the weights' initial standard deviation: the default 0.02 answers every prompt with one
    token repeated; 0.3 gives varied answers of varied length (for batching tests).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<pad>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(specials + sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
                         initializer_range=init_std)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
