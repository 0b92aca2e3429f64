"""Mamba2: a faster, bounded-memory chunk path (transformers 5.24 is exact but slow here).

transformers' torch path for Mamba2 (``mamba2_chunk_scan``) is exact with the generic cache
runner, but it copies B and C to every head, builds each decay matrix with a cumsum over a
(chunk, chunk) square, and materialises all chunks of a call at once. This module replaces
each ``Mamba2Mixer``'s ``forward`` (on the instance) with ``lc_models.models.mamba_mixer.
mamba2_chunk`` (channels last, ``lc_models.ops.ssd``); the states travel through the model's
own cache as before.
"""

from __future__ import annotations

import types

import torch

from lc_models.models.mamba_mixer import mamba2_chunk
from lc_models.state import CacheRunner

MODEL_TYPES = ("mamba2",)


def mixer_forward(self, hidden_states, cache=None, attention_mask=None, **kwargs):
    """Mamba2 mixer forward that carries conv and SSM state through ``cache``."""
    # Read both states before updating either: an update marks the layer as having a past.
    conv = cache.get_conv_state(self.layer_idx) if cache is not None else None
    ssm = cache.get_recurrent_state(self.layer_idx) if cache is not None else None
    out, conv, ssm = mamba2_chunk(self, hidden_states, conv, ssm, attention_mask)
    if cache is not None:  # conv: (b, conv_dim, K); ssm: (b, heads, head_dim, d_state)
        cache.update_conv_state(conv, self.layer_idx, conv_kernel_size=self.conv_kernel_size)
        cache.update_recurrent_state(ssm, self.layer_idx)
    return out


def patch(model: torch.nn.Module) -> int:
    """Replace the forward of every ``Mamba2Mixer`` in ``model``; returns how many."""
    count = 0
    for module in model.modules():
        if type(module).__name__ == "Mamba2Mixer":
            module.forward = types.MethodType(mixer_forward, module)
            count += 1
    return count


def make_runner(model: torch.nn.Module) -> CacheRunner:
    """The generic cache runner over ``model`` with its Mamba2 mixers patched."""
    if patch(model) == 0:
        raise ValueError(f"no Mamba2 mixer found in {type(model).__name__}")
    return CacheRunner(model)
