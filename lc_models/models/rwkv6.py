"""RWKV-6 "Finch" (x060), e.g. RWKV-6 World: the model, its state, and its two checkpoint formats.

transformers has no RWKV-6 (only RWKV-4), and the HF repositories run it as remote code that
ignores the attention mask. This is our own implementation, written from BlinkDL's definition
(``rwkv`` package, ``RWKV-LM`` x060), with the state carried explicitly between chunks:

* **token shift** with data-dependent mixing: ``sx = x_{t-1} - x_t``; a low-rank ``time_maa``
  projection of ``x + sx * maa_x`` gives five mixing offsets (w, k, v, r, g);
* **data-dependent decay**: ``log w_t = -exp(time_decay + tanh(x_w @ decay_w1) @ decay_w2)``;
* **WKV6** (``lc_models.ops.wkv6``) with the bonus ``time_faaaa``, per head; the GroupNorm
  ``ln_x``; the gate ``silu(gate(x_g))``; the output projection;
* **channel mix**: ``sigmoid(receptance(x_r)) * value(relu(key(x_k))^2)``.

State per layer (``RwkvLayer``): the two token-shift inputs (the normed input of the last
token, of the time mix and of the channel mix) and the float32 WKV matrix of every head. The LM
around the blocks (embedding, ``ln_out``, head, the empty state) is ``rwkv_lm.RwkvLM``, shared
with RWKV-7.

Checkpoints (``load``): BlinkDL's native ``.pth`` (``blocks.N.att.*``, ``blocks.N.ffn.*``) and
the HF format (``config.json`` with model_type ``rwkv6``, ``rwkv.blocks.N.attention.*``).
Both load into the same module; every key must be understood and present.

>>> cfg = Rwkv6Config(vocab_size=50, n_embd=32, n_layer=2, head_size=8, dim_ffn=64)
>>> model = Rwkv6LM(cfg)
>>> state = model.new_state(1)
>>> model.prefill(torch.tensor([[1, 2, 3]]), state).shape
torch.Size([1, 3, 50])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from lc_models.models.rwkv_lm import RwkvLayer, RwkvLM
from lc_models.models.rwkv_world import NAME as WORLD_TOKENIZER
from lc_models.ops.wkv6 import wkv6
from lc_models.state import LayerStates
from lc_tasks.errors import UsageError

MODEL_TYPE = "rwkv6"
TOKENIZER = WORLD_TOKENIZER  # what World checkpoints are tokenized with
LN_EPS = 1e-5  # BlinkDL's LayerNorm default
LN_X_EPS = 64e-5  # GroupNorm ln_x: 1e-5 * head_size_divisor ** 2, divisor 8


@dataclass
class Rwkv6Config:
    """Shapes of an RWKV-6 model; ``from_weights`` reads them off a state dict."""

    vocab_size: int
    n_embd: int
    n_layer: int
    head_size: int = 64
    dim_att: int | None = None  # default n_embd
    dim_ffn: int | None = None  # default int(3.5 * n_embd) // 32 * 32
    mix_lora: int = 32  # rank of the time_maa projection (per part)
    decay_lora: int = 64  # rank of the time_decay projection
    ln_eps: float = LN_EPS
    ln_x_eps: float = LN_X_EPS

    def __post_init__(self):
        self.dim_att = self.dim_att or self.n_embd
        self.dim_ffn = self.dim_ffn or int(3.5 * self.n_embd) // 32 * 32
        if self.dim_att % self.head_size:
            raise UsageError(f"dim_att {self.dim_att} is not a multiple of head_size "
                             f"{self.head_size}")

    @property
    def n_head(self) -> int:
        return self.dim_att // self.head_size

    @classmethod
    def from_weights(cls, state: dict[str, torch.Tensor], **overrides) -> Rwkv6Config:
        """The shapes of a native-named state dict (``blocks.0.att.*`` ...)."""
        layers = {int(k.split(".")[1]) for k in state if k.startswith("blocks.")}
        faaaa = state["blocks.0.att.time_faaaa"]  # (heads, head_size)
        head_size = faaaa.shape[-1]
        heads = faaaa.numel() // head_size
        return cls(
            vocab_size=state["emb.weight"].shape[0],
            n_embd=state["emb.weight"].shape[1],
            n_layer=max(layers) + 1,
            head_size=head_size,
            dim_att=heads * head_size,
            dim_ffn=state["blocks.0.ffn.key.weight"].shape[0],
            mix_lora=state["blocks.0.att.time_maa_w1"].shape[1] // 5,
            decay_lora=state["blocks.0.att.time_decay_w1"].shape[1],
            **overrides,
        )

    def to_hf(self) -> PretrainedConfig:
        """A transformers config carrying these fields (what lm-eval's HFLM reads)."""
        return HFConfig(**asdict(self))


class HFConfig(PretrainedConfig):
    model_type = MODEL_TYPE


class TimeMix(nn.Module):
    """RWKV-6 attention ("time mix"), parameters named as in BlinkDL's checkpoints."""

    def __init__(self, cfg: Rwkv6Config):
        super().__init__()
        C, A, D, D2 = cfg.n_embd, cfg.dim_att, cfg.mix_lora, cfg.decay_lora
        self.n_head, self.head_size, self.eps = cfg.n_head, cfg.head_size, cfg.ln_x_eps
        for part in "xwkvrg":
            setattr(self, f"time_maa_{part}", nn.Parameter(torch.zeros(C)))
        self.time_maa_w1 = nn.Parameter(torch.zeros(C, 5 * D))
        self.time_maa_w2 = nn.Parameter(torch.zeros(5, D, C))
        self.time_decay = nn.Parameter(torch.zeros(A))
        self.time_decay_w1 = nn.Parameter(torch.zeros(C, D2))
        self.time_decay_w2 = nn.Parameter(torch.zeros(D2, A))
        self.time_faaaa = nn.Parameter(torch.zeros(cfg.n_head, cfg.head_size))
        self.receptance = nn.Linear(C, A, bias=False)
        self.key = nn.Linear(C, A, bias=False)
        self.value = nn.Linear(C, A, bias=False)
        self.gate = nn.Linear(C, A, bias=False)
        self.output = nn.Linear(A, C, bias=False)
        self.ln_x = nn.GroupNorm(cfg.n_head, A, eps=cfg.ln_x_eps)

    def forward(self, x, layer: RwkvLayer):
        """x: (batch, T, n_embd), normed by ln1; updates ``layer``'s att_shift and wkv."""
        batch, T, _ = x.shape
        sx = torch.cat([layer.att_shift[:, None].to(x.dtype), x[:, :-1]], 1) - x  # (b, T, C)
        lora = torch.tanh((x + sx * self.time_maa_x) @ self.time_maa_w1)  # (b, T, 5 D)
        lora = torch.einsum("btfd,fdc->fbtc", lora.view(batch, T, 5, -1), self.time_maa_w2)
        mw, mk, mv, mr, mg = lora  # each (b, T, C)
        xw = x + sx * (self.time_maa_w + mw)
        xk = x + sx * (self.time_maa_k + mk)
        xv = x + sx * (self.time_maa_v + mv)
        xr = x + sx * (self.time_maa_r + mr)
        xg = x + sx * (self.time_maa_g + mg)
        heads = (batch, T, self.n_head, self.head_size)
        r, k, v = (proj(t).view(heads) for proj, t in
                   ((self.receptance, xr), (self.key, xk), (self.value, xv)))
        decay = self.time_decay.float() + (torch.tanh(xw @ self.time_decay_w1)
                                           @ self.time_decay_w2).float()
        log_w = -torch.exp(decay).view(heads)  # (b, T, heads, N), float32
        o, layer.wkv = wkv6(r, k, v, log_w, self.time_faaaa, initial_state=layer.wkv,
                            output_final_state=True)  # o: (b, T, heads, N) float32
        o = F.group_norm(o.reshape(batch * T, -1), self.n_head, self.ln_x.weight.float(),
                         self.ln_x.bias.float(), eps=self.eps).view(batch, T, -1)
        layer.att_shift = x[:, -1]
        return self.output(o.to(x.dtype) * F.silu(self.gate(xg)))


class ChannelMix(nn.Module):
    """RWKV-6 feed-forward ("channel mix")."""

    def __init__(self, cfg: Rwkv6Config):
        super().__init__()
        self.time_maa_k = nn.Parameter(torch.zeros(cfg.n_embd))
        self.time_maa_r = nn.Parameter(torch.zeros(cfg.n_embd))
        self.key = nn.Linear(cfg.n_embd, cfg.dim_ffn, bias=False)
        self.receptance = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.value = nn.Linear(cfg.dim_ffn, cfg.n_embd, bias=False)

    def forward(self, x, layer: RwkvLayer):
        """x: (batch, T, n_embd), normed by ln2; updates ``layer``'s ffn_shift."""
        sx = torch.cat([layer.ffn_shift[:, None].to(x.dtype), x[:, :-1]], 1) - x
        k = torch.relu(self.key(x + sx * self.time_maa_k)).square()  # (b, T, dim_ffn)
        layer.ffn_shift = x[:, -1]
        return torch.sigmoid(self.receptance(x + sx * self.time_maa_r)) * self.value(k)


class Block(nn.Module):
    def __init__(self, cfg: Rwkv6Config, index: int):
        super().__init__()
        if index == 0:
            self.ln0 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps)
        self.ln1 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps)
        self.ln2 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps)
        self.att = TimeMix(cfg)
        self.ffn = ChannelMix(cfg)

    def forward(self, x, layer: RwkvLayer):
        if hasattr(self, "ln0"):
            x = self.ln0(x)
        x = x + self.att(self.ln1(x), layer)
        return x + self.ffn(self.ln2(x), layer)


class Rwkv6LM(RwkvLM):
    """RWKV-6 language model; ``prefill(ids, state)`` continues from ``state`` exactly."""

    block_type = Block

    def __init__(self, cfg: Rwkv6Config):
        super().__init__(cfg, ln_out_eps=LN_EPS)  # ln_out: the default in every version

    @torch.no_grad()
    def prefill(self, input_ids, state: LayerStates, last_only: bool = False):
        x = self.emb(input_ids)  # (b, T, C)
        for block, layer in zip(self.blocks, state.layers):
            x = block(x, layer)
        return self.head_logits(x, last_only)


# ---------------------------------------------------------------------------- checkpoints
# HF key fragment -> native one (BBuf's conversion only renames; the shapes are the same)
HF_RENAMES = (("rwkv.embeddings.", "emb."), (".pre_ln.", ".ln0."), (".attention.", ".att."),
              (".feed_forward.", ".ffn."), ("rwkv.", ""))
# config.json fields of the HF format that this loader reads or that change nothing here
HF_FIELDS = frozenset({
    "vocab_size", "hidden_size", "num_hidden_layers", "attention_hidden_size", "head_size",
    "head_size_divisor", "intermediate_size", "layer_norm_epsilon", "tie_word_embeddings",
    "rescale_every",  # fp16/bf16 overflow guard of the remote code; same function (LayerNorms)
    "context_length", "use_cache", "bos_token_id", "eos_token_id", "pad_token_id", "auto_map",
    "torch_dtype", *PretrainedConfig().to_dict(),
})
# keys that tell other RWKV generations apart, for a clear refusal (x070 files reach this
# loader only when the RWKV-7 one cannot list their keys: lc_models.models.rwkv7.detect)
_OTHER_VERSIONS = {"att.r_k": "RWKV-7 (x070)", "att.time_mix_k": "RWKV-4/5",
                   "att.time_first": "RWKV-4/5"}


def detect(pretrained, revision=None, subfolder=""):
    """``("pth", path)``, ``("hf", config)`` or None: is ``pretrained`` an RWKV-6 checkpoint?

    A ``.pth`` file, or a folder holding one (and no config.json), is taken as native; a
    config.json with model_type ``rwkv6`` as the HF format. Reads no weights.
    """
    from lc_models.models.checkpoint import read_json

    path = Path(str(pretrained))
    if path.is_file():
        return ("pth", str(path)) if path.suffix == ".pth" else None
    config = read_json(str(pretrained), "config.json", revision, subfolder)
    if config is not None:
        return ("hf", config) if config.get("model_type") == MODEL_TYPE else None
    if path.is_dir():
        found = sorted(Path(path, subfolder or "").glob("*.pth"))
        if len(found) > 1:
            names = ", ".join(f.name for f in found[:4])
            raise UsageError(f"{pretrained} holds several .pth files ({names}); pass "
                             "pretrained=<one .pth file>")
        if found:
            return ("pth", str(found[0]))
    return None


def _native_state(path: str) -> dict[str, torch.Tensor]:
    from lc_models.models.checkpoint import read_weights

    state = read_weights(path)
    if "blocks.0.att.time_maa_x" not in state or "blocks.0.att.time_faaaa" not in state:
        other = next((v for k, v in _OTHER_VERSIONS.items() if f"blocks.0.{k}" in state), None)
        what = f"an {other} checkpoint" if other else "not an RWKV checkpoint"
        raise UsageError(f"{path} is {what}: lc_hf runs RWKV-6 (x060) .pth files, which have "
                         "blocks.N.att.time_maa_x and time_faaaa, and RWKV-7 (x070) ones saved "
                         "by torch.save (zip format), which have blocks.N.att.r_k")
    return state


def _hf_state(pretrained, config: dict, revision, subfolder) -> tuple[dict, dict]:
    """Native-named state and the Rwkv6Config overrides of an HF-format checkpoint."""
    from lc_models.models.checkpoint import load_weights

    unknown = sorted(set(config) - HF_FIELDS)
    if unknown:
        raise UsageError(f"{pretrained}: config.json field {unknown[0]!r} is unknown to lc-eval's "
                         f"RWKV-6 loader (unknown: {', '.join(unknown[:5])})")
    state = {}
    for key, value in load_weights(str(pretrained), revision, subfolder).items():
        for old, new in HF_RENAMES:
            key = key.replace(old, new, 1) if old in key else key
        state[key] = value
    if config.get("tie_word_embeddings") and "head.weight" not in state:
        state["head.weight"] = state.get("emb.weight")
    divisor = config.get("head_size_divisor", 8)
    overrides = {"ln_eps": config.get("layer_norm_epsilon", LN_EPS),
                 "ln_x_eps": 1e-5 * divisor**2}
    return state, overrides


def _check_hf_config(cfg: Rwkv6Config, config: dict, source: str) -> None:
    expected = {"vocab_size": cfg.vocab_size, "hidden_size": cfg.n_embd,
                "num_hidden_layers": cfg.n_layer, "head_size": cfg.head_size,
                "attention_hidden_size": cfg.dim_att}
    for field, value in expected.items():
        if config.get(field) not in (None, value):
            raise UsageError(f"{source}: config.json says {field}={config[field]}, but the "
                             f"weights have {value}")


def open_checkpoint(pretrained, revision=None, subfolder=""):
    """The checkpoint's (Rwkv6Config, native-named state dict), or None if not RWKV-6."""
    found = detect(pretrained, revision, subfolder)
    if found is None:
        return None
    kind, what = found
    if kind == "pth":
        state = _native_state(what)
        return Rwkv6Config.from_weights(state), state
    state, overrides = _hf_state(pretrained, what, revision, subfolder)
    if "blocks.0.att.time_faaaa" not in state or "emb.weight" not in state:
        raise UsageError(f"{pretrained}: no RWKV-6 weights (rwkv.blocks.0.attention.time_faaaa)")
    cfg = Rwkv6Config.from_weights(state, **overrides)
    _check_hf_config(cfg, what, str(pretrained))
    return cfg, state


def hf_config(cfg: Rwkv6Config) -> PretrainedConfig:
    return cfg.to_hf()


build = Rwkv6LM.from_state  # build(cfg, state, source, dtype=None, device="cpu") -> Rwkv6LM
