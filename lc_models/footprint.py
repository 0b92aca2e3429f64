"""How much a model remembers: the bytes of its state, fixed and per token.

A recurrent layer keeps a state of fixed size (an SSM's (heads, head_dim, d_state) matrix, a
conv window, RWKV's WKV matrix); an attention layer keeps keys and values for every token
seen. Both are read off the carried :class:`~lc_models.state.State` itself, after two short
prefills: what grows between them is the per-token part, the rest is fixed. This is the
quantity capacity studies put beside recall (Zoology's "state size").

>>> from transformers import AutoModelForCausalLM
>>> from lc_models.hf_runners import runner_for
>>> from lc_models.zoo.tiny import tiny_config
>>> llama = AutoModelForCausalLM.from_config(tiny_config("llama", 64)).eval()
>>> state_footprint(runner_for(llama))  # 2 layers x (k, v) x 2 kv heads x 8 dims x 4 bytes
{'lc_state_bytes': 0, 'lc_kv_bytes_per_token': 256.0}
"""

from __future__ import annotations

import torch

from lc_models.state import Runner

__all__ = ["state_footprint"]

PROBE_TOKENS = (16, 32)  # two prefill lengths, inside any sliding window


@torch.no_grad()
def state_footprint(runner: Runner) -> dict[str, float]:
    """``{"lc_state_bytes": fixed bytes, "lc_kv_bytes_per_token": bytes added per token}`` for
    one row. A sliding-window cache that grows until its window is full (transformers'
    ``DynamicSlidingWindowLayer``) counts as growing; one allocated at its window's size at
    once (RecurrentGemma's local attention) counts as fixed."""
    sizes = []
    for n in PROBE_TOKENS:
        state = runner.new_state(1)
        ids = torch.zeros((1, n), dtype=torch.long, device=runner.device)
        _, state = runner.prefill(ids, state, last_only=True)
        sizes.append(state.nbytes())
    per_token = (sizes[1] - sizes[0]) / (PROBE_TOKENS[1] - PROBE_TOKENS[0])
    return {"lc_state_bytes": round(sizes[0] - per_token * PROBE_TOKENS[0]),
            "lc_kv_bytes_per_token": per_token}
