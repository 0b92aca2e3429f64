"""Softmax attention of a chunk over its KV cache without the (T, S) mask, for every
transformers model that attends through ``ALL_ATTENTION_FUNCTIONS`` with "sdpa".

A chunk after the first has T queries and S > T keys; transformers builds the bottom-right
causal mask as a (T, S) boolean and hands it to SDPA, whose CPU kernel then computes the
whole rectangle and reads the mask for every head. This module registers an attention
implementation, ``lc_sdpa``, with sdpa's own mask function: where the mask it receives is
exactly the bottom-right causal one (checked once per forward: every layer gets the same
mask object) it calls ``lc_models.ops.attention.attend_chunk``, which splits the keys into
the part before the chunk (no mask) and the chunk's causal square; anything else (padding,
sliding windows, soft-capping, sinks, biases, a first chunk, decoding) goes to transformers'
``sdpa_attention_forward`` unchanged. ``patch(model)`` switches a model from "sdpa" to it,
unless its modeling code branches on the implementation's name (DeepSeek-V3.2's indexer
applies its top-k mask only under "eager" or "sdpa": renamed, it would attend densely).
"""

from __future__ import annotations

import inspect
import re
import sys
import weakref
from functools import cache

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from lc_models.ops.attention import attend_chunk

NAME = "lc_sdpa"
_checked: tuple[weakref.ref, bool] | None = None  # the last mask looked at, and the verdict
# code that compares the implementation's name with "sdpa", which lc_sdpa would change:
# `config._attn_implementation in ("eager", "sdpa")` (a test against "eager" alone answers the
# same for both)
_NAME_TEST = re.compile(r"""_attn_implementation\s*(==|!=|not\s+in\b|in\b)[^:\n]{0,80}?["']sdpa["']"""
                        r"""|["']sdpa["']\s*(==|!=)\s*[\w.]*_attn_implementation""")


def attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                      is_causal=None, **kwargs):
    """transformers' attention-function signature: q (b, heads, T, d), k, v (b, kv_heads, S,
    d); returns ((b, T, heads, d), None)."""
    T, S = query.shape[-2], key.shape[-2]
    plain = (dropout == 0.0 and kwargs.get("softcap") is None and kwargs.get("s_aux") is None
             and kwargs.get("position_bias") is None and query.device.type == "cpu")
    if plain and 1 < T < S and _bottom_right_causal(attention_mask, T, S):
        out = attend_chunk(query, key, value, scaling)  # (b, heads, T, d)
        return out.transpose(1, 2).contiguous(), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, is_causal=is_causal, **kwargs)


def _bottom_right_causal(mask, T: int, S: int) -> bool:
    """Whether ``mask`` (b, 1, T, S) bool lets query i see exactly keys j <= S - T + i."""
    global _checked
    if not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.dim() == 4
            and mask.shape[1] == 1 and mask.shape[-2:] == (T, S)):
        return False
    if _checked is not None and _checked[0]() is mask:
        return _checked[1]
    own = torch.ones(T, T, dtype=torch.bool, device=mask.device).tril()
    verdict = bool(mask[..., : S - T].all()) and bool((mask[..., S - T :] == own).all())
    _checked = (weakref.ref(mask), verdict)
    return verdict


AttentionInterface.register(NAME, attention_forward)
AttentionMaskInterface.register(NAME, sdpa_mask)


@cache
def _tests_the_name(module_name: str) -> bool:
    """Whether the source of ``module_name`` compares ``_attn_implementation`` with "sdpa"."""
    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return True  # unreadable: assume it does, and keep "sdpa"
    return bool(_NAME_TEST.search(source))


def branches_on_name(model: torch.nn.Module) -> bool:
    """Whether any module class of ``model`` is defined beside code that compares the
    attention implementation's name with "sdpa" (renaming it would change what it computes)."""
    names = {type(m).__module__ for m in model.modules()}
    return any(_tests_the_name(name) for name in names if name.startswith("transformers."))


def patch(model: torch.nn.Module) -> bool:
    """Switch ``model`` from "sdpa" attention to ``lc_sdpa``; returns whether it did."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or branches_on_name(model):
        return False
    if not getattr(model, "_can_set_attn_implementation", lambda: False)():
        return False
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
