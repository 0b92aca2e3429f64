"""The tokenizer a task sizes its prompts with, taken from the model arguments.

As in lm-eval's RULER tasks: ``tokenizer`` wins, then ``pretrained`` (HF
models), then ``model`` (API backends). Pass one with
``--model_args pretrained=...`` or ``--metadata '{"tokenizer": "..."}'``.
This package knows no model family: a model plugin teaches it its own names
through ``register`` (lc-eval's model plugin does on import: the bundled short names, the tokenizer a
native mamba_ssm or RWKV checkpoint was trained with, the RWKV World tokenizer). Without a
plugin, every name is a hub id, a folder or a GGUF file.

>>> tokenizer_name({"pretrained": "/ckpt", "tokenizer": "/tok"})
'/tok'
>>> tokenizer_name({"dtype": "float32"}) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lc_tasks.errors import UsageError

__all__ = ["Hooks", "MissingTokenizer", "checkpoint_location", "load_tokenizer", "register",
           "resolve_tokenizer", "tokenizer_name"]

TOKENIZER_KEYS = ("tokenizer", "pretrained", "model")
UNLIMITED = int(1e30)  # transformers' own "no limit" model_max_length


class MissingTokenizer(UsageError):
    """No tokenizer in the model arguments or metadata."""


def tokenizer_name(options: dict[str, Any]) -> str | None:
    """The first non-empty name among ``tokenizer``, ``pretrained``, ``model``."""
    for key in TOKENIZER_KEYS:
        value = options.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass
class Hooks:
    """What a model plugin knows of its own checkpoints, each a function or None.

    * ``local_path(name) -> str``: a short name's path, any other name unchanged;
    * ``default_tokenizer(path) -> str | None``: the tokenizer of a checkpoint that ships none;
    * ``special_tokenizer(name) -> tokenizer | None``: a tokenizer no ``tokenizers`` file
      expresses (the RWKV World tokenizer), loaded.
    """

    local_path: Callable[[str], str] | None = None
    default_tokenizer: Callable[[str], str | None] | None = None
    special_tokenizer: Callable[[str], Any] | None = None


_HOOKS = Hooks()


def register(hooks: Hooks) -> None:
    """Install a model plugin's ``hooks`` (the last registered wins; idempotent)."""
    global _HOOKS
    if hooks != _HOOKS:
        _HOOKS = hooks
        load_tokenizer.cache_clear()


def local_path(name: str) -> str:
    """Where a short model name points. The one place for bundled-model lookup.

    A plugin's short names (lc-eval's bundled models, e.g. ``tiny-llama``) map to their
    folders, those of installed real models (``smollm2-135m-instruct``) to their GGUF files;
    any other name (hub id or path) is returned unchanged.
    """
    return _HOOKS.local_path(name) if _HOOKS.local_path else name


def checkpoint_location(pretrained: str, gguf_file: str | None = None
                        ) -> tuple[str, str | None]:
    """``(folder or hub id, GGUF file name or None)`` for a ``pretrained`` value and its
    ``gguf_file``: a short name resolved (``local_path``), and the path of a ``.gguf`` file
    split into its folder and file name, the form transformers loads
    (``from_pretrained(folder, gguf_file=name)``).

    >>> import tempfile, pathlib
    >>> folder = tempfile.mkdtemp(); _ = pathlib.Path(folder, "m.Q4.gguf").write_bytes(b"")
    >>> checkpoint_location(f"{folder}/m.Q4.gguf") == (folder, "m.Q4.gguf")
    True
    >>> checkpoint_location("org/model", "m.gguf")
    ('org/model', 'm.gguf')
    """
    path = local_path(pretrained) if isinstance(pretrained, str) else pretrained
    if gguf_file is None and isinstance(path, str) and path.lower().endswith(".gguf"):
        file = Path(path).expanduser()
        if file.is_file():
            return str(file.parent), file.name
    return path, gguf_file


@lru_cache(maxsize=8)
def load_tokenizer(name: str, trust_remote_code: bool = False, gguf_file: str | None = None):
    """``AutoTokenizer.from_pretrained`` for a hub id, a local folder, a short name or a GGUF
    checkpoint (a ``.gguf`` path, or a folder with ``gguf_file``: its own tokenizer)."""
    from transformers import AutoTokenizer

    folder, gguf_file = checkpoint_location(name, gguf_file)
    try:
        special = (_HOOKS.special_tokenizer(folder)
                   if _HOOKS.special_tokenizer and not gguf_file else None)
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tok = special or AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code,
                                                       **extra)
    except Exception as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        plugin = ("" if _HOOKS.local_path else "; lc-eval's short names (tiny-llama, ...) and "
                  "the RWKV World tokenizer resolve with its model plugin loaded (lc-eval run)")
        raise UsageError(f"cannot load tokenizer {name!r} to size the lc-eval tasks ({reason}); "
                         "pass tokenizer=<hub id or local folder with tokenizer files>"
                         f"{plugin}") from err
    # Going past the model's length is what the tasks measure: no per-encode length warning
    # from transformers ("Token indices sequence length is longer than ...")
    tok.model_max_length = UNLIMITED
    if not tok("The quick brown fox.", add_special_tokens=False)["input_ids"]:
        raise UsageError(f"tokenizer {name!r} encodes text to 0 tokens, so it cannot size "
                         "prompts; pass tokenizer=<another tokenizer>")
    return tok


def _native_default(pretrained: str) -> str:
    """The tokenizer a plugin names for a checkpoint that ships none (a native mamba_ssm
    checkpoint: gpt-neox-20b; RWKV-6: the World tokenizer), else ``pretrained`` unchanged."""
    found = _HOOKS.default_tokenizer(local_path(pretrained)) if _HOOKS.default_tokenizer else None
    return found or pretrained


def resolve_tokenizer(options: dict[str, Any], task: str = "this task"):
    """The tokenizer named by the options, or a one-line error saying how to pass one.

    >>> try:
    ...     resolve_tokenizer({}, "lc_passkey_1k")
    ... except MissingTokenizer as err:
    ...     print(err)
    lc_passkey_1k sizes its prompts with the model's tokenizer: pass --model_args pretrained=<model> (or tokenizer=<name or path>), or --metadata '{"tokenizer": "<name or path>"}'
    """
    name = tokenizer_name(options)
    gguf_file = None
    if name is not None and not options.get("tokenizer") and name == options.get("pretrained"):
        # as lm-eval's hf: a GGUF checkpoint's own tokenizer, unless tokenizer= names another
        name, gguf_file = checkpoint_location(name, options.get("gguf_file") or None)
        if gguf_file is None:
            name = _native_default(name)
    if name is None:
        raise MissingTokenizer(
            f"{task} sizes its prompts with the model's tokenizer: pass --model_args "
            "pretrained=<model> (or tokenizer=<name or path>), or --metadata "
            "'{\"tokenizer\": \"<name or path>\"}'"
        )
    trust = str(options.get("trust_remote_code", False)).lower() in ("1", "true", "yes")
    return load_tokenizer(name, trust, gguf_file)
