"""Mamba-1 mixers (Mamba, FalconMamba, Jamba): resume the scan from the cached state.

In transformers 5.24 these mixers run a multi-token chunk through a selective
scan that starts from a zero state, even when the cache holds the state of
the tokens before the chunk; only single-token decoding reads it. This module
replaces each mixer's ``forward`` (on the instance, not the class) with one
that passes the cached state as the scan's ``initial_state`` (and runs the
chunk channels-last, see ``lc_models.models.mamba_mixer``).

The three mixers differ only in the optional RMS norms on dt, B and C
(FalconMamba, Jamba), which are applied when the mixer has them.
"""

from __future__ import annotations

import types

import torch

from lc_models.models.mamba_mixer import mamba1_chunk
from lc_models.state import CacheRunner

MODEL_TYPES = ("mamba", "falcon_mamba", "jamba")


def mixer_forward(self, hidden_states, cache=None, attention_mask=None, **kwargs):
    """Mamba-1 mixer forward that carries conv and SSM state through ``cache``.

    The compute is ``lc_models.models.mamba_mixer.mamba1_chunk`` (channels last, fused scan);
    this function only moves the two states in and out of the transformers cache.
    """
    # Read both states before updating either: an update marks the layer as having a past.
    conv = cache.get_conv_state(self.layer_idx) if cache is not None else None
    ssm = cache.get_recurrent_state(self.layer_idx) if cache is not None else None
    out, conv, ssm = mamba1_chunk(self, hidden_states, conv, ssm, attention_mask)
    if cache is not None:  # conv: the last K inputs (b, d_inner, K); ssm: (b, d_inner, d_state)
        cache.update_conv_state(conv, self.layer_idx, conv_kernel_size=self.conv_kernel_size)
        cache.update_recurrent_state(ssm, self.layer_idx)
    return out


def patch(model: torch.nn.Module) -> int:
    """Replace the forward of every Mamba-1 mixer in ``model``; returns how many."""
    count = 0
    for module in model.modules():
        if hasattr(module, "x_proj") and hasattr(module, "dt_proj") and hasattr(module, "A_log"):
            module.forward = types.MethodType(mixer_forward, module)
            count += 1
    return count


def make_runner(model: torch.nn.Module) -> CacheRunner:
    """The generic cache runner over ``model`` with its Mamba-1 mixers patched."""
    if patch(model) == 0:
        raise ValueError(f"no Mamba-1 mixer found in {type(model).__name__}")
    return CacheRunner(model)
