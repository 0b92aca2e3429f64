"""Attention's share of a prefill request, for the benchmark's full roofline.

The weights-only roofline counts 2 x (parameters outside the embedding and head) FLOPs per
token. Attention also multiplies every query by every key it can see: QKᵀ and PV cost
2 x heads x head_dim FLOPs each per (query, visible key) pair. Over a causal request of L
tokens, a layer whose window is w (None: the whole context) sees

    sum_{t=1..L} min(t, w)   (query, key) pairs,

so it costs 4 x heads x head_dim x that many FLOPs. ``attention_flops`` adds this up over a
config's attention layers; models without attention (Mamba, Mamba2, RWKV) get 0.
"""

from __future__ import annotations

from typing import Any


def _get(config: Any, name: str, default=None):
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def attention_layers(config: Any) -> list[tuple[int, int, int | None]]:
    """(query heads, head_dim, window or None) for each attention layer of a model config:
    transformers configs (full, sliding or mixed layers), RecurrentGemma's local attention and
    mamba_ssm hybrids (``attn_layer_idx``)."""
    if _get(config, "attn_layer_idx") is not None:  # mamba_ssm MixerModel (lc_hf's HFConfig)
        attn = _get(config, "attn") or {}
        n = len(_get(config, "attn_layer_idx") or ())
        return [(_get(attn, "num_heads"), _get(attn, "head_dim"), None)] * n
    heads = _get(config, "num_attention_heads")
    layers = _get(config, "num_hidden_layers")
    if not heads or not layers:
        return []
    head_dim = _get(config, "head_dim") or _get(config, "hidden_size") // heads
    blocks = _get(config, "block_types")  # RecurrentGemma: cycled over the layers
    if blocks:
        window = _get(config, "attention_window_size")
        kinds = [blocks[i % len(blocks)] for i in range(layers)]
        return [(heads, head_dim, window) for kind in kinds if kind == "attention"]
    window = _get(config, "sliding_window")
    types = _get(config, "layer_types")
    if types:  # Gemma-3, Qwen-2 and others: a kind per layer; linear attention is no softmax
        windows = {"full_attention": None, "sliding_attention": window,
                   "chunked_attention": _get(config, "attention_chunk_size")}
        return [(heads, head_dim, windows[kind]) for kind in types if kind in windows]
    return [(heads, head_dim, window)] * layers  # every layer (hybrids need layer_types)


def visible_pairs(tokens: int, window: int | None) -> int:
    """(query, key) pairs a causal layer with this window scores over ``tokens`` tokens."""
    if window is None or window >= tokens:
        return tokens * (tokens + 1) // 2
    return window * (window + 1) // 2 + (tokens - window) * window


def attention_flops(config: Any, tokens: int) -> float:
    """FLOPs of QKᵀ and PV over one causal request of ``tokens`` tokens, all layers."""
    return float(sum(4 * heads * head_dim * visible_pairs(tokens, window)
                     for heads, head_dim, window in attention_layers(config)))


def rooflines(gemm_gflops: float, params: int, tokens: int, attn_flops: float) -> tuple[float, float]:
    """(weights-only, full) roofline in tokens/s for a request of ``tokens`` tokens: the GEMM
    rate over 2 x ``params`` FLOPs per token, then with the request's ``attn_flops`` added."""
    weights = 2 * params * tokens  # FLOPs of the request's weight products
    rate = gemm_gflops * 1e9 * tokens
    return rate / weights, rate / (weights + attn_flops)
