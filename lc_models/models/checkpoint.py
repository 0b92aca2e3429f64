"""Reading checkpoints of the model families lc-eval implements itself: files, weights, keys.

Shared by the family loaders (``mamba_ssm``, ``rwkv6``): find a file in a local folder or a hub
repository, read a state dict (``pytorch_model.bin``, ``model.safetensors``, sharded ones with
their index, or a ``.pth``), and assign it to a module strictly, so that a missing key, an
unexpected key or a wrong shape is one clear error that names it.

>>> import torch
>>> model = torch.nn.Linear(2, 3, bias=False)
>>> assign(model, {"weight": torch.ones(3, 2), "bias": torch.ones(3)}, "ckpt")
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: ckpt: unexpected key 'bias' (keys this model does not have: bias)
>>> check_floating({"weight": torch.ones(3, 2, dtype=torch.int8)}, "m.pth")
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: m.pth: weight 'weight' holds int8 values, not floating point; ...
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from lc_tasks.errors import UsageError

# Weight files, in the order they are looked for; ``*.index.json`` lists the shards.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def shard_names(index: str | Path) -> list[str]:
    """The shard files a ``*.index.json`` lists, sorted, each once."""
    return sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))


def fetch(pretrained: str, filename: str, revision: str | None = None,
          subfolder: str = "") -> str | None:
    """Local path of ``filename`` in a checkpoint folder or hub repository, or None."""
    if Path(pretrained).is_dir():
        local = Path(pretrained, subfolder or "", filename)
        return str(local) if local.is_file() else None
    if Path(pretrained).exists():  # a file is not a repository
        return None
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(pretrained, filename, revision=revision, subfolder=subfolder or None)
    except Exception:  # noqa: BLE001  not a repo id, no such file, offline: not found
        return None


def read_json(pretrained: str, filename: str, revision: str | None = None,
              subfolder: str = "") -> dict | None:
    """A JSON file of the checkpoint as a dict, or None when it has none."""
    path = fetch(pretrained, filename, revision, subfolder)
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is not a readable JSON file: {err}") from err
    return data if isinstance(data, dict) else None


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """The tensors of one weights file (``.safetensors``, or a torch ``.bin``/``.pth``).

    A torch file is read with ``weights_only=True``: one that pickles Python objects (a whole
    model, a training state, a plain ``pickle.dump``) is refused in one line naming the
    checkpoint and what was expected, since unpickling it could run code."""
    import pickle

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        with open(path, "rb") as f:
            pickled = f.read(1) == b"\x80"  # a pickle's PROTO opcode; torch.save writes a zip
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if not found and not pickled:
            raise UsageError(f"{path} is not a weights file (torch cannot read it: "
                             f"{str(err).splitlines()[0][:120]}); expected a .safetensors file or "
                             "a torch.save'd state dict") from err
        what = (f"an object of class {found.group(1)}" if found
                else "a plain pickle, not torch.save's format")
        raise UsageError(f"{path} is not a weights-only state dict: it holds {what}, which "
                         "lc-eval does not unpickle (that could run code); expected a dict of "
                         "tensors, as torch.save(model.state_dict(), path) writes, or a "
                         ".safetensors file") from err
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise UsageError(f"cannot read weights file {path} ({type(err).__name__}: {reason}); "
                         "expected a .safetensors file or a torch.save'd state dict") from err
    if not isinstance(state, dict):
        raise UsageError(f"{path} holds no state dict of tensors but a {type(state).__name__}; "
                         "expected a dict of tensors, as torch.save(model.state_dict(), path) "
                         "writes")
    other = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if other is not None:
        raise UsageError(f"{path} holds no state dict of tensors: its entry {other!r} holds a "
                         f"{type(state[other]).__name__}; expected only tensors, as "
                         "torch.save(model.state_dict(), path) writes")
    return check_floating(state, path)


def check_floating(state: dict[str, torch.Tensor], path: str) -> dict[str, torch.Tensor]:
    """``state``, unless a tensor of it is not floating point (integer or boolean weights are
    a quantized or corrupt file, which the model's layers cannot take): one line naming it."""
    other = next((k for k, v in state.items() if not v.is_floating_point()), None)
    if other is not None:
        raise UsageError(f"{path}: weight {other!r} holds {str(state[other].dtype)[6:]} values, "
                         "not floating point; lc-eval reads float32, float16 or bfloat16 "
                         "weights (dequantize the checkpoint first)")
    return state


def load_weights(pretrained: str, revision: str | None = None,
                 subfolder: str = "") -> dict[str, torch.Tensor]:
    """The full state dict of a checkpoint folder or hub repository (shards merged)."""
    for name in WEIGHT_FILES:
        path = fetch(pretrained, name, revision, subfolder)
        if path is None:
            continue
        if not name.endswith(".index.json"):
            return read_weights(path)
        state: dict[str, torch.Tensor] = {}
        for shard in shard_names(path):
            shard_path = fetch(pretrained, shard, revision, subfolder)
            if shard_path is None:
                raise UsageError(f"{pretrained}: shard {shard} listed in {name} is missing")
            state.update(read_weights(shard_path))
        return state
    raise UsageError(f"{pretrained} holds no weights: expected one of {', '.join(WEIGHT_FILES)}")


def assign(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Put ``state`` into ``model``'s parameters: every key present, none unknown.

    A tensor may differ in shape only by dimensions of size 1 (checkpoints store some vectors
    as (1, 1, C)); it is reshaped. The model may live on the meta device: its parameters are
    replaced by the checkpoint's tensors, in their dtype (cast the model afterwards).
    """
    own = dict(model.named_parameters())
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise UsageError(f"{source}: unexpected key {unexpected[0]!r} (keys this model does not "
                         f"have: {', '.join(unexpected[:5])})")
    missing = sorted(set(own) - set(state))
    if missing:
        raise UsageError(f"{source}: missing key {missing[0]!r} (absent: {', '.join(missing[:5])})")
    fixed = {}
    for name, param in own.items():
        value = state[name]
        if tuple(value.shape) != tuple(param.shape):
            if [d for d in value.shape if d != 1] != [d for d in param.shape if d != 1]:
                raise UsageError(f"{source}: {name} has shape {tuple(value.shape)}, expected "
                                 f"{tuple(param.shape)}")
            value = value.reshape(param.shape)
        fixed[name] = value
    # tied parameters (e.g. a head tied to the embedding) are listed once above; fill the aliases
    canonical = {id(p): n for n, p in own.items()}
    for name, param in model.named_parameters(remove_duplicate=False):
        fixed.setdefault(name, fixed[canonical[id(param)]])
    model.load_state_dict(fixed, strict=True, assign=True)
    if hasattr(model, "tie_weights"):
        model.tie_weights()
