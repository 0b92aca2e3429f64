"""Tiny random checkpoints in the native formats lc-eval reads itself (no hub, no transformers class).

* ``save_mamba_ssm(path, config)``: mamba_ssm's ``config.json`` + ``pytorch_model.bin``, every
  key and shape written from mamba_ssm's module definitions (``mamba_ssm_shapes``), not from
  our implementation, so that a wrong key or shape in our loader shows up;
* ``save_rwkv6(path, fmt="pth" | "hf")``: BlinkDL's native ``.pth`` (``blocks.N.att.*``) or the HF
  format (``rwkv.blocks.N.attention.*`` + config.json), the same weights for the same seed;
* ``save_rwkv7(path, fmt="pth" | "hf")``: the same for RWKV-7 (x070), the HF format being fla's
  (``model.layers.N.attn.*``, its low-rank projections as ``*_lora.lora.{0,2}``).

``MAMBA_SSM_CONFIGS`` holds tiny configs shaped like the paper's checkpoints.

>>> shapes = mamba_ssm_shapes(MAMBA_SSM_CONFIGS["mamba2attn"])
>>> shapes["backbone.layers.1.mixer.conv1d.weight"], shapes["backbone.embedding.weight"]
((144, 1, 4), (112, 32))
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

_BASE = {
    "d_model": 32, "d_intermediate": 0, "n_layer": 2, "vocab_size": 100, "attn_layer_idx": [],
    "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
    "pad_vocab_size_multiple": 16, "tie_embeddings": True,
}
_MAMBA2 = {"layer": "Mamba2", "d_state": 8, "headdim": 8, "ngroups": 1, "chunk_size": 16}

# name -> mamba_ssm config.json (``vocab_size`` is replaced by the tokenizer's size)
MAMBA_SSM_CONFIGS: dict[str, dict] = {
    # pure SSM stacks (converted to transformers' Mamba classes)
    "mamba1": {**_BASE, "ssm_cfg": {"d_state": 8}},
    "mamba2": {**_BASE, "ssm_cfg": {**_MAMBA2, "ngroups": 2}},
    # like state-spaces/mamba2attn-2.7b: Mamba2 layers and one attention layer with a conv over
    # q|k|v, rotary on 4 of 8 head dims, heads * head_dim != d_model, no biases
    "mamba2attn": {**_BASE, "n_layer": 3, "ssm_cfg": _MAMBA2, "attn_layer_idx": [1],
                   "attn_cfg": {"causal": True, "d_conv": 4, "head_dim": 8, "num_heads": 6,
                                "out_proj_bias": False, "qkv_proj_bias": False,
                                "rotary_emb_dim": 4}},
    # a Transformer++ (every layer attention + gated MLP, full rotary, GQA, no biases, untied)
    "transformerpp": {**_BASE, "ssm_cfg": {}, "attn_layer_idx": [0, 1], "d_intermediate": 64,
                      "tie_embeddings": False,
                      "attn_cfg": {"causal": True, "head_dim": 8, "num_heads": 4,
                                   "num_heads_kv": 2, "out_proj_bias": False,
                                   "qkv_proj_bias": False, "rotary_emb_dim": 8}},
    # every field set: Mamba1 layer, MLP in every block, attention with an MLP part, biases,
    # interleaved partial rotary with its own base, a softmax scale, GQA, bf16-style residual
    "every_field": {**_BASE, "n_layer": 3, "ssm_cfg": {"d_state": 4}, "attn_layer_idx": [1, 2],
                    "d_intermediate": 40, "residual_in_fp32": False,
                    "attn_cfg": {"causal": True, "d_conv": 3, "head_dim": 8, "num_heads": 4,
                                 "num_heads_kv": 2, "mlp_dim": 100, "qkv_proj_bias": True,
                                 "out_proj_bias": True, "softmax_scale": 0.2,
                                 "rotary_emb_dim": 6, "rotary_emb_base": 500.0,
                                 "rotary_emb_interleaved": True}},
}


def _padded_vocab(cfg: dict) -> int:
    vocab, multiple = cfg["vocab_size"], cfg.get("pad_vocab_size_multiple", 1)
    return vocab + (-vocab) % multiple


def mamba_ssm_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Every key of a mamba_ssm ``MambaLMHeadModel`` state dict and its shape, from the config."""
    d = cfg["d_model"]
    shapes = {"backbone.embedding.weight": (_padded_vocab(cfg), d), "backbone.norm_f.weight": (d,)}
    ssm = dict(cfg.get("ssm_cfg") or {})
    for i in range(cfg["n_layer"]):
        p = f"backbone.layers.{i}."
        shapes[p + "norm.weight"] = (d,)
        if i in (cfg.get("attn_layer_idx") or []):
            shapes.update(_mha_shapes(p + "mixer.", d, cfg["attn_cfg"]))
        elif ssm.get("layer") == "Mamba2":
            shapes.update(_mamba2_shapes(p + "mixer.", d, ssm))
        else:
            shapes.update(_mamba1_shapes(p + "mixer.", d, ssm))
        if cfg.get("d_intermediate"):
            hidden = (cfg["d_intermediate"] + 127) // 128 * 128
            shapes.update({p + "norm2.weight": (d,), p + "mlp.fc1.weight": (2 * hidden, d),
                           p + "mlp.fc2.weight": (d, hidden)})
    shapes["lm_head.weight"] = shapes["backbone.embedding.weight"]
    return shapes


def _mha_shapes(p, d, a):
    heads, kv = a["num_heads"], a.get("num_heads_kv") or a["num_heads"]
    head_dim = a.get("head_dim") or d // heads
    qkv, mlp = head_dim * (heads + 2 * kv), math.ceil(a.get("mlp_dim", 0) / 256) * 256
    shapes = {p + "in_proj.weight": (qkv + mlp, d), p + "out_proj.weight": (d, heads * head_dim +
                                                                           mlp // 2)}
    if a.get("qkv_proj_bias", True):
        shapes[p + "in_proj.bias"] = (qkv + mlp,)
    if a.get("out_proj_bias", True):
        shapes[p + "out_proj.bias"] = (d,)
    if a.get("d_conv", 0):
        shapes.update({p + "conv1d.weight": (qkv, 1, a["d_conv"]), p + "conv1d.bias": (qkv,)})
    return shapes


def _mamba2_shapes(p, d, s):
    inner, n, g, K = s.get("expand", 2) * d, s.get("d_state", 128), s.get("ngroups", 1), \
        s.get("d_conv", 4)
    heads, conv = inner // s.get("headdim", 64), inner + 2 * g * n
    return {p + "in_proj.weight": (2 * inner + 2 * g * n + heads, d),
            p + "conv1d.weight": (conv, 1, K), p + "conv1d.bias": (conv,),
            p + "dt_bias": (heads,), p + "A_log": (heads,), p + "D": (heads,),
            p + "norm.weight": (inner,), p + "out_proj.weight": (d, inner)}


def _mamba1_shapes(p, d, s):
    inner, n, K = s.get("expand", 2) * d, s.get("d_state", 16), s.get("d_conv", 4)
    rank = s.get("dt_rank", "auto")
    rank = math.ceil(d / 16) if rank == "auto" else rank
    return {p + "in_proj.weight": (2 * inner, d), p + "conv1d.weight": (inner, 1, K),
            p + "conv1d.bias": (inner,), p + "x_proj.weight": (rank + 2 * n, inner),
            p + "dt_proj.weight": (inner, rank), p + "dt_proj.bias": (inner,),
            p + "A_log": (inner, n), p + "D": (inner,), p + "out_proj.weight": (d, inner)}


def _random(shapes: dict, seed: int) -> dict[str, torch.Tensor]:
    """Random weights of a usable scale: norms near 1, decays positive, dt biases negative."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        fan_in = shape[-1] if len(shape) > 1 else 1
        value = torch.randn(shape, generator=generator) / math.sqrt(max(fan_in, 4)) * 1.5
        if key.endswith("A_log"):
            value = value.abs().log1p()
        elif key.endswith(("dt_bias", "dt_proj.bias")):
            value = value - 2.0
        elif key.endswith(("norm.weight", "norm2.weight")) or "norm_f" in key:
            value = 1 + value / 4
        state[key] = value
    return state


def save_mamba_ssm(path, config: dict, vocab_size: int | None = None, seed: int = 0) -> dict:
    """Write a random mamba_ssm checkpoint to ``path``; returns its state dict (as saved)."""
    path = Path(path)
    config = {**config, **({"vocab_size": vocab_size} if vocab_size else {})}
    state = _random(mamba_ssm_shapes(config), seed)
    if config.get("tie_embeddings", True):  # mamba_ssm saves the tied head beside the embedding
        state["lm_head.weight"] = state["backbone.embedding.weight"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=1))
    torch.save(state, path / "pytorch_model.bin")
    return state


# ------------------------------------------------------------------------------- RWKV-6
def rwkv6_shapes(n_embd=32, n_layer=2, head_size=8, vocab_size=65536, dim_ffn=None,
                 mix_lora=8, decay_lora=16) -> dict[str, tuple[int, ...]]:
    """Every key of a native RWKV-6 (x060) ``.pth`` and its shape, as BlinkDL's x060 saves it."""
    C, F = n_embd, dim_ffn or int(3.5 * n_embd) // 32 * 32
    shapes = {"emb.weight": (vocab_size, C), "blocks.0.ln0.weight": (C,),
              "blocks.0.ln0.bias": (C,)}
    for i in range(n_layer):
        b, a, f = f"blocks.{i}.", f"blocks.{i}.att.", f"blocks.{i}.ffn."
        for ln in ("ln1", "ln2"):
            shapes.update({b + ln + ".weight": (C,), b + ln + ".bias": (C,)})
        shapes.update({a + f"time_maa_{x}": (1, 1, C) for x in "xwkvrg"})
        shapes.update({
            a + "time_maa_w1": (C, 5 * mix_lora), a + "time_maa_w2": (5, mix_lora, C),
            a + "time_decay": (1, 1, C), a + "time_decay_w1": (C, decay_lora),
            a + "time_decay_w2": (decay_lora, C), a + "time_faaaa": (C // head_size, head_size),
            a + "ln_x.weight": (C,), a + "ln_x.bias": (C,), a + "output.weight": (C, C),
            f + "time_maa_k": (1, 1, C), f + "time_maa_r": (1, 1, C),
            f + "key.weight": (F, C), f + "receptance.weight": (C, C), f + "value.weight": (C, F),
        })
        shapes.update({a + f"{x}.weight": (C, C) for x in ("receptance", "key", "value", "gate")})
    shapes.update({"ln_out.weight": (C,), "ln_out.bias": (C,), "head.weight": (vocab_size, C)})
    return shapes


def rwkv6_state(seed: int = 0, **shape_args) -> dict[str, torch.Tensor]:
    """Random native-named RWKV-6 weights: mixing factors in [0, 1], varied decays."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in rwkv6_shapes(**shape_args).items():
        if "time_maa_" in key and not key.endswith(("w1", "w2")):
            state[key] = torch.rand(shape, generator=generator)
        elif key.endswith("time_decay"):  # per-token decay exp(-exp(.)) from ~0.99 to ~0.001
            state[key] = torch.rand(shape, generator=generator) * 6 - 4
        elif key.endswith(("ln0.weight", "ln1.weight", "ln2.weight", "ln_x.weight",
                           "ln_out.weight")):
            state[key] = 1 + 0.2 * torch.randn(shape, generator=generator)
        else:
            fan_in = shape[-1] if len(shape) > 1 else 4
            state[key] = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
    state["emb.weight"] = state["emb.weight"] * math.sqrt(shape_args.get("n_embd", 32))
    return state


def hf_key(key: str) -> str:
    """The HF-format name of a native RWKV-6 key (BBuf's conversion: renames only)."""
    if key == "head.weight":
        return key
    key = key.replace(".ln0.", ".pre_ln.").replace(".att.", ".attention.")
    key = key.replace(".ffn.", ".feed_forward.")
    return "rwkv." + ("embeddings." + key[4:] if key.startswith("emb.") else key)


def save_rwkv6(path, fmt: str = "pth", seed: int = 0, **shape_args) -> Path:
    """Write random RWKV-6 weights as a native ``.pth`` (``path`` is the file) or in the HF
    format (``path`` is a folder: config.json, pytorch_model.bin, the remote tokenizer's
    tokenizer_config.json). Returns the path to pass as ``pretrained``."""
    state = rwkv6_state(seed, **shape_args)
    path = Path(path)
    if fmt == "pth":
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        return path
    if fmt != "hf":
        raise ValueError(f"unknown RWKV-6 format {fmt!r}; choose pth or hf")
    renamed = {hf_key(key): value for key, value in state.items()}
    C = state["emb.weight"].shape[1]
    config = {
        "architectures": ["Rwkv6ForCausalLM"], "model_type": "rwkv6",
        "auto_map": {"AutoConfig": "configuration_rwkv6.Rwkv6Config",
                     "AutoModelForCausalLM": "modeling_rwkv6.Rwkv6ForCausalLM"},
        "attention_hidden_size": C, "head_size": state["blocks.0.att.time_faaaa"].shape[1],
        "head_size_divisor": 8, "hidden_size": C, "intermediate_size": None,
        "layer_norm_epsilon": 1e-5, "num_hidden_layers": 1 + max(
            int(k.split(".")[1]) for k in state if k.startswith("blocks.")),
        "rescale_every": 6, "tie_word_embeddings": False, "context_length": 4096,
        "vocab_size": state["emb.weight"].shape[0], "bos_token_id": 0, "eos_token_id": 0,
        "use_cache": True, "transformers_version": "4.34.0",
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=1))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Rwkv5Tokenizer", "use_fast": False,
        "auto_map": {"AutoTokenizer": ["tokenization_rwkv5.Rwkv5Tokenizer", None]}}))
    torch.save(renamed, path / "pytorch_model.bin")
    return path


# ------------------------------------------------------------------------------- RWKV-7
def rwkv7_shapes(n_embd=32, n_layer=2, head_size=8, vocab_size=65536, dim_ffn=None,
                 decay_lora=8, iclr_lora=8, value_lora=4, gate_lora=16,
                 deep_embed=0) -> dict[str, tuple]:
    """Every key of a native RWKV-7 (x070) ``.pth`` and its shape, as ``rwkv`` 0.8.32's
    ``RWKV_x070`` reads it (layer 0 carries an unused v0/v1/v2, as BlinkDL's trainer saves);
    ``deep_embed=d`` adds DeepEmbed's ``ffn.s_emb``/``s_emb_x``/``s0``/``s1``/``s2``
    (``RWKV_DE_VERSION=1``, where d is 32)."""
    C, F = n_embd, dim_ffn or 4 * n_embd
    ranks = {"w": decay_lora, "a": iclr_lora, "v": value_lora}
    shapes = {"emb.weight": (vocab_size, C), "blocks.0.ln0.weight": (C,),
              "blocks.0.ln0.bias": (C,)}
    for i in range(n_layer):
        b, a, f = f"blocks.{i}.", f"blocks.{i}.att.", f"blocks.{i}.ffn."
        for ln in ("ln1", "ln2"):
            shapes.update({b + ln + ".weight": (C,), b + ln + ".bias": (C,)})
        shapes.update({a + f"x_{x}": (1, 1, C) for x in "rwkvag"})
        for x, rank in ranks.items():
            shapes.update({a + f"{x}0": (1, 1, C), a + f"{x}1": (C, rank),
                           a + f"{x}2": (rank, C)})
        shapes.update({
            a + "g1": (C, gate_lora), a + "g2": (gate_lora, C), a + "k_k": (1, 1, C),
            a + "k_a": (1, 1, C), a + "r_k": (C // head_size, head_size),
            a + "ln_x.weight": (C,), a + "ln_x.bias": (C,),
            f + "x_k": (1, 1, C), f + "key.weight": (F, C), f + "value.weight": (C, F),
        })
        if deep_embed:
            d2 = deep_embed * deep_embed
            shapes.update({f + "s_emb.weight": (vocab_size, d2), f + "s_emb_x.weight": (d2, C),
                           f + "s0": (F,), f + "s1": (C, deep_embed), f + "s2": (deep_embed, F)})
        shapes.update({a + f"{x}.weight": (C, C) for x in ("receptance", "key", "value",
                                                           "output")})
    shapes.update({"ln_out.weight": (C,), "ln_out.bias": (C,), "head.weight": (vocab_size, C)})
    return shapes


def rwkv7_state(seed: int = 0, **shape_args) -> dict[str, torch.Tensor]:
    """Random native-named RWKV-7 weights: mixing factors in [0, 1], decays from ~0.55 to ~1,
    learning rates and value residual gates spread over (0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in rwkv7_shapes(**shape_args).items():
        name = key.rsplit(".", 1)[-1]
        if name.startswith("x_"):
            state[key] = torch.rand(shape, generator=generator)
        elif name in ("w0", "a0", "v0"):  # sigmoid arguments: spread over (-4, 4)
            state[key] = torch.rand(shape, generator=generator) * 8 - 4
        elif name in ("k_k", "k_a"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        elif name == "s0" or key.endswith(("ln0.weight", "ln1.weight", "ln2.weight",
                                           "ln_x.weight", "ln_out.weight")):  # scales near 1
            state[key] = 1 + 0.2 * torch.randn(shape, generator=generator)
        else:
            fan_in = shape[0] if name[-1:] in "12" else shape[-1] if len(shape) > 1 else 4
            state[key] = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
    state["emb.weight"] = state["emb.weight"] * math.sqrt(shape_args.get("n_embd", 32))
    return state


def fla_key(key: str) -> tuple[str, bool]:
    """fla's name of a native RWKV-7 key (``utils/convert_from_rwkv7.py``), and whether the
    tensor is transposed there (the low-rank matrices become Linear weights)."""
    top = {"emb.weight": "model.embeddings.weight", "ln_out.weight": "model.norm.weight",
           "ln_out.bias": "model.norm.bias", "head.weight": "lm_head.weight"}
    if key in top:
        return top[key], False
    _, layer, part, name, *rest = key.split(".")
    part = {"att": "attn", "ffn": "ffn", "ln0": "pre_norm", "ln1": "attn_norm",
            "ln2": "ffn_norm"}[part]
    transposed = False
    if part == "attn" and len(name) == 2 and name[0] in "wavg" and name[1] in "012":
        name = f"{name[0]}_lora.lora." + {"0": "2.bias", "1": "0.weight", "2": "2.weight"}[name[1]]
        transposed = not name.endswith("bias")
    elif part == "attn":
        name = {"receptance": "r_proj", "key": "k_proj", "value": "v_proj", "output": "o_proj",
                "ln_x": "g_norm"}.get(name, name)
    return ".".join(["model.layers", layer, part, name, *rest]), transposed


def save_rwkv7(path, fmt: str = "pth", seed: int = 0, **shape_args) -> Path:
    """Write random RWKV-7 weights as a native ``.pth`` (``path`` is the file) or in fla's HF
    format (``path`` is a folder: config.json as fla-hub ships it, model.safetensors).
    Returns the path to pass as ``pretrained``."""
    state = rwkv7_state(seed, **shape_args)
    path = Path(path)
    if fmt == "pth":
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        return path
    if fmt != "hf":
        raise ValueError(f"unknown RWKV-7 format {fmt!r}; choose pth or hf")
    from safetensors.torch import save_file

    renamed = {}
    for key, value in state.items():
        if key in ("blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2"):  # fla: no v_lora
            continue
        name, transposed = fla_key(key)
        value = value.t() if transposed else value
        renamed[name] = value.squeeze() if value.dim() == 3 and "attn.x_" not in name else value
    C, L = state["emb.weight"].shape[1], 1 + max(int(k.split(".")[1]) for k in state
                                                  if k.startswith("blocks."))
    head_size = state["blocks.0.att.r_k"].shape[1]
    config = {
        "architectures": ["RWKV7ForCausalLM"], "model_type": "rwkv7",
        "auto_map": {"AutoConfig": "modeling_rwkv7.RWKV7Config",
                     "AutoModel": "modeling_rwkv7.RWKV7Model",
                     "AutoModelForCausalLM": "modeling_rwkv7.RWKV7ForCausalLM"},
        "a_low_rank_dim": state["blocks.0.att.a1"].shape[1], "attn": None,
        "attn_mode": "chunk", "bos_token_id": 0, "eos_token_id": 0,
        "decay_low_rank_dim": state["blocks.0.att.w1"].shape[1], "fuse_cross_entropy": True,
        "fuse_norm": False, "gate_low_rank_dim": state["blocks.0.att.g1"].shape[1],
        "head_dim": head_size, "hidden_act": "sqrelu", "hidden_ratio": 4.0, "hidden_size": C,
        "initializer_range": 0.006, "intermediate_size": state["blocks.0.ffn.key.weight"].shape[0],
        "max_position_embeddings": 2048, "norm_bias": True, "norm_eps": 1e-5,
        "norm_first": True, "num_heads": None, "num_hidden_layers": L,
        "tie_word_embeddings": False, "torch_dtype": "float32",
        "transformers_version": "4.48.0", "use_cache": True,
        "v_low_rank_dim": state["blocks.0.att.v1"].shape[1], "value_dim": [C] * L,
        "vocab_size": state["emb.weight"].shape[0],
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=1))
    save_file({k: v.contiguous() for k, v in renamed.items()}, path / "model.safetensors")
    return path
