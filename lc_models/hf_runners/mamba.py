"""Mamba-1 mixers (Mamba, FalconMamba, Jamba): resume the scan from the cached state.

In transformers 5.24 these mixers run a multi-token chunk through a selective
scan that starts from a zero state, even when the cache holds the state of
the tokens before the chunk; only single-token decoding reads it. This module
replaces each mixer's ``forward`` (on the instance, not the class) with one
that passes the cached state as the scan's ``initial_state`` (and runs the
chunk channels-last, see ``lc_models.models.mamba_mixer``).

The three mixers differ only in the optional RMS norms on dt, B and C
(FalconMamba, Jamba), which are applied when the mixer has them. The states move in and out
of the transformers cache as in ``mamba2`` (``cached_mixer``).
"""

from __future__ import annotations

import torch

from lc_models.hf_runners.cached_mixer import cache_forward, patch_mixers, patched_runner
from lc_models.models.mamba_mixer import mamba1_chunk
from lc_models.state import CacheRunner

MODEL_TYPES = ("mamba", "falcon_mamba", "jamba")

# The compute is ``mamba1_chunk`` (channels last, fused scan); the forward only moves the two
# states in and out of the transformers cache.
mixer_forward = cache_forward(mamba1_chunk)


def is_mixer(module: torch.nn.Module) -> bool:
    """A Mamba-1 mixer of any of the three classes, known by its parameters."""
    return hasattr(module, "x_proj") and hasattr(module, "dt_proj") and hasattr(module, "A_log")


def patch(model: torch.nn.Module) -> int:
    """Replace the forward of every Mamba-1 mixer in ``model``; returns how many."""
    return patch_mixers(model, is_mixer, mixer_forward)


def make_runner(model: torch.nn.Module) -> CacheRunner:
    """The generic cache runner over ``model`` with its Mamba-1 mixers patched."""
    return patched_runner(model, patch, "Mamba-1 mixer")
