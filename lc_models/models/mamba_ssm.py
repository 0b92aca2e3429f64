"""Native mamba_ssm checkpoints (``state-spaces/mamba-*``, ``mamba2-*``, ``mamba2attn-*``,
``transformerpp-*``): a mamba_ssm ``config.json`` and ``pytorch_model.bin``, no tokenizer.

* **Pure SSM stacks** (no ``attn_layer_idx``, ``d_intermediate`` 0) are converted into
  transformers' ``MambaForCausalLM`` / ``Mamba2ForCausalLM`` (same weights; only the embedding
  key differs) and run through the same exact path as those models from the hub.
* **Stacks with attention or MLP layers** load into ``lc_models.models.mixer_model.MixerLM``,
  our implementation of mamba_ssm's MixerModel: no transformers class computes their function.

Every config field must be understood: an unknown one, or a value these implementations do
not compute (e.g. ``rms_norm: false``, a per-channel ``D``), is refused with its name.

>>> cfg = {"d_model": 64, "n_layer": 2, "vocab_size": 100, "ssm_cfg": {"layer": "Mamba2"},
...        "pad_vocab_size_multiple": 16}
>>> to_hf_config(cfg).model_type, to_hf_config(cfg).vocab_size
('mamba2', 112)
>>> validate({**cfg, "attn_layer_idx": [1], "attn_cfg": {"num_heads": 4, "causal": True,
...           "rotary_dim": 16}})
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: unknown attn_cfg field 'rotary_dim' in this mamba_ssm config (known: ...)
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lc_models.models.mixer_model import AttnConfig, MixerConfig, MixerLM
from lc_tasks.errors import UsageError

# lm-eval's mamba_ssm wrapper uses this tokenizer for these checkpoints too.
TOKENIZER = DEFAULT_TOKENIZER = "EleutherAI/gpt-neox-20b"
NORM_EPS = 1e-5  # a code default of mamba_ssm, not a config field

# mamba_ssm's MambaConfig fields; fused_add_norm only fuses the same computation
CONFIG_FIELDS = frozenset({
    "d_model", "d_intermediate", "n_layer", "vocab_size", "ssm_cfg", "attn_layer_idx",
    "attn_cfg", "rms_norm", "residual_in_fp32", "fused_add_norm", "pad_vocab_size_multiple",
    "tie_embeddings",
})
# Arguments of the SSM modules; dt_*/A_init/conv_init only initialise, the rest are read.
_SSM_COMMON = {"d_state", "d_conv", "expand", "bias", "conv_bias", "dt_min", "dt_max",
               "dt_init_floor", "layer"}
SSM_FIELDS = {
    "Mamba1": frozenset(_SSM_COMMON | {"dt_rank", "dt_init", "dt_scale", "use_fast_path"}),
    "Mamba2": frozenset(_SSM_COMMON | {
        "conv_init", "headdim", "d_ssm", "ngroups", "A_init_range", "D_has_hdim", "rmsnorm",
        "norm_before_gate", "dt_limit", "chunk_size", "use_mem_eff_path", "sequence_parallel"}),
}
ATTN_FIELDS = frozenset({
    "num_heads", "num_heads_kv", "head_dim", "mlp_dim", "qkv_proj_bias", "out_proj_bias",
    "softmax_scale", "causal", "d_conv", "rotary_emb_dim", "rotary_emb_base",
    "rotary_emb_interleaved",
})


def detect(pretrained, revision=None, subfolder=""):
    """The mamba_ssm config dict if ``pretrained`` is a native checkpoint, else None."""
    from lc_models.models.checkpoint import read_json

    if Path(str(pretrained)).is_file():
        return None
    config = read_json(str(pretrained), "config.json", revision, subfolder)
    if config is None or "model_type" in config or not {"d_model", "n_layer"} <= set(config):
        return None
    return config


def _unknown(fields, known, where: str) -> None:
    extra = sorted(set(fields) - known)
    if extra:
        raise UsageError(f"unknown {where} field {extra[0]!r} in this mamba_ssm config (known: "
                         f"{', '.join(sorted(known))})")


def validate(cfg: dict) -> None:
    """Refuse, with the field's name, anything this loader does not understand or compute."""
    _unknown(cfg, CONFIG_FIELDS, "top-level")
    ssm = dict(cfg.get("ssm_cfg") or {})
    layer = ssm.get("layer", "Mamba1")
    if layer not in SSM_FIELDS:
        raise UsageError(f"mamba_ssm layer {layer!r} in ssm_cfg is not supported; lc_hf runs "
                         "Mamba1 and Mamba2")
    _unknown(ssm, SSM_FIELDS[layer], "ssm_cfg")
    unsupported = {
        "rms_norm=false (LayerNorm blocks)": not cfg.get("rms_norm", True),
        "D_has_hdim=true (a per-channel D)": ssm.get("D_has_hdim"),
        "rmsnorm=false (no gated norm)": not ssm.get("rmsnorm", True),
        "norm_before_gate=true": ssm.get("norm_before_gate"),
        f"a partial SSM (d_ssm={ssm.get('d_ssm')})":
            ssm.get("d_ssm") not in (None, ssm.get("expand", 2) * cfg["d_model"]),
    }
    found = [what for what, bad in unsupported.items() if bad]
    attn_idx = list(cfg.get("attn_layer_idx") or [])
    if attn_idx:
        attn = cfg.get("attn_cfg") or {}
        _unknown(attn, ATTN_FIELDS, "attn_cfg")
        if "num_heads" not in attn:
            found.append("attention without attn_cfg.num_heads")
        if not attn.get("causal", False):
            found.append("non-causal attention (attn_cfg.causal is not true)")
        outside = [i for i in attn_idx if not 0 <= i < cfg["n_layer"]]
        if outside:
            found.append(f"attn_layer_idx {outside} outside 0..{cfg['n_layer'] - 1}")
    if found:
        raise UsageError(f"lc_hf cannot run this mamba_ssm checkpoint: {'; '.join(found)}")


def _vocab(cfg: dict) -> int:
    vocab, multiple = cfg["vocab_size"], cfg.get("pad_vocab_size_multiple", 1)
    return vocab + (-vocab) % multiple  # mamba_ssm pads the embedding to a multiple


def _ssm_kwargs(cfg: dict) -> tuple[str, dict]:
    """(layer, transformers MambaConfig/Mamba2Config kwargs of the SSM mixers)."""
    ssm = dict(cfg.get("ssm_cfg") or {})
    layer = ssm.pop("layer", "Mamba1")
    kwargs = {
        "expand": ssm.get("expand", 2),
        "conv_kernel": ssm.get("d_conv", 4),
        "use_bias": ssm.get("bias", False),
        "use_conv_bias": ssm.get("conv_bias", True),
        "layer_norm_epsilon": NORM_EPS,
    }
    if layer == "Mamba2":
        head_dim = ssm.get("headdim", 64)
        kwargs.update(
            state_size=ssm.get("d_state", 128),
            head_dim=head_dim,
            num_heads=kwargs["expand"] * cfg["d_model"] // head_dim,
            n_groups=ssm.get("ngroups", 1),
            chunk_size=ssm.get("chunk_size", 256),
            time_step_limit=tuple(ssm.get("dt_limit", (0.0, float("inf")))),
        )
    else:
        kwargs.update(state_size=ssm.get("d_state", 16), time_step_rank=ssm.get("dt_rank", "auto"))
    return layer, kwargs


def is_pure(cfg: dict) -> bool:
    """Only SSM mixers (what transformers' Mamba classes express)."""
    return not cfg.get("attn_layer_idx") and not cfg.get("d_intermediate", 0)


def to_hf_config(cfg: dict):
    """The transformers ``MambaConfig``/``Mamba2Config`` of a pure-SSM mamba_ssm config."""
    from transformers import Mamba2Config, MambaConfig

    validate(cfg)
    if not is_pure(cfg):
        raise UsageError("only pure SSM stacks convert to transformers' Mamba classes")
    layer, kwargs = _ssm_kwargs(cfg)
    cls = Mamba2Config if layer == "Mamba2" else MambaConfig
    return cls(
        vocab_size=_vocab(cfg),
        hidden_size=cfg["d_model"],
        num_hidden_layers=cfg["n_layer"],
        residual_in_fp32=cfg.get("residual_in_fp32", True),
        tie_word_embeddings=cfg.get("tie_embeddings", True),
        # gpt-neox-20b tokenizer: <|endoftext|> is id 0
        pad_token_id=0, bos_token_id=0, eos_token_id=0,
        **kwargs,
    )


def mixer_config(cfg: dict) -> MixerConfig:
    """Our MixerLM's config for a mamba_ssm config with attention or MLP layers."""
    validate(cfg)
    layer, kwargs = _ssm_kwargs(cfg)
    attn_idx = tuple(cfg.get("attn_layer_idx") or ())
    attn = None
    if attn_idx:
        a = dict(cfg["attn_cfg"])
        a.pop("causal")
        heads = a.pop("num_heads")
        attn = AttnConfig(
            num_heads=heads,
            head_dim=a.pop("head_dim", None) or cfg["d_model"] // heads,
            mlp_dim=math.ceil(a.pop("mlp_dim", 0) / 256) * 256,
            **a,
        )
    hidden = cfg.get("d_intermediate", 0)
    return MixerConfig(
        d_model=cfg["d_model"],
        n_layer=cfg["n_layer"],
        vocab_size=_vocab(cfg),
        attn_layer_idx=attn_idx,
        attn=attn,
        d_intermediate=(hidden + 127) // 128 * 128,  # GatedMLP rounds up to a multiple of 128
        ssm_layer=layer,
        ssm_hf=kwargs,
        residual_in_fp32=cfg.get("residual_in_fp32", True),
        tie_embeddings=cfg.get("tie_embeddings", True),
    )


def open_checkpoint(pretrained, revision=None, subfolder=""):
    """(config, state dict) of a native mamba_ssm checkpoint, or None if it is not one.

    The config is a transformers one for pure SSM stacks, else a ``MixerConfig``.
    """
    from lc_models.models.checkpoint import load_weights

    cfg = detect(pretrained, revision, subfolder)
    if cfg is None:
        return None
    config = to_hf_config(cfg) if is_pure(cfg) else mixer_config(cfg)
    state = load_weights(str(pretrained), revision, subfolder)
    if cfg.get("tie_embeddings", True):  # saved beside the embedding it is tied to
        state.pop("lm_head.weight", None)
    return config, state


def hf_config(config):
    return config.to_hf() if isinstance(config, MixerConfig) else config


def build(config, state: dict, source: str, dtype=None, device="cpu"):
    """The model for ``config`` with the checkpoint's weights (``dtype`` None: as saved)."""
    from transformers import AutoModelForCausalLM

    from lc_models.models.checkpoint import assign

    with torch.device("meta"):  # no random init: every weight comes from the checkpoint
        if isinstance(config, MixerConfig):
            model = MixerLM(config)
        else:
            model = AutoModelForCausalLM.from_config(config)
            state = {k.replace("backbone.embedding.", "backbone.embeddings."): v
                     for k, v in state.items()}
    assign(model, state, f"native mamba_ssm checkpoint {source}")
    empty = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if empty:
        raise UsageError(f"native checkpoint {source} left {empty[:5]} unset")
    dtype = dtype or model.get_input_embeddings().weight.dtype
    return model.to(device=device, dtype=dtype).eval()
