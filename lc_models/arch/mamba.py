"""Mamba-1 mixers (Mamba, FalconMamba, Jamba): resume the scan from the cached state.

In transformers 5.24 these mixers run a multi-token chunk through a selective
scan that starts from a zero state, even when the cache holds the state of
the tokens before the chunk; only single-token decoding reads it. This module
replaces each mixer's ``forward`` (on the instance, not the class) with one
that passes the cached state as the scan's ``initial_state``. The conv state
was already carried correctly and is kept as is.

The three mixers differ only in the optional RMS norms on dt, B and C
(FalconMamba, Jamba), which are applied when the mixer has them.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from lc_models.ops.selective_scan import selective_scan
from lc_models.state import CacheRunner

MODEL_TYPES = ("mamba", "falcon_mamba", "jamba")


def _norm(mixer, name, x):
    norm = getattr(mixer, name, None)
    return x if norm is None else norm(x)


def mixer_forward(self, hidden_states, cache=None, attention_mask=None, **kwargs):
    """Mamba-1 mixer forward that carries conv and SSM state through ``cache``."""
    length = hidden_states.shape[1]
    dtype = hidden_states.dtype
    if attention_mask is not None:  # zero padded positions, as transformers does
        hidden_states = hidden_states * attention_mask[:, :, None].to(dtype)
    # Read the SSM state before the conv update marks the layer as having one.
    initial = cache.get_recurrent_state(self.layer_idx) if cache is not None else None

    x, gate = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # (b, d_inner, L) each
    kernel = self.conv_kernel_size
    if cache is not None:
        # (b, d_inner, K + L): the last K inputs of the previous chunk, then this chunk
        x = cache.update_conv_state(x, self.layer_idx, conv_kernel_size=kernel)
    x = F.conv1d(x, self.conv1d.weight, self.conv1d.bias, padding=kernel - 1, groups=x.shape[1])[
        ..., : x.shape[-1]
    ][..., -length:]
    x = self.act(x)  # (b, d_inner, L)
    if attention_mask is not None:
        x = x * attention_mask[:, None, :].to(x.dtype)

    dt, B, C = torch.split(
        self.x_proj(x.transpose(1, 2)),
        [self.time_step_rank, self.ssm_state_size, self.ssm_state_size],
        dim=-1,
    )  # (b, L, rank), (b, L, d_state), (b, L, d_state)
    dt, B, C = (
        _norm(self, "dt_layernorm", dt),
        _norm(self, "b_layernorm", B),
        _norm(self, "c_layernorm", C),
    )
    dt = self.dt_proj.weight @ dt.transpose(1, 2)  # (b, d_inner, L), bias added in the scan
    A = -torch.exp(self.A_log.float())  # (d_inner, d_state)
    y, final = selective_scan(
        x,
        dt,
        A,
        B.transpose(1, 2),
        C.transpose(1, 2),
        D=self.D.float(),
        z=gate,
        delta_bias=self.dt_proj.bias.float(),
        delta_softplus=True,
        initial_state=initial,
        return_final_state=True,
    )  # y: (b, d_inner, L); final: (b, d_inner, d_state)
    if cache is not None:
        cache.update_recurrent_state(final.float(), self.layer_idx)
    return self.out_proj(y.transpose(1, 2).to(dtype))


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
