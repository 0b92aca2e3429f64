"""xLSTM (``xLSTMForCausalLM``): its state lives in an ``xLSTMCache``, not a transformers Cache.

The model's forward takes ``cache=xLSTMCache`` (per layer: the mLSTM matrix memory C
(batch, heads, qk_head_dim, v_head_dim), normaliser n (batch, heads, qk_head_dim) and
stabiliser m (batch, heads, 1)) and copies its new states into it, and it is exact when fed
in chunks. The generic runner hands it a ``DynamicCache``, which has no ``rnn_state``; this
module gives it its own cache, and selects rows of every state tensor.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from lc_models.state import Runner, State

MODEL_TYPES = ("xlstm",)


class XlstmState(State):
    """An ``xLSTMCache`` and the number of tokens its rows have consumed."""

    def __init__(self, cache, n_tokens: int, batch_size: int):
        self.cache = cache
        super().__init__(n_tokens, batch_size)

    def select(self, rows: Sequence[int]) -> XlstmState:
        new = copy.copy(self.cache)
        index = torch.tensor(list(rows), dtype=torch.long)
        new.rnn_state = {
            layer: tuple(t.index_select(0, index.to(t.device)) for t in tensors)
            for layer, tensors in self.cache.rnn_state.items()
        }
        new.seqlen_offset = self.cache.seqlen_offset.clone()
        return XlstmState(new, self.n_tokens, len(index))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size()
                   for tensors in self.cache.rnn_state.values() for t in tensors)


class XlstmRunner(Runner):
    """The model's own forward, with its own cache."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def new_state(self, batch_size: int) -> XlstmState:
        from transformers.models.xlstm.modeling_xlstm import xLSTMCache

        weight = self.model.get_input_embeddings().weight
        cache = xLSTMCache(self.model.config, batch_size, dtype=weight.dtype, device=weight.device)
        return XlstmState(cache, 0, batch_size)

    @torch.no_grad()
    def prefill(self, input_ids, state, last_only=False):
        out = self.model(input_ids=input_ids, cache=state.cache, use_cache=True)
        state.n_tokens += input_ids.shape[1]
        return (out.logits[:, -1:] if last_only else out.logits), state


def make_runner(model: torch.nn.Module) -> XlstmRunner:
    return XlstmRunner(model)
