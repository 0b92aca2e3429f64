"""Causal softmax attention of one chunk of queries over everything cached before it.

A chunk of T queries at positions S - T .. S - 1 attends to S keys: query i sees key j when
j <= S - T + i (the causal mask aligned to the bottom right). The masks transformers and
mamba_ssm build for it are (T, S) booleans, and torch's kernels then compute every score of
the (T, S) rectangle and add the mask: the upper-right triangle of the last T x T block is
computed for nothing, and the mask is read for every head.

``attend_chunk`` splits the keys instead: the S - T keys before the chunk, which every query
sees (no mask), and the chunk's own T keys (a plain causal square). torch's fused CPU flash
kernel computes each part with its log-sum-exp, and the two are merged exactly, as flash
attention merges its blocks::

    out = o_past * sigmoid(lse_past - lse_own) + o_own * sigmoid(lse_own - lse_past)

``attend_chunk_ref`` is the same attention through an explicit (T, S) mask, the oracle.
Grouped-query attention (fewer key/value heads, each shared by consecutive query heads) needs
no copy: the flash kernel takes it as is.

>>> import torch
>>> q, k, v = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8)
>>> torch.allclose(attend_chunk(q, k, v), attend_chunk_ref(q, k, v), atol=1e-6)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_flash_cpu = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu


def attend_chunk_ref(q, k, v, scale=None):
    """q: (batch, heads, T, d); k, v: (batch, kv_heads, S, d), S >= T; heads a multiple of
    kv_heads. Returns (batch, heads, T, d): softmax attention under the bottom-right causal
    mask, through an explicit boolean mask."""
    T, S = q.shape[-2], k.shape[-2]
    visible = torch.arange(S, device=q.device) <= S - T + torch.arange(T, device=q.device)[:, None]
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=visible, scale=scale)


def attend_chunk(q, k, v, scale=None):
    """``attend_chunk_ref``'s result without a mask (see the module doc). Same shapes."""
    T, S = q.shape[-2], k.shape[-2]
    if S < T:
        raise ValueError(f"{T} queries need at least as many keys, got {S}")
    if q.device.type != "cpu" or q.requires_grad or v.shape[-1] != q.shape[-1]:
        # the split needs the CPU flash kernel's lse, and that kernel one head size
        return attend_chunk_ref(q, k, v, scale)
    gqa = q.shape[1] != k.shape[1]
    if S == T:  # the first chunk: one causal square
        return F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, scale=scale,
                                              enable_gqa=gqa)
    if T == 1:  # one query sees every key
        return F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=gqa)
    past = S - T
    o_past, lse_past = _flash_cpu(q, k[..., :past, :], v[..., :past, :], scale=scale)
    o_own, lse_own = _flash_cpu(q, k[..., past:, :], v[..., past:, :], is_causal=True,
                                scale=scale)  # o: (b, h, T, d); lse: (b, h, T) float32
    w_past = torch.sigmoid(lse_past - lse_own)[..., None].to(o_past.dtype)  # (b, h, T, 1)
    return torch.lerp(o_own, o_past, w_past)  # o_own + w_past * (o_past - o_own)
