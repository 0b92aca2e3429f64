"""RecurrentGemma: keep the recurrent blocks' state in the cache, not on the module.

In transformers 5.24 the Griffin recurrent block keeps its conv and RG-LRU
states as attributes of the module. They are reset only when the model builds
its own cache, so a caller-built cache starts from whatever the previous call
left behind (wrong even token by token), and a multi-token chunk convolves
with zeros instead of the previous chunk's last inputs.

This module replaces each recurrent block's ``forward`` (on the instance) with
one that reads and writes both states through the layer's slot in the
transformers cache (a ``LinearAttentionLayer``), so the usual cache copying,
row selection and snapshots apply to them. The RG-LRU math is untouched, but its
scan (a Python loop over tokens in transformers) runs as one call of
``lc_models.ops.linear_scan``.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from lc_models.hf_runners.cached_mixer import patched_runner
from lc_models.ops.linear_scan import linear_scan
from lc_models.state import CacheRunner

MODEL_TYPES = ("recurrent_gemma",)


def block_forward(
    self, input_states, position_ids, attention_mask=None, use_cache=True, cache=None, **kwargs
):
    """Griffin recurrent block that carries its conv and RG-LRU state through ``cache``."""
    length = input_states.shape[1]
    layer = self._lc_layer_idx
    y = self.act_fn(self.linear_y(input_states))  # (b, L, lru_width)
    x = self.linear_x(input_states).transpose(1, 2)  # (b, lru_width, L)

    initial = cache.get_recurrent_state(layer) if cache is not None else None  # (b, lru_width)
    width = self.conv1d_width
    if cache is not None:
        # (b, lru_width, K + L): the previous chunk's last K inputs, then this chunk
        x = cache.update_conv_state(x, layer, conv_kernel_size=width)
    x = F.conv1d(x, self.conv_1d.weight, self.conv_1d.bias, padding=width - 1, groups=x.shape[1])[
        ..., : x.shape[-1]
    ][..., -length:]

    # The RG-LRU reads its initial state from, and leaves its final state on, the module.
    self.rg_lru.recurrent_states = initial
    x = self.rg_lru(x.transpose(1, 2), position_ids)  # (b, L, lru_width)
    final, self.rg_lru.recurrent_states = self.rg_lru.recurrent_states, None
    if cache is not None:
        cache.update_recurrent_state(final.float(), layer)
    return self.linear_out(x * y), None


def rnn_scan(self, hidden_states, recurrent_gate, reset, recurrent_states,
             acc_dtype=torch.float32):
    """``RecurrentGemmaRglru._rnn_scan``: h <- a h + x per channel from ``recurrent_states``
    ((b, lru_width) or None), a zeroed where ``reset``. Returns (every h (b, L, lru_width) in
    the input's dtype, the last h in ``acc_dtype``)."""
    gate = recurrent_gate * ~reset  # (b, L, lru_width)
    y, last = linear_scan(gate, hidden_states, recurrent_states)
    return y.type(hidden_states.dtype), last.type(acc_dtype)


def patch(model: torch.nn.Module) -> int:
    """Replace the forward of every recurrent block in ``model``; returns how many."""
    count = 0
    for index, layer in enumerate(model.model.layers):
        block = layer.temporal_block
        if hasattr(block, "rg_lru"):
            block._lc_layer_idx = index
            block.conv1d_state = None
            block.forward = types.MethodType(block_forward, block)
            block.rg_lru._rnn_scan = types.MethodType(rnn_scan, block.rg_lru)
            count += 1
    return count


def make_runner(model: torch.nn.Module) -> CacheRunner:
    """The generic cache runner over ``model`` with its recurrent blocks patched."""
    return patched_runner(model, patch, "RecurrentGemma recurrent block")
