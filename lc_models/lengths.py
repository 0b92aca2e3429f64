"""How long a request a loaded model can take, and what its config says it was built for.

Most models take any length (rotary or no positions, recurrent state): going past the length
they were built or trained for is what lc-eval measures. A model with a *learned absolute*
position table (GPT-2's ``wpe``, OPT's ``embed_positions``) has no position for a longer
input at all; lc_hf refuses such requests before any compute, with this module's limit.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> learned_positions(GPT2LMHeadModel(GPT2Config(n_positions=64, n_layer=1, n_embd=8,
...                                              n_head=2, vocab_size=10, bos_token_id=0, eos_token_id=0)))
(64, 'transformer.wpe')
"""

from __future__ import annotations

import re

import torch

# config fields that name the context length a model was built or trained for
POSITION_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len", "context_length")
_TABLE = re.compile(r"(^|\.)(wpe|embed_positions|position_embeddings)$")
# model types whose config names a length but whose positions do not stop there
NO_POSITION_LIMIT = frozenset({"mamba", "mamba2", "falcon_mamba", "rwkv", "rwkv6", "mamba_ssm",
                               "xlstm", "recurrent_gemma"})


def learned_positions(model: torch.nn.Module) -> tuple[int, str] | None:
    """(positions, module name) of a learned absolute position table, or None."""
    inputs = model.get_input_embeddings()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) and module is not inputs and _TABLE.search(name):
            return module.num_embeddings - int(getattr(module, "offset", 0) or 0), name
    return None


def built_for(config) -> tuple[str, int] | None:
    """(field, tokens) of the context length a model's config names, if it means one:
    None for recurrent models, whose configs carry such a field without a limit behind it."""
    if getattr(config, "model_type", None) in NO_POSITION_LIMIT:
        return None
    for field in POSITION_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return field, value
    return None
