"""One chunk through a Mamba mixer, channels last, state in and state out.

``mamba1_chunk(mixer, x, conv_state, ssm_state) -> (out, conv_state, ssm_state)`` runs the
mixer of a transformers Mamba, FalconMamba or Jamba layer on a chunk of hidden states, and
``mamba2_chunk`` that of a Mamba2 layer. They compute what the mixer's own forward computes
over the whole sequence, but:

* every activation stays (batch, L, channels): the projections are single large GEMMs over
  the chunk and the scan reads transposed views, so nothing is copied into (batch, channels,
  L) and back;
* the depthwise causal conv continues from the last K - 1 inputs of the previous chunk, its
  SiLU fused in (``lc_models.ops.causal_conv``); Mamba-2's gated RMS norm is one pass
  (``lc_models.ops.rms_norm``);
* the scan starts from ``ssm_state``: ``lc_models.ops.selective_scan`` (on a CPU, the native
  kernel with softplus, D and the gate fused in) or ``lc_models.ops.ssd`` (chunked, GEMMs).

It is a layer forward, not an op: the mamba_ssm hybrids here (``mixer_model``) and the runners
of transformers' Mamba models (``lc_models.hf_runners.mamba``, ``mamba2``) both call it.

>>> import torch
>>> from transformers import MambaConfig, MambaForCausalLM
>>> mixer = MambaForCausalLM(MambaConfig(hidden_size=16, state_size=4,
...     num_hidden_layers=1, vocab_size=10)).backbone.layers[0].mixer
>>> x = torch.randn(1, 9, 16)
>>> a, conv, ssm = mamba1_chunk(mixer, x[:, :4], None, None)
>>> b, conv, ssm = mamba1_chunk(mixer, x[:, 4:], conv, ssm)
>>> torch.allclose(torch.cat([a, b], 1), mixer(x), atol=1e-5)
True
"""

from __future__ import annotations

import torch

from lc_models.ops.causal_conv import causal_conv1d
from lc_models.ops.linear import fast_linear
from lc_models.ops.rms_norm import gated_rms_norm
from lc_models.ops.selective_scan import selective_scan
from lc_models.ops.ssd import ssd


def mamba1_chunk(mixer, hidden_states, conv_state=None, ssm_state=None, attention_mask=None):
    """Run ``mixer`` (a transformers Mamba-1 mixer module) on one chunk.

    hidden_states: (batch, L, hidden); conv_state: (batch, d_inner, K) or None;
    ssm_state: (batch, d_inner, d_state) or None (zeros). Returns (out (batch, L, hidden),
    conv_state (batch, d_inner, K), ssm_state (batch, d_inner, d_state) float32).
    FalconMamba's and Jamba's RMS norms on dt, B and C are applied when the mixer has them.
    """
    dtype = hidden_states.dtype
    if attention_mask is not None:  # zero padded positions, as transformers does
        hidden_states = hidden_states * attention_mask[:, :, None].to(dtype)
    d_inner = mixer.intermediate_size
    xz = mixer.in_proj(hidden_states)  # (batch, L, 2 * d_inner)
    x, gate = xz[..., :d_inner], xz[..., d_inner:]
    x, conv_state = _conv(mixer, x, conv_state)  # (batch, L, d_inner), activated
    if attention_mask is not None:
        x = x * attention_mask[:, :, None].to(x.dtype)
    rank, n = mixer.time_step_rank, mixer.ssm_state_size
    proj = mixer.x_proj(x)  # (batch, L, rank + 2 n)
    dt, B, C = proj[..., :rank], proj[..., rank : rank + n], proj[..., rank + n :]
    dt, B, C = (_norm(mixer, name, t) for name, t in
                (("dt_layernorm", dt), ("b_layernorm", B), ("c_layernorm", C)))
    dt = fast_linear(dt, mixer.dt_proj.weight)  # (batch, L, d_inner); bias added in the scan
    A = -torch.exp(mixer.A_log.float())  # (d_inner, d_state)
    y, ssm_state = selective_scan(
        x.transpose(1, 2), dt.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2),
        D=mixer.D.float(), z=gate.transpose(1, 2), delta_bias=mixer.dt_proj.bias.float(),
        delta_softplus=True, initial_state=ssm_state, return_final_state=True,
    )  # y: (batch, d_inner, L), a view of channels-last memory on the native path
    return mixer.out_proj(y.transpose(1, 2).to(dtype)), conv_state, ssm_state


def mamba2_chunk(mixer, hidden_states, conv_state=None, ssm_state=None, attention_mask=None):
    """Run ``mixer`` (a transformers ``Mamba2Mixer``) on one chunk.

    hidden_states: (batch, L, hidden); conv_state: (batch, conv_dim, K) or None; ssm_state:
    (batch, nheads, head_dim, d_state) or None (zeros). Returns (out (batch, L, hidden),
    conv_state, ssm_state float32), like ``mamba1_chunk``.
    """
    dtype = hidden_states.dtype
    if attention_mask is not None:
        hidden_states = hidden_states * attention_mask[:, :, None].to(dtype)
    batch, L, _ = hidden_states.shape
    d_inner, conv_dim = mixer.intermediate_size, mixer.conv_dim
    heads, head_dim = mixer.num_heads, mixer.head_dim
    groups, n = mixer.n_groups, mixer.ssm_state_size
    proj = mixer.in_proj(hidden_states)  # (batch, L, d_inner + conv_dim + heads)
    gate, xBC, dt = proj[..., :d_inner], proj[..., d_inner : d_inner + conv_dim], proj[
        ..., d_inner + conv_dim :
    ]
    # (batch, L, conv_dim): x, B, C, activated; float32 (the scan's dtype, so a half-precision
    # model skips a rounding and a conversion back)
    xBC, conv_state = _conv(mixer, xBC, conv_state, torch.float32)
    if attention_mask is not None:
        xBC = xBC * attention_mask[:, :, None].to(xBC.dtype)
    x = xBC[..., :d_inner].reshape(batch, L, heads, head_dim)
    B = xBC[..., d_inner : d_inner + groups * n].reshape(batch, L, groups, n)
    C = xBC[..., d_inner + groups * n :].reshape(batch, L, groups, n)
    y, ssm_state = ssd(
        x, dt, -torch.exp(mixer.A_log.float()), B, C, D=mixer.D, dt_bias=mixer.dt_bias,
        dt_softplus=True, dt_limit=tuple(mixer.time_step_limit), initial_state=ssm_state,
        return_final_state=True,
    )  # y: (batch, L, heads, head_dim)
    y = _gated_norm(mixer.norm, y.reshape(batch, L, d_inner), gate, dtype)
    return mixer.out_proj(y.to(dtype)), conv_state, ssm_state


def _conv(mixer, x, conv_state, out_dtype=None):
    """The mixer's depthwise conv and activation on x (batch, L, channels): SiLU fused into
    the conv, any other activation after it. Returns (activated in ``out_dtype``, default
    x's, conv_state)."""
    conv = mixer.conv1d
    silu = isinstance(mixer.act, torch.nn.SiLU) or type(mixer.act).__name__ == "SiLUActivation"
    y, conv_state = causal_conv1d(x, conv.weight[:, 0], conv.bias, conv_state,
                                  activation="silu" if silu else None, out_dtype=out_dtype)
    return (y if silu else mixer.act(y)), conv_state


def _gated_norm(norm, y, gate, out_dtype=None):
    """transformers' ``MambaRMSNormGated`` (``norm``) on y, gated by ``gate``, in one pass;
    rounded to ``out_dtype`` (the out-projection's) where given."""
    if not hasattr(norm, "group_size") or not hasattr(norm, "variance_epsilon"):
        return norm(y, gate)
    return gated_rms_norm(y, gate, norm.weight, norm.group_size, norm.variance_epsilon,
                          out_dtype=out_dtype)


def _norm(mixer, name, x):
    norm = getattr(mixer, name, None)
    return x if norm is None else norm(x)
