"""RWKV (v4, ``RwkvForCausalLM``): its state is a list of tensors, not a transformers Cache.

The model's forward takes ``state=[5 tensors of shape (batch, hidden, layers)]``
(feed-forward shift, attention shift, and the numerator, denominator and
running max of the WKV recurrence) and updates them in place. This module
adapts that state to the shared :class:`~lc_models.state.State` interface.

One quirk of transformers 5.24: for a one-token chunk with a state, the token
shift takes the previous token as ``(batch, hidden)`` and broadcasts it
against ``(batch, 1, hidden)``, which gives ``(batch, batch, hidden)`` when
batch > 1. The attention and feed-forward forwards are replaced (on the
instance) by ones that shift every chunk length the same way.
"""

from __future__ import annotations

import types
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


def _shift(hidden: torch.Tensor, state, index: int, layer: int) -> torch.Tensor:
    """hidden (b, T, H) delayed by one token, the state's last token first."""
    if state is None:
        return torch.nn.functional.pad(hidden, (0, 0, 1, -1))
    previous = state[index][:, :, layer].to(hidden.dtype)  # (b, H)
    return torch.cat([previous[:, None], hidden[:, :-1]], dim=1)


def _mix(hidden, shifted, weight):
    return hidden * weight + shifted * (1 - weight)


def attention_key_value(self, hidden, state=None):
    """RwkvSelfAttention.extract_key_value with a shift that works for one-token chunks."""
    shifted = _shift(hidden, state, 1, self.layer_id)
    key = self.key(_mix(hidden, shifted, self.time_mix_key))
    value = self.value(_mix(hidden, shifted, self.time_mix_value))
    receptance = torch.sigmoid(self.receptance(_mix(hidden, shifted, self.time_mix_receptance)))
    if state is not None:
        state[1][:, :, self.layer_id] = hidden[:, -1]
    return receptance, key, value, state


def feed_forward(self, hidden, state=None):
    """RwkvFeedForward.forward with a shift that works for one-token chunks."""
    shifted = _shift(hidden, state, 0, self.layer_id)
    key = torch.square(torch.relu(self.key(_mix(hidden, shifted, self.time_mix_key))))
    receptance = torch.sigmoid(self.receptance(_mix(hidden, shifted, self.time_mix_receptance)))
    if state is not None:
        state[0][:, :, self.layer_id] = hidden[:, -1]
    return receptance * self.value(key), state


def patch(model: torch.nn.Module) -> int:
    """Replace the token shift of every RWKV attention and feed-forward; returns how many."""
    count = 0
    for block in model.rwkv.blocks:
        block.attention.extract_key_value = types.MethodType(attention_key_value, block.attention)
        block.feed_forward.forward = types.MethodType(feed_forward, block.feed_forward)
        count += 2
    return count


def make_runner(model: torch.nn.Module) -> RwkvRunner:
    """The RWKV runner over ``model``, token shifts patched."""
    patch(model)
    return RwkvRunner(model)
