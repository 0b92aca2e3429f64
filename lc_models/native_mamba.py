"""Native mamba_ssm checkpoints (``state-spaces/mamba-*``, ``state-spaces/mamba2-*``).

These repositories hold a mamba_ssm ``config.json`` (``d_model``, ``n_layer``,
``ssm_cfg``, ...) and a ``pytorch_model.bin`` with ``backbone.*`` keys, and no
tokenizer. lc_hf converts them on load into transformers' ``MambaForCausalLM``
or ``Mamba2ForCausalLM`` (same weight layout; only the embedding key differs),
so they run through the same exact chunked prefill as every other model.

Hybrids that transformers cannot express (``mamba2attn``: attention layers;
``transformerpp``: attention and MLP blocks) are refused with a message naming
what is missing.

>>> cfg = {"d_model": 64, "n_layer": 2, "vocab_size": 100, "ssm_cfg": {"layer": "Mamba2"},
...        "pad_vocab_size_multiple": 16}
>>> to_hf_config(cfg).model_type, to_hf_config(cfg).vocab_size
('mamba2', 112)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

# lm-eval's mamba_ssm wrapper uses this tokenizer for these checkpoints too.
DEFAULT_TOKENIZER = "EleutherAI/gpt-neox-20b"
WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors")


def _fetch(pretrained: str, filename: str, revision: str | None, subfolder: str) -> str | None:
    """Local path of ``filename`` in a checkpoint folder or hub repository, or None."""
    local = Path(pretrained, subfolder or "", filename)
    if Path(pretrained).is_dir():
        return str(local) if local.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(pretrained, filename, revision=revision, subfolder=subfolder or None)
    except (OSError, ValueError):  # not a hub repo, no such file, offline: not native
        return None


def read_native_config(pretrained, revision: str | None = None, subfolder: str = ""):
    """The mamba_ssm config dict if ``pretrained`` is a native checkpoint, else None."""
    if not isinstance(pretrained, (str, os.PathLike)):
        return None
    path = _fetch(str(pretrained), "config.json", revision, subfolder)
    if path is None:
        return None
    config = json.loads(Path(path).read_text())
    if "model_type" in config or "d_model" not in config or "n_layer" not in config:
        return None
    return config


def _refuse_unsupported(cfg: dict) -> None:
    missing = []
    if cfg.get("attn_layer_idx"):
        missing.append(f"attention layers (attn_layer_idx={cfg['attn_layer_idx']})")
    if cfg.get("d_intermediate", 0):
        missing.append(f"MLP blocks (d_intermediate={cfg['d_intermediate']})")
    if not cfg.get("rms_norm", True):
        missing.append("LayerNorm blocks (rms_norm=false)")
    ssm = cfg.get("ssm_cfg") or {}
    if ssm.get("D_has_hdim"):
        missing.append("a per-channel D (D_has_hdim=true)")
    if ssm.get("norm_before_gate"):
        missing.append("norm_before_gate=true")
    if ssm.get("d_ssm") not in (None, ssm.get("expand", 2) * cfg["d_model"]):
        missing.append(f"a partial SSM (d_ssm={ssm['d_ssm']})")
    if missing:
        raise ValueError(
            "lc_hf cannot load this native mamba_ssm checkpoint: transformers' Mamba classes "
            f"have no {' or '.join(missing)} (mamba2attn / transformerpp style hybrids). "
            "Only pure Mamba and Mamba2 checkpoints convert."
        )


def to_hf_config(cfg: dict):
    """The transformers ``MambaConfig``/``Mamba2Config`` equivalent of a mamba_ssm config."""
    from transformers import Mamba2Config, MambaConfig

    _refuse_unsupported(cfg)
    ssm = dict(cfg.get("ssm_cfg") or {})
    layer = ssm.pop("layer", "Mamba1")
    vocab = cfg["vocab_size"]
    multiple = cfg.get("pad_vocab_size_multiple", 1)
    vocab += (-vocab) % multiple  # mamba_ssm pads the embedding to a multiple
    common = {
        "vocab_size": vocab,
        "hidden_size": cfg["d_model"],
        "num_hidden_layers": cfg["n_layer"],
        "layer_norm_epsilon": cfg.get("norm_epsilon", 1e-5),
        "residual_in_fp32": cfg.get("residual_in_fp32", True),
        "tie_word_embeddings": cfg.get("tie_embeddings", True),
        "expand": ssm.get("expand", 2),
        "conv_kernel": ssm.get("d_conv", 4),
        "use_bias": ssm.get("bias", False),
        "use_conv_bias": ssm.get("conv_bias", True),
        # gpt-neox-20b tokenizer: <|endoftext|> is id 0
        "pad_token_id": 0,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    if layer == "Mamba2":
        head_dim = ssm.get("headdim", 64)
        return Mamba2Config(
            **common,
            state_size=ssm.get("d_state", 128),
            head_dim=head_dim,
            num_heads=common["expand"] * cfg["d_model"] // head_dim,
            n_groups=ssm.get("ngroups", 1),
            chunk_size=ssm.get("chunk_size", 256),
            time_step_limit=tuple(ssm.get("dt_limit", (0.0, float("inf")))),
        )
    if layer != "Mamba1":
        raise ValueError(f"unknown mamba_ssm layer {layer!r} in ssm_cfg; expected Mamba1 or Mamba2")
    return MambaConfig(
        **common,
        state_size=ssm.get("d_state", 16),
        time_step_rank=ssm.get("dt_rank", "auto"),
    )


def _load_state_dict(pretrained: str, revision: str | None, subfolder: str) -> dict:
    for name in WEIGHT_FILES:
        path = _fetch(pretrained, name, revision, subfolder)
        if path is None:
            continue
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no {' or '.join(WEIGHT_FILES)} in native checkpoint {pretrained}")


def load_model(
    pretrained: str,
    config,
    revision: str | None = None,
    subfolder: str = "",
    dtype: torch.dtype | str | None = "auto",
    device: str | torch.device = "cpu",
):
    """Build the transformers model for ``config`` and load the native weights into it.

    ``dtype="auto"`` keeps the dtype the checkpoint was saved in.
    """
    from transformers import AutoModelForCausalLM

    state = _load_state_dict(str(pretrained), revision, subfolder)
    state = {k.replace("backbone.embedding.", "backbone.embeddings."): v for k, v in state.items()}
    if dtype in (None, "auto"):
        dtype = next(v.dtype for k, v in state.items() if k.endswith("embeddings.weight"))
    with torch.device("meta"):  # no random init: every weight comes from the checkpoint
        model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if config.tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise ValueError(
            f"native checkpoint {pretrained} does not match a {type(model).__name__}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    empty = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if empty:
        raise ValueError(f"native checkpoint {pretrained} left {empty[:5]} unset")
    return model.to(device=device, dtype=dtype).eval()
