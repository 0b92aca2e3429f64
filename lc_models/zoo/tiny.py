"""Tiny, offline models and tokenizers for tests, examples and benchmarks.

Nothing here touches a model hub. Tokenizers are built with the ``tokenizers``
library; models come from ``AutoModelForCausalLM.from_config`` with random
weights (seeded). Everything is saved with ``save_pretrained`` so that any
loader (lm-eval's ``hf``, our ``lc_hf``) can open it by path.

>>> from lc_models.zoo.tiny import build_tokenizer
>>> tok = build_tokenizer("char")
>>> tok.decode(tok("pass key 12345").input_ids)
'pass key 12345'
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
TOKENIZER_KINDS = ("char", "bpe", "word")

# Fixed text for training the byte-level BPE: deterministic, no download.
_BPE_CORPUS = [
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it.",
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.",
    "One of the special magic numbers for the key is: 1234567. What is the special magic number?",
    "Memorize and track the chain of variables mentioned in the following text.",
    "Below is a numbered list of words. In these words, some appear more often than others.",
    "What is the pass key? The pass key is 98765. Remember it. 98765 is the pass key.",
    "VAR ABCDE = 12345. VAR FGHIJ = VAR ABCDE. Find all variables that are assigned the value.",
    "a1b2c3d4-e5f6-7890-abcd-ef0123456789 " + string.ascii_letters + string.digits + string.punctuation,
]


def build_tokenizer(kind: str = "char", vocab_size: int = 512):
    """A ``PreTrainedTokenizerFast`` of the given kind, built offline.

    kind:
      * ``"char"``: one token per printable ASCII character (lossless on ASCII);
      * ``"bpe"``: byte-level BPE trained on a fixed corpus (lossless on any text);
      * ``"word"``: word-level over letters/digits/punctuation runs (unknown words map
        to ``<unk>``), for sizing tests with a coarse tokenizer.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "char":
        vocab = {t: i for i, t in enumerate(SPECIALS + sorted(set(string.printable)))}
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
    elif kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIALS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_BPE_CORPUS * 4, trainer=trainer)
    elif kind == "word":
        words = sorted({w for line in _BPE_CORPUS for w in line.replace(".", " . ").split()})
        words += list(string.digits) + list(string.punctuation)
        vocab = {t: i for i, t in enumerate(SPECIALS + sorted(set(words)))}
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece()  # joins with spaces
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {TOKENIZER_KINDS}")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def _llama(vocab_size: int, **kw: Any):
    from transformers import LlamaConfig

    return LlamaConfig(**{
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        **kw,
    })


def _mamba(vocab_size: int, **kw: Any):
    from transformers import MambaConfig

    return MambaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        expand=2,
        conv_kernel=4,
        **kw,
    )


def _mamba2(vocab_size: int, **kw: Any):
    from transformers import Mamba2Config

    return Mamba2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        expand=2,
        head_dim=8,
        num_heads=8,
        n_groups=1,
        conv_kernel=4,
        chunk_size=16,
        **kw,
    )


# Tiny configs for the adapter's architecture matrix (issue 4). Hybrids keep
# both layer kinds; attention windows are small so that tests cross them.
_ATTN = {"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096}


def _falcon_mamba(vocab_size: int, **kw: Any):
    from transformers import FalconMambaConfig

    return FalconMambaConfig(
        vocab_size=vocab_size, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2,
        conv_kernel=4, **kw,
    )


def _recurrent_gemma(vocab_size: int, **kw: Any):
    from transformers import RecurrentGemmaConfig

    # recurrent, recurrent, local attention with a 12-token window
    return RecurrentGemmaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=1, lru_width=32, attention_window_size=12,
        **kw,
    )


def _bamba(vocab_size: int, **kw: Any):
    from transformers import BambaConfig

    # layer 0: Mamba2 mixer, layer 1: attention
    return BambaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        attn_layer_indices=[1], mamba_n_heads=8, mamba_d_head=8, mamba_n_groups=1,
        mamba_d_state=8, mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=16, **_ATTN, **kw,
    )


def _jamba(vocab_size: int, **kw: Any):
    from transformers import JambaConfig

    # layer 0: Mamba mixer + MLP, layer 1: attention + 2-expert MoE
    return JambaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_experts=2, num_experts_per_tok=1, expert_layer_period=2, expert_layer_offset=1,
        attn_layer_period=2, attn_layer_offset=1, mamba_d_state=8, mamba_d_conv=4,
        mamba_expand=2, **_ATTN, **kw,
    )


def _rwkv(vocab_size: int, **kw: Any):
    from transformers import RwkvConfig

    return RwkvConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, attention_hidden_size=32,
        intermediate_size=64, context_length=4096, **kw,
    )


def _lfm2(vocab_size: int, **kw: Any):
    from transformers import Lfm2Config

    return Lfm2Config(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        layer_types=["conv", "full_attention"], block_multiple_of=16, **_ATTN, **kw,
    )


def _qwen3_next(vocab_size: int, **kw: Any):
    from transformers import Qwen3NextConfig

    # layer 0: gated delta-net linear attention, layer 1: full attention; MoE MLPs
    return Qwen3NextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        head_dim=8, linear_conv_kernel_dim=4, linear_key_head_dim=8, linear_value_head_dim=8,
        linear_num_key_heads=2, linear_num_value_heads=4, moe_intermediate_size=32,
        shared_expert_intermediate_size=32, num_experts=4, num_experts_per_tok=2,
        layer_types=["linear_attention", "full_attention"], **_ATTN, **kw,
    )


def _zamba2(vocab_size: int, **kw: Any):
    from transformers import Zamba2Config

    # layer 0: Mamba2, layer 1: Mamba2 + shared attention block
    return Zamba2Config(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
        layers_block_type=["mamba", "hybrid"], mamba_d_state=8, mamba_d_conv=4, mamba_expand=2,
        mamba_ngroups=1, n_mamba_heads=4, chunk_size=16, num_attention_heads=4,
        num_key_value_heads=4, intermediate_size=64, adapter_rank=8,
        max_position_embeddings=4096, **kw,
    )


def _gpt_neox(vocab_size: int, **kw: Any):
    from transformers import GPTNeoXConfig

    # a plain attention model with no architecture module of ours (generic path)
    return GPTNeoXConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=4096, **kw,
    )


def _mistral(vocab_size: int, **kw: Any):
    from transformers import MistralConfig

    # sliding-window attention (24 tokens), unknown to lc_hf: checked at load, then generic
    return MistralConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        sliding_window=24, **_ATTN, **kw,
    )


def _xlstm(vocab_size: int, **kw: Any):
    from transformers import xLSTMConfig

    # mLSTM blocks in pure torch (no triton on a CPU); hidden 128 so that the head dims, which
    # xLSTMConfig rounds up to multiples of 64, match the layers' own; 8-token kernel chunks
    return xLSTMConfig(vocab_size=vocab_size, hidden_size=128, num_hidden_layers=2, num_blocks=2,
                       num_heads=2, chunk_size=8, **kw)


def _minimax(vocab_size: int, **kw: Any):
    from transformers import MiniMaxConfig

    # layer 0: lightning (linear) attention in blocks of 8, layer 1: full attention; MoE MLPs
    return MiniMaxConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        head_dim=8, layer_types=["linear_attention", "full_attention"], block_size=8,
        num_local_experts=2, num_experts_per_tok=1, **_ATTN, **kw,
    )


def _gpt2(vocab_size: int, **kw: Any):
    from transformers import GPT2Config

    # learned absolute positions: a table of 512 positions and no more
    return GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=512,
                      **kw)


# arch name -> f(vocab_size, **overrides) -> transformers config
TINY_CONFIGS: dict[str, Callable[..., Any]] = {
    "llama": _llama,
    "mamba": _mamba,
    "mamba2": _mamba2,
    "falcon_mamba": _falcon_mamba,
    "recurrent_gemma": _recurrent_gemma,
    "bamba": _bamba,
    "jamba": _jamba,
    "rwkv": _rwkv,
    "lfm2": _lfm2,
    "qwen3_next": _qwen3_next,
    "zamba2": _zamba2,
    "gpt_neox": _gpt_neox,
    "mistral": _mistral,
    "xlstm": _xlstm,
    "minimax": _minimax,
    "gpt2": _gpt2,
}


def tiny_config(arch: str, vocab_size: int, **overrides: Any):
    """A tiny random-weight config for ``arch`` (a key of ``TINY_CONFIGS``)."""
    try:
        factory = TINY_CONFIGS[arch]
    except KeyError:
        raise ValueError(f"no tiny config for {arch!r}; known: {sorted(TINY_CONFIGS)}") from None
    return factory(vocab_size, **overrides)


def save_tiny_model(
    path: str | Path, arch: str = "llama", tokenizer: str = "char", seed: int = 0, **overrides: Any
) -> Path:
    """Build a tiny random ``arch`` model plus tokenizer and save both to ``path``.

    Returns ``path``; load it with ``--model_args pretrained=<path>``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(path)
    tok = build_tokenizer(tokenizer)
    cfg = tiny_config(
        arch,
        len(tok),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **overrides,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
