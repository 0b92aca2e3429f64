"""RWKV (v4, ``RwkvForCausalLM``): its state is a list of tensors, not a transformers Cache.

The model's forward takes ``state=[5 tensors of shape (batch, hidden, layers)]``
(feed-forward shift, attention shift, and the numerator, denominator and
running max of the WKV recurrence) and updates them in place; the generic
:class:`~lc_models.state.StateListRunner` carries it.

One quirk of transformers 5.24: for a one-token chunk with a state, the token
shift takes the previous token as ``(batch, hidden)`` and broadcasts it
against ``(batch, 1, hidden)``, which gives ``(batch, batch, hidden)`` when
batch > 1. The attention and feed-forward forwards are replaced (on the
instance) by ones that shift every chunk length the same way.
"""

from __future__ import annotations

import types

import torch

from lc_models.state import StateListRunner

MODEL_TYPES = ("rwkv",)


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


def make_runner(model: torch.nn.Module) -> StateListRunner:
    """The state-list runner over ``model``, token shifts patched."""
    patch(model)
    return StateListRunner(model)
