"""Which model a run evaluated: its display name and its training length.

Runs of one checkpoint through one lm-eval model type (``hf``, ``lc_hf``, ``vllm``, an API)
are one model in the report. Its name is the checkpoint's basename
(``/ckpt/mamba2-2.7b`` -> ``mamba2-2.7b``), lengthened only where two models would
otherwise share a name, and the user can rename it.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lc_eval.report.load import Run
from lc_tasks.tokenizer import local_path

# Model types whose ``max_position_embeddings`` is not a training length: recurrent or
# hybrid models (some of them carry the key only for their attention layers, if at all).
RECURRENT_MODEL_TYPES = frozenset(
    {
        "mamba", "mamba2", "falcon_mamba", "rwkv", "recurrent_gemma", "jamba", "zamba",
        "zamba2", "bamba", "falcon_h1", "granitemoehybrid", "nemotron_h", "lfm2", "xlstm",
        "qwen3_next",
    }
)  # fmt: skip
# The config key our bundled models (and anyone) can set to state the training length.
TRAINING_LENGTH_KEY = "lc_eval_training_length"


@dataclass(frozen=True)
class TrainingLength:
    """A model's training length in tokens (None when unknown) and where it came from."""

    tokens: int | None
    source: str  # e.g. "--training-length", "config lc_eval_training_length", "unknown"


def model_key(run: Run) -> tuple[str, str, str]:
    """Identity of a run's model: ``(lm-eval model type, recorded model name, read variant)``;
    a model read twice (query first, repeated context) is reported beside itself read once."""
    return (run.model_source, run.model_name.rstrip("/\\"), run.variant)


def display_names(
    keys: list[tuple[str, ...]], renames: dict[str, str] | None = None
) -> dict[tuple[str, ...], str]:
    """A short, unique name per model key; ``renames`` maps an automatic name, or a recorded
    model name, to the name the user wants. A key's third part, the read variant, is added in
    brackets: ``mamba2 [query first]``.

    >>> display_names([("hf", "/a/llama"), ("hf", "/b/mamba")])
    {('hf', '/a/llama'): 'llama', ('hf', '/b/mamba'): 'mamba'}
    >>> display_names([("hf", "/a/llama"), ("lc_hf", "/a/llama"), ("hf", "/b/llama")])
    {('hf', '/a/llama'): 'a/llama (hf)', ('lc_hf', '/a/llama'): 'a/llama (lc_hf)', ('hf', '/b/llama'): 'b/llama'}
    >>> display_names([("hf", "/a/m", ""), ("hf", "/a/m", "query first")])
    {('hf', '/a/m', ''): 'm', ('hf', '/a/m', 'query first'): 'm [query first]'}
    """
    renames = renames or {}
    paths = sorted({key[1] for key in keys})
    bases = Counter(_basename(p) for p in paths)
    # The same basename on different checkpoints: show more of their paths.
    short = {p: _basename(p) if bases[_basename(p)] == 1 else _tail(p, paths) for p in paths}
    types = {}
    for key in keys:
        types.setdefault(short[key[1]], set()).add(key[0])
    # One checkpoint through several lm-eval model types: name the type too.
    names = {
        key: (short[key[1]] if len(types[short[key[1]]]) == 1 else f"{short[key[1]]} ({key[0]})")
        + (f" [{key[2]}]" if len(key) > 2 and key[2] else "")
        for key in keys
    }
    chosen = {}
    for key in keys:
        auto = names[key]
        chosen[key] = renames.get(auto) or renames.get(key[1]) or auto
    unused = set(renames) - set(names.values()) - {key[1] for key in keys}
    if unused:
        known = ", ".join(sorted(set(names.values())))
        raise ValueError(f"--name {min(unused)}=...: no model of that name; models: {known}")
    taken = list(chosen.values())
    clash = next((name for name in taken if taken.count(name) > 1), None)
    if clash is not None:
        raise ValueError(f"--name gives two models the name {clash!r}; pick distinct names")
    return chosen


def training_length(run: Run, override: int | None = None) -> TrainingLength:
    """The model's training length: the override, else its local checkpoint's config.

    The config is read (never downloaded) when ``model_args`` name a local folder with a
    ``config.json``: its ``lc_eval_training_length`` key, else ``max_position_embeddings``
    for attention models (not for the model types in ``RECURRENT_MODEL_TYPES``).
    """
    if override is not None:
        return TrainingLength(override, "--training-length")
    config = _local_config(run)
    if config is None:
        return TrainingLength(None, "unknown (no local checkpoint config)")
    if isinstance(config.get(TRAINING_LENGTH_KEY), int):
        return TrainingLength(config[TRAINING_LENGTH_KEY], f"config {TRAINING_LENGTH_KEY}")
    model_type = str(config.get("model_type", ""))
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and model_type not in RECURRENT_MODEL_TYPES:
        return TrainingLength(positions, "config max_position_embeddings")
    return TrainingLength(None, f"unknown (config of {model_type or 'this model'} does not say)")


def _local_config(run: Run) -> dict | None:
    gguf = _gguf_config(run.model_args)
    if gguf is not None:
        return gguf
    for key in ("pretrained", "path", "model"):
        value = run.model_args.get(key)
        if not isinstance(value, str) or not value:
            continue
        config = Path(local_path(value)).expanduser() / "config.json"  # short names too
        if config.is_file():
            try:
                return json.loads(config.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    return None


def _gguf_config(model_args: dict) -> dict | None:
    """The config of a local GGUF checkpoint (read from the file's metadata), else None."""
    from lc_tasks.tokenizer import checkpoint_location

    pretrained = model_args.get("pretrained")
    if not isinstance(pretrained, str) or not pretrained:
        return None
    folder, gguf_file = checkpoint_location(pretrained, model_args.get("gguf_file") or None)
    if not gguf_file or not Path(folder, gguf_file).is_file():
        return None
    return _read_gguf_config(str(folder), gguf_file)


@functools.cache
def _read_gguf_config(folder: str, gguf_file: str) -> dict | None:
    """A GGUF file's config, read once per report (each of a model's runs asks for it)."""
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(folder, gguf_file=gguf_file).to_dict()
    except Exception:  # noqa: BLE001  an unreadable file: the training length is unknown
        return None


def _basename(name: str) -> str:
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or name


def _tail(name: str, paths: list[str]) -> str:
    """The shortest path tail of ``name`` that no other path ends with."""
    parts = name.replace("\\", "/").rstrip("/").split("/")
    others = [p.replace("\\", "/").rstrip("/") for p in paths if p != name]
    for n in range(2, len(parts) + 1):
        tail = "/".join(parts[-n:])
        if not any(o == tail or o.endswith("/" + tail) for o in others):
            return tail
    return "/".join(parts)
