"""lm-eval model adapters for long inputs.

Importing this package registers our models with lm-eval's registry, lazily, and teaches the
tasks' tokenizer resolver (``lc_tasks.tokenizer``) our checkpoints' names and tokenizers:
nothing heavy (torch, transformers) is imported until a model or tokenizer is requested.

>>> import lc_models
>>> from lm_eval.api.registry import get_model
>>> get_model("lc_hf").__name__
'LongContextLM'
"""

from __future__ import annotations

__all__ = ["MODELS", "register"]

# name -> "module:Class", resolved by lm-eval only when the model is used.
MODELS = {
    "lc_hf": "lc_models.adapter:LongContextLM",
}


def _local_path(name: str) -> str:
    from lc_models.zoo import resolve

    return resolve(name)


def _default_tokenizer(path: str) -> str | None:
    from lc_models.models import tokenizer_for

    return tokenizer_for(path)


def _special_tokenizer(name: str):
    from lc_models.models import special_tokenizer

    return special_tokenizer(name)


def register() -> None:
    """Register our models in lm-eval's model registry, and our checkpoints' names and
    tokenizers with the tasks (idempotent)."""
    from lc_tasks.tokenizer import Hooks
    from lc_tasks.tokenizer import register as register_tokenizers

    register_tokenizers(Hooks(local_path=_local_path, default_tokenizer=_default_tokenizer,
                              special_tokenizer=_special_tokenizer))
    # Populate lm-eval's own lazy registry first: `get_model` only imports
    # `lm_eval.models` when the registry is empty, so registering into an empty
    # registry would hide `hf`, `vllm` and the rest.
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    for name, target in MODELS.items():
        model_registry.register(name, target=target)


register()
