"""Mamba2: a faster, bounded-memory chunk path (transformers 5.24 is exact but slow here).

transformers' torch path for Mamba2 (``mamba2_chunk_scan``) is exact with the generic cache
runner, but it copies B and C to every head, builds each decay matrix with a cumsum over a
(chunk, chunk) square, and materialises all chunks of a call at once. This module replaces
each ``Mamba2Mixer``'s ``forward`` (on the instance) with ``lc_models.models.mamba_mixer.
mamba2_chunk`` (channels last, ``lc_models.ops.ssd``); the states travel through the model's
own cache as before (``cached_mixer``, as for Mamba-1).
"""

from __future__ import annotations

import torch

from lc_models.hf_runners.cached_mixer import cache_forward, patch_mixers, patched_runner
from lc_models.models.mamba_mixer import mamba2_chunk
from lc_models.state import CacheRunner

MODEL_TYPES = ("mamba2",)

mixer_forward = cache_forward(mamba2_chunk)  # conv and SSM state through the cache


def is_mixer(module: torch.nn.Module) -> bool:
    return type(module).__name__ == "Mamba2Mixer"


def patch(model: torch.nn.Module) -> int:
    """Replace the forward of every ``Mamba2Mixer`` in ``model``; returns how many."""
    return patch_mixers(model, is_mixer, mixer_forward)


def make_runner(model: torch.nn.Module) -> CacheRunner:
    """The generic cache runner over ``model`` with its Mamba2 mixers patched."""
    return patched_runner(model, patch, "Mamba2 mixer")
