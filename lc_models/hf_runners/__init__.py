"""Runners for transformers models: the generic ones, and a small module per model type
with a quirk, each behind the shared ``Runner``/``State`` interface.

``runner_for(model)`` picks how to drive a loaded causal LM:

* lc-eval's own implementations (``lc_models.models``, e.g. RWKV-6, mamba_ssm hybrids) take
  and return their state themselves (``ModelRunner``);
* model types listed in ``FIXES`` get the runner of their fix module (one
  small module per quirk of transformers 5.24, or per faster path, each with
  a docstring naming why);
* model types in ``GENERIC_EXACT`` use the generic ``CacheRunner`` as is; the
  test suite checks each of them against the full forward pass;
* any other model type uses ``CacheRunner`` (or ``StateListRunner`` when its
  forward takes ``state=[tensors]`` instead of a cache, as RWKV-5/6 remote code
  does), but only after a quick check on random tokens that chunked prefill,
  batched, matches its full forward pass. If it does not, lc_hf refuses the
  model with a clear error rather than return wrong numbers.

Every transformers model that attends with "sdpa" is first switched to ``lc_sdpa``
(``lc_sdpa.py``): a chunk attends to its cache without the (chunk, context) mask. Every
model's fp32 linear layers run through oneDNN where its GEMM is faster than torch's default
(``lc_models.ops.linear``: MKL runs AVX2 code on AMD CPUs), plain RMS norms in one pass
(``lc_models.ops.rms_norm``), and freed tensor memory stays in
the process instead of being faulted in again by the next op (``lc_models.ops.allocator``).
"""

from __future__ import annotations

import importlib

import torch

from lc_models.state import CacheRunner, ModelRunner, Runner, StateListRunner, forward_params

# model_type -> module with ``make_runner(model) -> Runner``
FIXES: dict[str, str] = {
    "mamba": "lc_models.hf_runners.mamba",
    "falcon_mamba": "lc_models.hf_runners.mamba",
    "jamba": "lc_models.hf_runners.mamba",
    "mamba2": "lc_models.hf_runners.mamba2",
    "recurrent_gemma": "lc_models.hf_runners.recurrent_gemma",
    "rwkv": "lc_models.hf_runners.rwkv",
    "xlstm": "lc_models.hf_runners.xlstm",
    "minimax": "lc_models.hf_runners.minimax",
}

# Exact with the generic runner (explicit position ids, the model's own cache).
GENERIC_EXACT: frozenset[str] = frozenset(
    {"llama", "gpt_neox", "gpt2", "bamba", "lfm2", "qwen3_next", "zamba2"}
)


def runner_for(model: torch.nn.Module, verify: bool = True) -> Runner:
    """The runner for ``model``; unknown model types are checked first (see module doc)."""
    from lc_models.models.stateful import StatefulLM
    from lc_models.ops import allocator, linear, rms_norm

    allocator.keep_freed_memory()
    linear.patch(model)
    rms_norm.patch(model)
    if isinstance(model, StatefulLM):  # our own implementations carry their state themselves
        return ModelRunner(model)
    from lc_models.hf_runners import lc_sdpa

    lc_sdpa.patch(model)
    model_type = getattr(model.config, "model_type", None)
    if model_type in FIXES:
        return importlib.import_module(FIXES[model_type]).make_runner(model)
    params = forward_params(model)
    if "state" in params and not {"cache", "past_key_values"} & params:
        runner = StateListRunner(model)  # RWKV-style remote code: state=[tensors]
    else:
        runner = CacheRunner(model)
    if verify and model_type not in GENERIC_EXACT:
        from lc_models.verify import check_exact

        check_exact(runner)
    return runner
