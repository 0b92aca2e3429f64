"""mamba_ssm's ``MixerModel`` with attention and MLP layers (Mamba2-Attn, Transformer++, ...).

mamba_ssm builds a language model from a stack of pre-norm blocks (``mixer_seq_simple.py``,
``block.py``): layer i mixes with multi-head attention (``MHA``) when i is in
``attn_layer_idx``, otherwise with the SSM that ``ssm_cfg["layer"]`` names (Mamba1 or Mamba2);
every block also has a gated MLP when ``d_intermediate > 0``. No transformers class computes
that function: mamba_ssm's attention may convolve its packed q|k|v and rotate only part of each
head, and its residual stream stays in float32 (``residual_in_fp32``) whatever the weights'
dtype. This module computes it, with the state carried across chunks:

* **SSM layers** are transformers' own ``MambaMixer`` / ``Mamba2Mixer`` modules (same weight
  names as mamba_ssm), run through ``mamba_mixer`` (beside this module) with their conv and
  SSM states;
* **attention** (``MHA``) follows ``mamba_ssm/modules/mha.py``: packed in-projection
  ``[q | k | v | mlp_up | mlp_gate]``, an optional depthwise causal conv over q|k|v (bias, no
  activation; its last ``d_conv`` *inputs* are state), rotary on the first ``rotary_emb_dim``
  dims of q and k (GPT-NeoX halves, or interleaved pairs), grouped-query softmax attention over
  the KV cache, and the MLP part ``up * silu(gate)`` joined before ``out_proj``;
* **GatedMLP**: ``fc2(y * silu(gate))`` with ``y, gate = fc1(x).chunk(2)``.

>>> cfg = MixerConfig(d_model=16, n_layer=2, vocab_size=32, attn_layer_idx=(1,),
...     attn=AttnConfig(num_heads=2, head_dim=8), d_intermediate=32,
...     ssm_layer="Mamba2", ssm_hf={"state_size": 4, "head_dim": 4, "num_heads": 8,
...     "n_groups": 1, "expand": 2, "conv_kernel": 4})
>>> model = MixerLM(cfg)
>>> model.prefill(torch.tensor([[1, 2, 3]]), model.new_state(1)).shape
torch.Size([1, 3, 32])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from lc_models import kv_cache
from lc_models.models.mamba_mixer import mamba1_chunk, mamba2_chunk
from lc_models.models.stateful import StatefulLM
from lc_models.ops.attention import attend_chunk
from lc_models.ops.causal_conv import causal_conv1d
from lc_models.state import LayerStates

MODEL_TYPE = "mamba_ssm"
NORM_EPS = 1e-5  # mamba_ssm's RMSNorm default; MambaLMHeadModel never passes another


@dataclass
class AttnConfig:
    """mamba_ssm ``MHA`` arguments (``attn_cfg``), with its defaults resolved."""

    num_heads: int
    head_dim: int
    num_heads_kv: int | None = None  # default num_heads
    mlp_dim: int = 0  # already rounded up to a multiple of 256
    qkv_proj_bias: bool = True
    out_proj_bias: bool = True
    softmax_scale: float | None = None  # default 1 / sqrt(head_dim)
    d_conv: int = 0
    rotary_emb_dim: int = 0
    rotary_emb_base: float = 10000.0
    rotary_emb_interleaved: bool = False

    def __post_init__(self):
        self.num_heads_kv = self.num_heads_kv or self.num_heads

    @property
    def qkv_dim(self) -> int:
        return self.head_dim * (self.num_heads + 2 * self.num_heads_kv)


@dataclass
class MixerConfig:
    """The shape of a mamba_ssm MixerModel (``vocab_size`` already padded)."""

    d_model: int
    n_layer: int
    vocab_size: int
    attn_layer_idx: tuple[int, ...] = ()
    attn: AttnConfig | None = None
    d_intermediate: int = 0  # already rounded up to a multiple of 128
    ssm_layer: str = "Mamba2"  # "Mamba1" or "Mamba2"
    ssm_hf: dict = field(default_factory=dict)  # transformers Mamba(2)Config kwargs
    residual_in_fp32: bool = True
    tie_embeddings: bool = True

    def to_hf(self) -> PretrainedConfig:
        return HFConfig(**asdict(self))


class HFConfig(PretrainedConfig):
    model_type = MODEL_TYPE


@dataclass
class AttnLayer:
    """KV cache (batch, heads_kv, tokens, head_dim) and conv inputs (batch, qkv_dim, d_conv).

    k and v are views of the filled prefix of ``kv``, a buffer of ``capacity`` positions
    (``lc_models.kv_cache``: allocated once at the request's length, written in place, shared
    append-only with snapshots; a row selection copies k and v, and their next write makes
    a buffer of their own)."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None
    conv: torch.Tensor | None = None
    kv: kv_cache._Buffer | None = None
    capacity: int = 0


@dataclass
class SsmLayer:
    """Conv inputs (batch, conv_dim, K) and SSM state of a Mamba1/Mamba2 mixer."""

    conv: torch.Tensor | None = None
    ssm: torch.Tensor | None = None


def rms_norm(x, weight, eps=NORM_EPS):
    """mamba_ssm's RMSNorm (no bias): input cast to the weight's dtype, then normed in float32."""
    xf = x.to(weight.dtype).float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(
        weight.dtype)


def rotary(x, positions, dim: int, base: float, interleaved: bool):
    """Rotate the first ``dim`` channels of every head of x (batch, T, heads, head_dim) by
    ``positions`` (T,), as flash-attn's RotaryEmbedding does (angles in float32)."""
    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float32, device=x.device) / dim)
    angles = torch.outer(positions.float(), inv_freq)  # (T, dim / 2)
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]  # (T, 1, dim / 2)
    part = x[..., :dim].float()
    if interleaved:
        a, b = part[..., 0::2], part[..., 1::2]
        turned = torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
    else:
        a, b = part[..., : dim // 2], part[..., dim // 2 :]
        turned = torch.cat([a * cos - b * sin, a * sin + b * cos], -1)
    return torch.cat([turned.to(x.dtype), x[..., dim:]], -1)


def attend(q, k, v, start: int, scale: float | None):
    """Causal softmax attention of a chunk's queries q (batch, heads, T, d), at positions
    ``start ..``, over all keys k, v (batch, heads_kv, start + T, d); kv heads are shared by
    consecutive query heads (as mamba_ssm's repeat_interleave). No (T, S) mask: the keys are
    split at the chunk (``lc_models.ops.attention``)."""
    if k.shape[2] != start + q.shape[2]:
        raise ValueError(f"{k.shape[2]} keys for queries at {start} .. {start + q.shape[2] - 1}")
    return attend_chunk(q, k, v, scale)


class MHA(nn.Module):
    """mamba_ssm's ``MHA`` (causal), keeping its KV cache and conv inputs in an AttnLayer."""

    def __init__(self, d_model: int, cfg: AttnConfig):
        super().__init__()
        self.cfg = cfg
        self.in_proj = nn.Linear(d_model, cfg.qkv_dim + cfg.mlp_dim, bias=cfg.qkv_proj_bias)
        if cfg.d_conv > 0:
            self.conv1d = nn.Conv1d(cfg.qkv_dim, cfg.qkv_dim, cfg.d_conv,
                                    padding=cfg.d_conv - 1, groups=cfg.qkv_dim)
        out_in = cfg.head_dim * cfg.num_heads + cfg.mlp_dim // 2
        self.out_proj = nn.Linear(out_in, d_model, bias=cfg.out_proj_bias)

    def forward(self, x, layer: AttnLayer, start: int):
        """x: (batch, T, d_model) at positions start .. start + T - 1."""
        cfg = self.cfg
        batch, T, _ = x.shape
        proj = self.in_proj(x)  # (b, T, qkv_dim + mlp_dim)
        qkv, mlp = proj[..., : cfg.qkv_dim], proj[..., cfg.qkv_dim :]
        if cfg.d_conv > 0:
            qkv, layer.conv = causal_conv1d(qkv, self.conv1d.weight[:, 0], self.conv1d.bias,
                                            layer.conv)
        H, Hkv, d = cfg.num_heads, cfg.num_heads_kv, cfg.head_dim
        q = qkv[..., : H * d].view(batch, T, H, d)
        k = qkv[..., H * d : (H + Hkv) * d].view(batch, T, Hkv, d)
        v = qkv[..., (H + Hkv) * d :].view(batch, T, Hkv, d)
        if cfg.rotary_emb_dim > 0:
            positions = torch.arange(start, start + T, device=x.device)
            args = (positions, cfg.rotary_emb_dim, cfg.rotary_emb_base, cfg.rotary_emb_interleaved)
            q, k = rotary(q, *args), rotary(k, *args)
        layer.kv, k, v = kv_cache.append(layer.kv, layer.k, layer.v, k.transpose(1, 2),
                                         v.transpose(1, 2), layer.capacity)  # (b, Hkv, S, d)
        layer.k, layer.v = k, v
        context = attend(q.transpose(1, 2), k, v, start, cfg.softmax_scale)  # (b, H, T, d)
        context = context.transpose(1, 2).reshape(batch, T, H * d)
        if cfg.mlp_dim:
            up, gate = mlp.chunk(2, -1)
            context = torch.cat([context, up * F.silu(gate)], -1)
        return self.out_proj(context)


class GatedMLP(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * hidden, bias=False)
        self.fc2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x):
        y, gate = self.fc1(x).chunk(2, -1)
        return self.fc2(y * F.silu(gate))


class Norm(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x):
        return rms_norm(x, self.weight)


class Block(nn.Module):
    """One pre-norm block: mixer, then (when the model has one) the gated MLP."""

    def __init__(self, cfg: MixerConfig, index: int):
        super().__init__()
        self.norm = Norm(cfg.d_model)
        self.is_attention = index in cfg.attn_layer_idx
        if self.is_attention:
            self.mixer = MHA(cfg.d_model, cfg.attn)
        else:
            from transformers import Mamba2Config, MambaConfig
            from transformers.models.mamba.modeling_mamba import MambaMixer
            from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

            two = cfg.ssm_layer == "Mamba2"
            hf = (Mamba2Config if two else MambaConfig)(
                hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layer, **cfg.ssm_hf)
            self.mixer = (Mamba2Mixer if two else MambaMixer)(hf, layer_idx=index)
        if cfg.d_intermediate:
            self.norm2 = Norm(cfg.d_model)
            self.mlp = GatedMLP(cfg.d_model, cfg.d_intermediate)
        self.fp32 = cfg.residual_in_fp32

    def forward(self, hidden, residual, layer, start: int):
        """mamba_ssm's Block: returns (hidden, residual) for the next block."""
        residual = hidden if residual is None else hidden + residual
        hidden = self.norm(residual)
        residual = residual.float() if self.fp32 else residual
        if self.is_attention:
            hidden = self.mixer(hidden, layer, start)
        else:
            chunk = mamba2_chunk if hasattr(self.mixer, "dt_bias") else mamba1_chunk
            hidden, layer.conv, layer.ssm = chunk(self.mixer, hidden, layer.conv, layer.ssm)
        if hasattr(self, "mlp"):
            residual = hidden + residual
            hidden = self.mlp(self.norm2(residual))
            residual = residual.float() if self.fp32 else residual
        return hidden, residual


class MixerStates(LayerStates):
    """The layers' states; a reservation sizes the attention layers' KV buffers.

    A selection that keeps every row in order (a request's context state handed to its
    continuation) shares the tensors instead of copying them: no layer changes a state tensor
    in place (each chunk makes new conv and SSM states), and the KV buffers are append-only
    (``lc_models.kv_cache``), so the copies would only cost memory, a KV cache each."""

    def reserve(self, n_tokens: int) -> None:
        for layer in self.layers:
            if isinstance(layer, AttnLayer):
                layer.capacity = n_tokens

    def select(self, rows) -> MixerStates:
        rows = list(rows)
        if rows == list(range(self.batch_size)):
            return MixerStates([replace(layer) for layer in self.layers], self.n_tokens,
                               self.batch_size)
        picked = super().select(rows)
        return MixerStates(picked.layers, picked.n_tokens, picked.batch_size)


class MixerLM(StatefulLM):
    """mamba_ssm's MambaLMHeadModel; ``prefill(ids, state)`` continues from ``state`` exactly.

    Module names match mamba_ssm's, so its state dict loads as is.
    """

    def __init__(self, cfg: MixerConfig):
        super().__init__()
        self.cfg = cfg
        self.config = cfg.to_hf()
        self.backbone = nn.Module()
        self.backbone.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.backbone.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.backbone.norm_f = Norm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.tie_weights()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embedding

    def tie_weights(self) -> None:
        if self.cfg.tie_embeddings:
            self.lm_head.weight = self.backbone.embedding.weight

    def new_state(self, batch_size: int) -> MixerStates:
        """The state before any token (nothing cached yet)."""
        layers = [AttnLayer() if b.is_attention else SsmLayer() for b in self.backbone.layers]
        return MixerStates(layers, 0, batch_size)

    @torch.no_grad()
    def prefill(self, input_ids, state: LayerStates, last_only: bool = False):
        hidden, residual = self.backbone.embedding(input_ids), None
        for block, layer in zip(self.backbone.layers, state.layers):
            hidden, residual = block(hidden, residual, layer, state.n_tokens)
        hidden = self.backbone.norm_f(hidden + residual)
        if last_only:
            hidden = hidden[:, -1:]
        return self.lm_head(hidden)

