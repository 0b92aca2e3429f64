"""Model families that transformers cannot load, implemented or converted by lc-eval.

Each family module (listed in ``FAMILIES``) reads its own checkpoint format and exposes:

* ``detect(pretrained, revision, subfolder)``: a cheap look at the checkpoint (no weights),
  ``None`` when it is not of this family;
* ``TOKENIZER``: the tokenizer its checkpoints use when they ship none;
* ``open_checkpoint(...)`` and ``build(...)``, wrapped here as :class:`Checkpoint`.

``lc_hf`` and the tasks' tokenizer resolver only call :func:`find`, :func:`tokenizer_for` and
:func:`special_tokenizer`; neither knows any family by name.

Beside the families sit the pieces they are built of: ``stateful`` (their base class),
``checkpoint`` (reading weights), ``rwkv_world`` (the World tokenizer) and ``mamba_mixer`` (one
chunk through a transformers Mamba mixer, also run by the Mamba runners in
``lc_models.hf_runners``).

>>> find("/no/such/checkpoint") is None
True
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# Tried in this order; the first whose ``detect`` answers wins.
# rwkv7 before rwkv6: it claims only .pth files with x070 keys, rwkv6 reads or names the rest.
FAMILIES = ("lc_models.models.rwkv7", "lc_models.models.rwkv6", "lc_models.models.mamba_ssm")


@dataclass
class Checkpoint:
    """A checkpoint of one of our families, opened (config read, weights in memory)."""

    family: ModuleType
    source: str
    config: Any  # the family's own config dataclass
    state: dict  # weights, named as the family's module expects

    @property
    def hf_config(self):
        """A transformers ``PretrainedConfig`` describing the model (what lm-eval's HFLM reads)."""
        return self.family.hf_config(self.config)

    @property
    def tokenizer(self) -> str:
        return self.family.TOKENIZER

    def load(self, dtype=None, device="cpu"):
        """The model, weights assigned (``dtype`` None keeps the checkpoint's)."""
        return self.family.build(self.config, self.state, self.source, dtype=dtype, device=device)


def _families() -> list[ModuleType]:
    return [importlib.import_module(name) for name in FAMILIES]


def _is_name(pretrained) -> bool:
    return isinstance(pretrained, (str, os.PathLike)) and bool(str(pretrained))


def find(pretrained, revision: str | None = None, subfolder: str = "") -> Checkpoint | None:
    """Open ``pretrained`` (path or hub id) if one of our families reads it, else None."""
    if not _is_name(pretrained):
        return None
    for family in _families():
        opened = family.open_checkpoint(str(pretrained), revision, subfolder)
        if opened is not None:
            config, state = opened
            return Checkpoint(family, str(pretrained), config, state)
    return None


def tokenizer_for(pretrained, revision: str | None = None, subfolder: str = "") -> str | None:
    """The default tokenizer name of a checkpoint of our families (which ship none), else None.

    Reads only the checkpoint's config, never its weights.
    """
    if not _is_name(pretrained):
        return None
    for family in _families():
        if family.detect(str(pretrained), revision, subfolder) is not None:
            return family.TOKENIZER
    return None


def special_tokenizer(name: str):
    """The tokenizer for a name that no ``tokenizers`` file expresses (the RWKV World
    tokenizer: its name, or a folder of an RWKV checkpoint), else None."""
    from lc_models.models.rwkv_world import is_world_tokenizer, world_tokenizer

    return world_tokenizer() if is_world_tokenizer(str(name)) else None
