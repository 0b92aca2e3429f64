"""A KV cache layer that is allocated once, at the request's known final size.

transformers' ``DynamicLayer`` grows by ``torch.cat``: every chunk of a prefill and every
decoded token copies the whole cache so far (O(n^2 / chunk) bytes moved, plus the
allocator's slack). lc_hf knows each request's final length before it starts, so
:class:`ReservedLayer` keeps its keys and values in one buffer of that many positions and
writes each chunk into place; ``keys``/``values`` are views of the filled prefix, so
everything that reads a ``DynamicLayer`` (masks, ``get_seq_length``, attention) sees the
same tensors. ``reorder_cache`` (what a snapshot does) leaves a fresh tensor that is not a
prefix of the buffer; the next ``update`` then copies it into a new buffer, so a snapshot never
writes into its parent's memory. (``crop`` keeps a prefix view, so a later update overwrites
tensors taken before the crop; lc_hf never crops.)

Without a reservation (``capacity`` 0), or past it, it grows to exactly what is needed, one
copy per chunk, as ``DynamicLayer`` does.

    buffer  (batch, heads, capacity, head_dim)
    keys    buffer[:, :, :n_tokens]            a view, no copy
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

__all__ = ["ReservedLayer", "reserve", "use_reserved_layers"]


class ReservedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values live in a buffer of ``capacity`` positions."""

    def __init__(self, capacity: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.capacity = capacity

    def update(self, key_states, value_states, *args, **kwargs):
        # key_states, value_states: (batch, kv_heads, T, head_dim)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, t = self.get_seq_length(), key_states.shape[-2]
        self.keys = _write(self.keys, key_states, n, max(self.capacity, n + t))
        self.values = _write(self.values, value_states, n, max(self.capacity, n + t))
        return self.keys, self.values


def _write(filled: torch.Tensor, new: torch.Tensor, n: int, capacity: int) -> torch.Tensor:
    """``cat([filled, new], -2)`` as a view of a buffer of ``capacity`` positions, written in
    place when ``filled`` is already a prefix view of a buffer with room for ``new``."""
    base = filled._base
    t = new.shape[-2]
    in_place = (base is not None and n > 0 and filled.data_ptr() == base.data_ptr()
                and base.shape[:-2] == new.shape[:-2] and base.shape[-2] >= n + t
                and filled.shape == (*base.shape[:-2], n, base.shape[-1]))
    if not in_place:
        base = new.new_empty((*new.shape[:-2], capacity, new.shape[-1]))
        if n:
            base[..., :n, :].copy_(filled)
    base[..., n : n + t, :].copy_(new)
    return base[..., : n + t, :]


def use_reserved_layers(cache) -> None:
    """Swap each plain ``DynamicLayer`` of an empty ``cache`` for a :class:`ReservedLayer`
    (sliding-window, linear and recurrent layers keep their own classes)."""
    cache.layers = [ReservedLayer() if type(layer) is DynamicLayer and not layer.is_initialized
                    else layer for layer in cache.layers]


def reserve(cache, n_tokens: int) -> None:
    """Let every :class:`ReservedLayer` of ``cache`` hold ``n_tokens`` positions in one buffer."""
    for layer in cache.layers:
        if isinstance(layer, ReservedLayer):
            layer.capacity = n_tokens
