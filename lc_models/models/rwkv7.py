"""RWKV-7 "Goose" (x070): the model, its state, and its two checkpoint formats.

transformers has no RWKV-7, and the fla-hub repositories run it as remote code on
flash-linear-attention's Triton kernels (GPU only). This is our own implementation, written
from BlinkDL's definition (``rwkv`` package 0.8.32, ``RWKV_x070`` and its ``TMix``/``CMix``),
with the state carried explicitly between chunks:

* **token shift** with six static mixing vectors: ``x_* = x + (x_{t-1} - x_t) * x_*`` for
  r, w, k, v, a (in-context learning rate) and g (gate);
* **decay**: ``w_t = exp(-e^-0.5 * sigmoid(w0 + tanh(x_w @ w1) @ w2))``, in (0.545, 1);
* **in-context learning rate** ``iclr = sigmoid(a0 + (x_a @ a1) @ a2)``; the removal key
  ``kk = normalize(k * k_k)`` per head; the written key ``k * (1 + (iclr - 1) * k_a)``;
* **value residual**: every layer after the first mixes its value towards the first layer's
  value of the same token, ``v + (v_first - v) * sigmoid(v0 + (x_v @ v1) @ v2)``;
* **WKV7** (``lc_models.ops.wkv7``), the generalized delta rule with ``a = -kk`` and
  ``b = kk * iclr``; the GroupNorm ``ln_x``; the bonus ``(r * k * r_k).sum() * v`` per head;
  the gate ``sigmoid(x_g @ g1) @ g2``; the output projection;
* **channel mix**: ``value(relu(key(x_k))^2)``; with **DeepEmbed** (the G1 checkpoints that
  ``rwkv`` runs with ``RWKV_DE_VERSION=1``), the squared ReLU is scaled per channel by
  ``((x @ s1) @ E[token]) @ s2 + s0``, where ``E[token]`` is a (d, d) matrix of the token,
  ``s_emb[token] + ln0(emb[token]) @ s_emb_x^T``.

State per layer (``RwkvLayer``): the two token-shift inputs and the float32 WKV matrix of
every head, (value, key) as in the ``rwkv`` package. ``v_first`` is not state: it is layer
0's value *of the same token*, passed down the layers within one forward and recomputed for
every chunk, so chunked prefill needs nothing more (``tests/test_models_rwkv7.py``).

Checkpoints (``load``): BlinkDL's native ``.pth`` (``blocks.N.att.r_k`` ...) and fla's HF
format (``config.json`` with model_type ``rwkv7``, ``model.layers.N.attn.*``). Both load into
the same module; every key must be understood and present. Layer 0's ``v0``/``v1``/``v2`` of
a ``.pth`` are unused (the package ignores them, fla's format omits them) and dropped.

>>> cfg = Rwkv7Config(vocab_size=50, n_embd=32, n_layer=2, head_size=8)
>>> model = Rwkv7LM(cfg)
>>> state = model.new_state(1)
>>> model.prefill(torch.tensor([[1, 2, 3]]), state).shape
torch.Size([1, 3, 50])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from lc_models.models.rwkv_lm import RwkvLayer, RwkvLM
from lc_models.models.rwkv_world import NAME as WORLD_TOKENIZER
from lc_models.ops.wkv7 import wkv7
from lc_models.state import LayerStates
from lc_tasks.errors import UsageError

MODEL_TYPE = "rwkv7"
TOKENIZER = WORLD_TOKENIZER  # what World and G1 checkpoints are tokenized with
LN_EPS = 1e-5  # BlinkDL's LayerNorm default; fla's norm_eps
LN_X_EPS = 64e-5  # GroupNorm ln_x: the package's constant; fla's head_dim * norm_eps
DECAY_SCALE = math.exp(-0.5)  # log w = -e^-0.5 * sigmoid(.): w in (0.545, 1)


@dataclass
class Rwkv7Config:
    """Shapes of an RWKV-7 model; ``from_weights`` reads them off a state dict."""

    vocab_size: int
    n_embd: int
    n_layer: int
    head_size: int = 64
    dim_ffn: int | None = None  # default 4 * n_embd
    decay_lora: int = 64  # ranks of the w, a, v and g low-rank projections
    iclr_lora: int = 64
    value_lora: int = 32
    gate_lora: int = 128
    deep_embed: int = 0  # DeepEmbed's rank d (ffn.s1 is (n_embd, d)); 0 without it
    ln_eps: float = LN_EPS
    ln_x_eps: float = LN_X_EPS

    def __post_init__(self):
        self.dim_ffn = self.dim_ffn or 4 * self.n_embd
        if self.n_embd % self.head_size:
            raise UsageError(f"n_embd {self.n_embd} is not a multiple of head_size "
                             f"{self.head_size}")

    @property
    def n_head(self) -> int:
        return self.n_embd // self.head_size

    @classmethod
    def from_weights(cls, state: dict[str, torch.Tensor], **overrides) -> Rwkv7Config:
        """The shapes of a native-named state dict (``blocks.0.att.*`` ...)."""
        layers = {int(k.split(".")[1]) for k in state if k.startswith("blocks.")}
        head_size = state["blocks.0.att.r_k"].shape[-1]  # r_k: (heads, head_size)
        value_lora = {"value_lora": state["blocks.1.att.v1"].shape[1]} \
            if "blocks.1.att.v1" in state else {}
        deep = state.get("blocks.0.ffn.s1")
        return cls(
            vocab_size=state["emb.weight"].shape[0],
            n_embd=state["emb.weight"].shape[1],
            n_layer=max(layers) + 1,
            head_size=int(head_size),
            dim_ffn=state["blocks.0.ffn.key.weight"].shape[0],
            decay_lora=state["blocks.0.att.w1"].shape[1],
            iclr_lora=state["blocks.0.att.a1"].shape[1],
            gate_lora=state["blocks.0.att.g1"].shape[1],
            deep_embed=0 if deep is None else deep.shape[-1],
            **value_lora,
            **overrides,
        )

    def to_hf(self) -> PretrainedConfig:
        """A transformers config carrying these fields (what lm-eval's HFLM reads); it names
        no context length, because the model has none."""
        return HFConfig(**asdict(self))


class HFConfig(PretrainedConfig):
    model_type = MODEL_TYPE


def _shift(x, last):
    """x_{t-1} - x_t over a chunk, x_{-1} being ``last`` (batch, C): (batch, T, C)."""
    return torch.cat([last[:, None].to(x.dtype), x[:, :-1]], 1) - x


class TimeMix(nn.Module):
    """RWKV-7 attention ("time mix"), parameters named as in BlinkDL's checkpoints."""

    def __init__(self, cfg: Rwkv7Config, index: int):
        super().__init__()
        C = cfg.n_embd
        self.n_head, self.head_size, self.eps = cfg.n_head, cfg.head_size, cfg.ln_x_eps
        for part in "rwkvag":
            setattr(self, f"x_{part}", nn.Parameter(torch.zeros(C)))
        loras = {"w": cfg.decay_lora, "a": cfg.iclr_lora, "v": cfg.value_lora}
        if index == 0:  # layer 0 keeps its own value: no value residual
            del loras["v"]
        for part, rank in loras.items():
            setattr(self, f"{part}0", nn.Parameter(torch.zeros(C)))
            setattr(self, f"{part}1", nn.Parameter(torch.zeros(C, rank)))
            setattr(self, f"{part}2", nn.Parameter(torch.zeros(rank, C)))
        self.g1 = nn.Parameter(torch.zeros(C, cfg.gate_lora))
        self.g2 = nn.Parameter(torch.zeros(cfg.gate_lora, C))
        self.k_k = nn.Parameter(torch.zeros(C))
        self.k_a = nn.Parameter(torch.zeros(C))
        self.r_k = nn.Parameter(torch.zeros(cfg.n_head, cfg.head_size))
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.ln_x = nn.GroupNorm(cfg.n_head, C, eps=cfg.ln_x_eps)

    def forward(self, x, layer: RwkvLayer, v_first):
        """x: (batch, T, n_embd), normed by ln1; v_first: layer 0's value of these tokens
        (None in layer 0). Updates ``layer``'s att_shift and wkv; returns (out, v_first)."""
        batch, T, C = x.shape
        heads = (batch, T, self.n_head, self.head_size)
        sx = _shift(x, layer.att_shift)  # (b, T, C)
        xr, xw, xk, xv, xa, xg = (torch.addcmul(x, sx, p) for p in  # x + sx * p, one pass
                                  (self.x_r, self.x_w, self.x_k, self.x_v, self.x_a, self.x_g))
        r, k, v = self.receptance(xr), self.key(xk), self.value(xv)  # (b, T, C)
        log_w = -DECAY_SCALE * torch.sigmoid(
            (self.w0 + torch.tanh(xw @ self.w1) @ self.w2).float())  # (b, T, C) float32
        iclr = torch.sigmoid(self.a0 + (xa @ self.a1) @ self.a2)  # in (0, 1)
        gate = torch.sigmoid(xg @ self.g1) @ self.g2
        kk = F.normalize((k * self.k_k).view(heads), dim=-1)  # (b, T, heads, N), unit norm
        k = k * (1 + (iclr - 1) * self.k_a)
        if v_first is None:
            v_first = v
        else:
            v = torch.lerp(v, v_first, torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2))
        iclr = iclr.view(heads)
        o, layer.wkv = wkv7(r.view(heads), log_w.view(heads), k.view(heads), v.view(heads),
                            -kk, kk * iclr, initial_state=layer.wkv,
                            output_final_state=True)  # o: (b, T, heads, N) float32
        o = F.group_norm(o.reshape(batch * T, C), self.n_head, self.ln_x.weight.float(),
                         self.ln_x.bias.float(), eps=self.eps).view(heads)
        bonus = (r.view(heads) * k.view(heads) * self.r_k).float().sum(-1, keepdim=True)
        o = (o + bonus * v.view(heads).float()).view(batch, T, C)
        layer.att_shift = x[:, -1]
        return self.output(o.to(x.dtype) * gate), v_first


class ChannelMix(nn.Module):
    """RWKV-7 feed-forward ("channel mix"): squared ReLU, no receptance gate; DeepEmbed's
    per-token scale where the checkpoint has it."""

    def __init__(self, cfg: Rwkv7Config):
        super().__init__()
        C, hidden, d = cfg.n_embd, cfg.dim_ffn, cfg.deep_embed
        self.x_k = nn.Parameter(torch.zeros(C))
        self.key = nn.Linear(C, hidden, bias=False)
        self.value = nn.Linear(hidden, C, bias=False)
        self.deep = d
        if d:
            self.s_emb = nn.Embedding(cfg.vocab_size, d * d)
            self.s_emb_x = nn.Linear(C, d * d, bias=False)
            self.s0 = nn.Parameter(torch.zeros(hidden))
            self.s1 = nn.Parameter(torch.zeros(C, d))
            self.s2 = nn.Parameter(torch.zeros(d, hidden))

    def forward(self, x, layer: RwkvLayer, input_ids=None, x0=None):
        """x: (batch, T, n_embd), normed by ln2; input_ids (batch, T) and x0, their ln0-normed
        embeddings, are read by DeepEmbed only. Updates ``layer``'s ffn_shift."""
        k = self.key(torch.addcmul(x, _shift(x, layer.ffn_shift), self.x_k))  # (b, T, dim_ffn)
        k = k.relu_().mul_(k)  # squared ReLU, in place: the largest activation of the block
        if self.deep:
            table = (self.s_emb(input_ids) + self.s_emb_x(x0)).unflatten(-1, (self.deep, -1))
            ss = ((x @ self.s1)[..., None, :] @ table).squeeze(-2)  # (b, T, d)
            k = k * (ss @ self.s2 + self.s0)
        layer.ffn_shift = x[:, -1]
        return self.value(k)  # (b, T, C)


class Block(nn.Module):
    def __init__(self, cfg: Rwkv7Config, index: int):
        super().__init__()
        if index == 0:  # applied by Rwkv7LM to the embeddings (DeepEmbed reads them normed)
            self.ln0 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps)
        self.ln1 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps)
        self.ln2 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps)
        self.att = TimeMix(cfg, index)
        self.ffn = ChannelMix(cfg)

    def forward(self, x, layer: RwkvLayer, v_first, input_ids=None, x0=None):
        out, v_first = self.att(self.ln1(x), layer, v_first)
        x = x + out
        return x + self.ffn(self.ln2(x), layer, input_ids, x0), v_first


class Rwkv7LM(RwkvLM):
    """RWKV-7 language model; ``prefill(ids, state)`` continues from ``state`` exactly."""

    block_type = Block

    @torch.no_grad()
    def prefill(self, input_ids, state: LayerStates, last_only: bool = False):
        x = self.blocks[0].ln0(self.emb(input_ids))  # (b, T, C)
        x0 = x if self.cfg.deep_embed else None
        v_first = None  # layer 0's value of these tokens, once layer 0 has run
        for block, layer in zip(self.blocks, state.layers):
            x, v_first = block(x, layer, v_first, input_ids, x0)
        return self.head_logits(x, last_only)


# ---------------------------------------------------------------------------- checkpoints
# fla's HF key fragment -> native one (the low-rank projections are handled in _native_key)
HF_RENAMES = (("model.embeddings.", "emb."), ("model.norm.", "ln_out."),
              ("lm_head.", "head."), ("model.layers.", "blocks."), (".pre_norm.", ".ln0."),
              (".attn_norm.", ".ln1."), (".ffn_norm.", ".ln2."), (".attn.", ".att."),
              (".r_proj.", ".receptance."), (".k_proj.", ".key."), (".v_proj.", ".value."),
              (".o_proj.", ".output."), (".g_norm.", ".ln_x."))
# fla's LoRA(in, out, rank): lora.0 = Linear(in, rank), lora.2 = Linear(rank, out[, bias])
_LORA = {"lora.0.weight": "1", "lora.2.weight": "2", "lora.2.bias": "0"}
# config.json fields of fla's RWKV7Config that this loader reads, checks, or that change
# nothing in inference (kernels choice, fusions, training losses, init, the cache flag)
HF_FIELDS = frozenset({
    "vocab_size", "hidden_size", "hidden_ratio", "intermediate_size", "num_hidden_layers",
    "head_dim", "num_heads", "decay_low_rank_dim", "gate_low_rank_dim", "a_low_rank_dim",
    "v_low_rank_dim", "value_dim", "hidden_act", "norm_first", "norm_bias", "norm_eps",
    "attn", "tie_word_embeddings",
    "max_position_embeddings",  # fla's default 2048; no limit for a recurrent model
    "attn_mode", "fuse_norm", "fuse_cross_entropy", "fuse_linear_cross_entropy",
    "use_l2warp", "initializer_range", "use_cache", "bos_token_id", "eos_token_id",
    "pad_token_id", "auto_map", "torch_dtype", "dtype", *PretrainedConfig().to_dict(),
})
HF_MODEL_TYPES = (MODEL_TYPE, "rwkv7_fla")  # fla-hub's config.json, fla's own class
VERSION_KEY = "blocks.0.att.r_k"  # only x070 has it (x060: time_faaaa, x040/x050: time_first)


def _pth_keys(path: Path) -> set[str] | None:
    """The keys of a torch ``.pth`` without reading its tensors (mmap), or None."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  not a zip-format state dict: the RWKV-6 loader explains
        return None
    return set(state) if isinstance(state, dict) else None


def _is_x070(path: Path) -> bool:
    keys = _pth_keys(path)
    return keys is not None and VERSION_KEY in keys


def detect(pretrained, revision=None, subfolder=""):
    """``("pth", path)``, ``("hf", config)`` or None: is ``pretrained`` an RWKV-7 checkpoint?

    A ``.pth`` file (or a folder holding just one, and no config.json) whose keys include
    ``blocks.0.att.r_k`` is native x070; other ``.pth`` files are left to the RWKV-6 loader,
    which reads x060 and names the version of the rest. A config.json with model_type
    ``rwkv7`` is fla's HF format. Reads the ``.pth`` key names only, never the tensors.
    """
    from lc_models.models.checkpoint import read_json

    path = Path(str(pretrained))
    if path.is_file():
        return ("pth", str(path)) if path.suffix == ".pth" and _is_x070(path) else None
    config = read_json(str(pretrained), "config.json", revision, subfolder)
    if config is not None:
        return ("hf", config) if config.get("model_type") in HF_MODEL_TYPES else None
    if path.is_dir():
        found = sorted(Path(path, subfolder or "").glob("*.pth"))
        if len(found) == 1 and _is_x070(found[0]):
            return ("pth", str(found[0]))
    return None


def _native_key(key: str) -> tuple[str, bool]:
    """The native name of an fla key, and whether its tensor is transposed between them:
    fla's LoRA weights are Linear (out, in), BlinkDL's ``w1``/``w2`` (in, out) matrices."""
    for old, new in HF_RENAMES:
        key = key.replace(old, new, 1) if old in key else key
    for part in "wavg":
        for lora, num in _LORA.items():
            if key.endswith(f".att.{part}_lora.{lora}"):
                return key.replace(f"{part}_lora.{lora}", f"{part}{num}"), num != "0"
    return key, False


def _hf_state(pretrained, config: dict, revision, subfolder) -> tuple[dict, dict]:
    """Native-named state and the Rwkv7Config overrides of an fla-format checkpoint."""
    from lc_models.models.checkpoint import load_weights

    unknown = sorted(set(config) - HF_FIELDS)
    if unknown:
        raise UsageError(f"{pretrained}: config.json field {unknown[0]!r} is unknown to "
                         f"lc-eval's RWKV-7 loader (unknown: {', '.join(unknown[:5])})")
    for field, supported in (("attn", None), ("norm_first", True), ("norm_bias", True),
                             ("hidden_act", "sqrelu")):
        if field in config and config[field] != supported:
            raise UsageError(f"{pretrained}: config.json {field}={config[field]!r} is not "
                             f"supported by lc-eval's RWKV-7 (only {supported!r})")
    state = {}
    for key, value in load_weights(str(pretrained), revision, subfolder).items():
        key, transposed = _native_key(key)
        state[key] = value.t().contiguous() if transposed else value
    if config.get("tie_word_embeddings") and "head.weight" not in state:
        state["head.weight"] = state.get("emb.weight")
    eps = config.get("norm_eps", LN_EPS)
    # fla's GroupNorm eps is head_dim * norm_eps: 64 * 1e-5, which is 64e-5 up to the last bit
    return state, {"ln_eps": eps, "ln_x_eps": float(f"{state_head_size(state) * eps:.12g}")}


def state_head_size(state: dict) -> int:
    """The head size of a native-named state dict (``r_k`` is (heads, head_size))."""
    return state[VERSION_KEY].shape[-1] if VERSION_KEY in state else 64


def _check_hf_config(cfg: Rwkv7Config, config: dict, source: str) -> None:
    expected = {"vocab_size": cfg.vocab_size, "hidden_size": cfg.n_embd,
                "num_hidden_layers": cfg.n_layer, "head_dim": cfg.head_size,
                "intermediate_size": cfg.dim_ffn, "decay_low_rank_dim": cfg.decay_lora,
                "a_low_rank_dim": cfg.iclr_lora, "gate_low_rank_dim": cfg.gate_lora}
    if config.get("head_dim") is None:  # fla reads num_heads only then (fla-hub's say 32)
        expected["num_heads"] = cfg.n_head
    if cfg.n_layer > 1:
        expected["v_low_rank_dim"] = cfg.value_lora
    for field, value in expected.items():
        if config.get(field) not in (None, value):
            raise UsageError(f"{source}: config.json says {field}={config[field]}, but the "
                             f"weights have {value}")
    value_dim = config.get("value_dim")
    if value_dim is not None and set(value_dim if isinstance(value_dim, list) else [value_dim]
                                     ) != {cfg.n_embd}:
        raise UsageError(f"{source}: config.json value_dim={value_dim} differs from "
                         f"hidden_size {cfg.n_embd}, which lc-eval's RWKV-7 does not support")


def _native_state(path: str) -> dict[str, torch.Tensor]:
    from lc_models.models.checkpoint import read_weights

    state = read_weights(path)
    for part in "012":  # layer 0's value residual: saved by BlinkDL's trainer, never used
        state.pop(f"blocks.0.att.v{part}", None)
    return state


def open_checkpoint(pretrained, revision=None, subfolder=""):
    """The checkpoint's (Rwkv7Config, native-named state dict), or None if not RWKV-7."""
    found = detect(pretrained, revision, subfolder)
    if found is None:
        return None
    kind, what = found
    if kind == "pth":
        state = _native_state(what)
        overrides = {}
    else:
        state, overrides = _hf_state(pretrained, what, revision, subfolder)
    needed = (VERSION_KEY, "emb.weight", "blocks.0.ffn.key.weight", "blocks.0.att.w1",
              "blocks.0.att.a1", "blocks.0.att.g1")
    absent = [key for key in needed if key not in state]
    if absent:
        raise UsageError(f"{pretrained} is an RWKV-7 (x070) checkpoint without key "
                         f"{absent[0]!r} (absent: {', '.join(absent)})")
    cfg = Rwkv7Config.from_weights(state, **overrides)
    if kind == "hf":
        _check_hf_config(cfg, what, str(pretrained))
    return cfg, state


def hf_config(cfg: Rwkv7Config) -> PretrainedConfig:
    return cfg.to_hf()


build = Rwkv7LM.from_state  # build(cfg, state, source, dtype=None, device="cpu") -> Rwkv7LM
