"""RWKV (v4, ``RwkvForCausalLM``): its state is a list of tensors, not a transformers Cache.

The model's forward takes ``state=[5 tensors of shape (batch, hidden, layers)]``
(attention shift, feed-forward shift, and the numerator, denominator and
running max of the WKV recurrence) and updates them in place. Chunked prefill
with that state is exact in transformers 5.24; this module only adapts the
state to the shared :class:`~lc_models.state.State` interface.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lc_models.state import Runner, State

MODEL_TYPES = ("rwkv",)


class RwkvState(State):
    """RWKV state: ``tensors`` is None before the first token, else 5 tensors
    of shape (batch, hidden, layers)."""

    def __init__(self, tensors: list[torch.Tensor] | None, n_tokens: int, batch_size: int):
        self.tensors = tensors
        self.n_tokens = n_tokens
        self._batch_size = batch_size

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def select(self, rows: Sequence[int]) -> RwkvState:
        rows = list(rows)
        if self.tensors is None:
            return RwkvState(None, self.n_tokens, len(rows))
        index = torch.tensor(rows, dtype=torch.long, device=self.tensors[0].device)
        return RwkvState([t.index_select(0, index) for t in self.tensors], self.n_tokens, len(rows))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors or [])


class RwkvRunner(Runner):
    """Feeds chunks through ``RwkvForCausalLM`` with its list-of-tensors state."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def new_state(self, batch_size: int) -> RwkvState:
        return RwkvState(None, 0, batch_size)

    @torch.no_grad()
    def prefill(self, input_ids, state, last_only=False):
        out = self.model(input_ids=input_ids, state=state.tensors, use_cache=True)
        state.tensors = out.state
        state.n_tokens += input_ids.shape[1]
        logits = out.logits[:, -1:] if last_only else out.logits
        return logits, state


def make_runner(model: torch.nn.Module) -> RwkvRunner:
    """The RWKV runner over ``model`` (no patching needed)."""
    return RwkvRunner(model)
