"""Mixers whose state travels through the transformers cache: the part the Mamba-1
(``mamba``) and Mamba-2 (``mamba2``) runners share.

Each runner replaces the ``forward`` of its model's mixers (on the instance, not the class)
with ``cache_forward(chunk)``: read the layer's conv and SSM states from the cache, run one
chunk through ``chunk(mixer, x, conv, ssm, attention_mask) -> (out, conv, ssm)``
(``lc_models.models.mamba_mixer``), write both states back. ``patched_runner`` then wraps the
model in the generic ``CacheRunner``, or refuses a model in which nothing was patched (the
RecurrentGemma runner, which patches its recurrent blocks, uses it too).
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch

from lc_models.state import CacheRunner


def cache_forward(chunk: Callable) -> Callable:
    """A mixer ``forward(hidden_states, cache=None, attention_mask=None, **kwargs)`` that runs
    ``chunk`` from the states in ``cache`` and stores the states it returns there."""

    def forward(self, hidden_states, cache=None, attention_mask=None, **kwargs):
        # Read both states before updating either: an update marks the layer as having a past.
        conv = cache.get_conv_state(self.layer_idx) if cache is not None else None
        ssm = cache.get_recurrent_state(self.layer_idx) if cache is not None else None
        out, conv, ssm = chunk(self, hidden_states, conv, ssm, attention_mask)
        # conv: the last K inputs (b, channels, K); ssm: (b, d_inner, d_state) in Mamba-1,
        # (b, heads, head_dim, d_state) in Mamba-2
        if cache is not None:
            cache.update_conv_state(conv, self.layer_idx, conv_kernel_size=self.conv_kernel_size)
            cache.update_recurrent_state(ssm, self.layer_idx)
        return out

    return forward


def patch_mixers(model: torch.nn.Module, is_mixer: Callable[[torch.nn.Module], bool],
                 forward: Callable) -> int:
    """Bind ``forward`` as the ``forward`` of every module of ``model`` that ``is_mixer``;
    returns how many."""
    count = 0
    for module in model.modules():
        if is_mixer(module):
            module.forward = types.MethodType(forward, module)
            count += 1
    return count


def patched_runner(model: torch.nn.Module, patch: Callable[[torch.nn.Module], int],
                   what: str) -> CacheRunner:
    """The generic cache runner over ``model`` after ``patch(model)``; a ``ValueError``
    naming ``what`` when it patched nothing."""
    if patch(model) == 0:
        raise ValueError(f"no {what} found in {type(model).__name__}")
    return CacheRunner(model)
