"""lm-eval model adapters for long inputs.

Importing this package registers our models with lm-eval's registry, lazily:
nothing heavy (torch, transformers) is imported until a model is requested.

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


def register() -> None:
    """Register our models in lm-eval's model registry (idempotent)."""
    # Populate lm-eval's own lazy registry first: `get_model` only imports
    # `lm_eval.models` when the registry is empty, so registering into an empty
    # registry would hide `hf`, `vllm` and the rest.
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    for name, target in MODELS.items():
        model_registry.register(name, target=target)


register()
