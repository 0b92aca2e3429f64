"""Checks lc_hf makes once a model and its tokenizer are loaded, before any request runs.

* ``check_vocabulary``: every id the tokenizer can produce has a row in the model's input
  embedding. A checkpoint paired with another model's tokenizer (``tokenizer=`` pointing
  elsewhere, a native checkpoint given the wrong vocabulary) otherwise runs until the first
  text that yields an id past the embedding, and dies mid-generation with ``IndexError: index
  out of range in self``. More rows than ids (padded vocabularies) is fine.
* ``check_weight_dtypes``: a transformers checkpoint stores its weights as floating point.
  transformers copies integer weights (a quantized file without its quantization config)
  into float parameters without a word, and the model computes garbage. (lc-eval's own
  families check their files as they read them: ``lc_models.models.checkpoint``.)

>>> from lc_models.zoo.tiny import build_tokenizer
>>> largest_id(build_tokenizer("char"))
103
"""

from __future__ import annotations

from pathlib import Path

import torch

from lc_models.models.checkpoint import shard_names
from lc_tasks.errors import UsageError


def largest_id(tokenizer) -> int:
    """The largest token id ``tokenizer`` can produce (its vocabulary and added tokens)."""
    vocab = tokenizer.get_vocab()
    return max(max(vocab.values(), default=-1), len(tokenizer) - 1)


def check_vocabulary(tokenizer, model: torch.nn.Module, pretrained, tokenizer_name) -> None:
    """Raise UsageError unless every id of ``tokenizer`` indexes a row of ``model``'s input
    embedding. ``pretrained`` and ``tokenizer_name`` name them in the message."""
    try:
        rows = model.get_input_embeddings().weight.shape[0]
    except (NotImplementedError, AttributeError):  # no token embedding to index
        return
    largest = largest_id(tokenizer)
    if largest >= rows:
        which = f"tokenizer={tokenizer_name!r}" if tokenizer_name else "its tokenizer"
        raise UsageError(
            f"pretrained={str(pretrained)!r}: {which} has token ids up to {largest}, but the "
            f"model's input embedding has {rows} rows (ids 0-{rows - 1}), so text would reach "
            "ids the model does not have; pass the tokenizer the checkpoint was trained with")


# safetensors' names of the floating-point dtypes ("F": a torch file's floating tensor)
_FLOAT = {"F", "F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4"}


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a checkpoint folder, as transformers picks them: ``.safetensors``
    (the shards its index lists), else torch ``.bin``."""
    for stem, suffix in (("model", ".safetensors"), ("pytorch_model", ".bin")):
        index = folder / f"{stem}{suffix}.index.json"
        if index.is_file():
            return [folder / s for s in shard_names(index) if (folder / s).is_file()]
        if (folder / f"{stem}{suffix}").is_file():
            return [folder / f"{stem}{suffix}"]
    return []


def _dtypes(path: Path) -> dict[str, str]:
    """key -> dtype of every tensor in a weights file, without reading the tensors (the
    safetensors header; a torch zip file mapped, not read); {} for a file that cannot be."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return {key: f.get_slice(key).get_dtype() for key in f.keys()}  # noqa: SIM118
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  an old-format or odd file: transformers' own errors stand
        return {}
    return {key: ("F" if value.is_floating_point() else str(value.dtype)[6:])
            for key, value in state.items() if isinstance(value, torch.Tensor)}


def non_float_weights(files: list[Path], parameters: set[str]) -> list[tuple[Path, str, str]]:
    """``(file, key, dtype)`` of each stored tensor that is a parameter of the model (by name,
    allowing a prefix either side) but not floating point; read from the files' headers."""
    def is_parameter(key: str) -> bool:
        return key in parameters or any(p.endswith("." + key) or key.endswith("." + p)
                                        for p in parameters)

    return [(path, key, dtype) for path in files for key, dtype in _dtypes(path).items()
            if dtype not in _FLOAT and is_parameter(key)]


def check_weight_dtypes(model: torch.nn.Module, pretrained) -> None:
    """Raise UsageError if a local transformers checkpoint (a folder of ``.safetensors`` or
    ``.bin`` files) stores a parameter of ``model`` as integers or booleans, unless its config declares a
    quantization."""
    folder = Path(str(pretrained)).expanduser()
    if not folder.is_dir() or getattr(model.config, "quantization_config", None):
        return
    parameters = {name for name, _ in model.named_parameters()}
    found = non_float_weights(weight_files(folder), parameters)
    if found:
        path, key, dtype = found[0]
        raise UsageError(
            f"pretrained={str(pretrained)!r}: {path.name} stores weight {key!r} as {dtype}, not "
            "floating point, and its config declares no quantization, so the model would "
            "compute with raw integers; pass a float32, float16 or bfloat16 checkpoint (or "
            "its quantization_config)")
