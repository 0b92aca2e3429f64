"""The bundled tiny models: small checkpoints trained here by ``scripts/train_tiny.py``.

Each is an ordinary HF folder (``config.json`` with ``lc_eval_training_length``,
``model.safetensors``, tokenizer files) inside this package, so any loader
opens it by path; ``lc_hf`` and the task tokenizer lookup also take its short
name (``--model_args pretrained=tiny-llama``).

>>> "tiny-llama" in names()
True
>>> resolve("tiny-llama") == str(path("tiny-llama"))
True
>>> resolve("EleutherAI/pythia-70m")  # anything else is passed through
'EleutherAI/pythia-70m'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ZOO_DIR", "names", "path", "resolve"]

ZOO_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    """Short names of the bundled models, sorted."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").is_file())


def path(name: str) -> Path:
    """Folder of the bundled model ``name``; a one-line error names the known ones."""
    folder = ZOO_DIR / name
    if name not in names():
        raise ValueError(f"no bundled model {name!r}; bundled: {', '.join(names())} "
                         "(`lc-eval zoo` lists them with their paths)")
    return folder


def resolve(name: str) -> str:
    """The folder of a bundled model's short name; any other name unchanged.

    An existing local path of the same name wins over the short name.
    """
    if isinstance(name, str) and "/" not in name and name in names() and not Path(name).exists():
        return str(path(name))
    return name
