"""A KV cache layer that is allocated once, at the request's known final size.

transformers' ``DynamicLayer`` grows by ``torch.cat``: every chunk of a prefill and every
decoded token copies the whole cache so far (O(n^2 / chunk) bytes moved, plus the
allocator's slack). lc_hf knows each request's final length before it starts, so
:class:`ReservedLayer` keeps its keys and values in one buffer of that many positions and
writes each chunk into place; ``keys``/``values`` are views of the filled prefix, so
everything that reads a ``DynamicLayer`` (masks, ``get_seq_length``, attention) sees the
same tensors.

Snapshots share the buffer. ``CacheState.select`` copies a layer and calls its
``reorder_cache``; when the rows stay as they are (a batch of one kept for its continuations,
the common case) nothing is copied: the snapshot and its parent both view the same prefix.
The buffer is append-only: it counts the positions written so far (``used``), and a layer
writes in place only when its own prefix ends exactly there. So the first of the two to
continue appends in place, and the other finds ``used`` past its end and copies its prefix
into a buffer of its own: no layer ever sees another's writes. Any other row selection,
``crop``, or a growth past the reservation also leaves a fresh buffer.

Without a reservation (``capacity`` 0), or past it, it grows to exactly what is needed, one
copy per chunk, as ``DynamicLayer`` does.

    buffer.keys  (batch, heads, capacity, head_dim)
    keys         buffer.keys[:, :, :n_tokens]      a view, no copy
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

__all__ = ["ReservedLayer", "append", "reserve", "use_reserved_layers"]


class _Buffer:
    """Keys and values of ``capacity`` positions, shared by a layer and its snapshots; the
    first ``used`` positions have been written (and are never written again)."""

    __slots__ = ("keys", "used", "values")

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        # (batch, heads, capacity, d) each; keys and values may differ in heads and d (MLA
        # models cache a compressed latent and a rotary part through the same update)
        self.keys, self.values = (t.new_empty((*t.shape[:-2], capacity, t.shape[-1]))
                                  for t in (keys, values))
        self.used = 0


class ReservedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values live in a buffer of ``capacity`` positions."""

    def __init__(self, capacity: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.capacity = capacity
        self.buffer: _Buffer | None = None

    def update(self, key_states, value_states, *args, **kwargs):
        # key_states, value_states: (batch, kv_heads, T, head_dim)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.buffer, self.keys, self.values = append(
            self.buffer, self.keys, self.values, key_states, value_states, self.capacity)
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select rows; keeping every row in order shares the buffer (see the module doc)."""
        batch = self.keys.shape[0] if self.is_initialized and self.keys.dim() == 4 else None
        if batch is not None and beam_idx.numel() == batch and bool(
                (beam_idx.cpu() == torch.arange(batch)).all()):
            return
        super().reorder_cache(beam_idx)


def append(buffer: _Buffer | None, keys, values, new_keys, new_values, capacity: int):
    """``cat([keys, new_keys], -2)`` and the same for values, as views of a buffer of at least
    ``capacity`` positions: written in place when ``keys`` and ``values`` are the written
    prefix of ``buffer`` and it has room, else into a new buffer. Returns (buffer, keys,
    values). keys, values: (batch, heads, n, d) or None (nothing yet); new_*: (.., T, d)."""
    n = 0 if keys is None or keys.numel() == 0 else keys.shape[-2]
    t = new_keys.shape[-2]
    if not _can_append(buffer, keys, values, new_keys, new_values, n, t):
        fresh = _Buffer(new_keys, new_values, max(capacity, n + t))
        if n:  # our prefix, from a shared buffer or from a fresh tensor
            fresh.keys[..., :n, :].copy_(keys)
            fresh.values[..., :n, :].copy_(values)
        buffer = fresh
    buffer.keys[..., n : n + t, :].copy_(new_keys)
    buffer.values[..., n : n + t, :].copy_(new_values)
    buffer.used = n + t
    return buffer, buffer.keys[..., : n + t, :], buffer.values[..., : n + t, :]


def _can_append(buffer, keys, values, new_keys, new_values, n: int, t: int) -> bool:
    """Whether the new keys and values can be written in place: keys and values are the
    buffer's written prefix, nobody wrote past it, and there is room."""
    if buffer is None or buffer.used != n or buffer.keys.shape[-2] < n + t:
        return False
    pairs = ((buffer.keys, keys, new_keys), (buffer.values, values, new_values))
    for full, old, new in pairs:
        if (full.shape[:-2] != new.shape[:-2] or full.shape[-1] != new.shape[-1]
                or full.dtype != new.dtype):
            return False
        if n and (old.data_ptr() != full.data_ptr()
                  or old.shape != (*full.shape[:-2], n, full.shape[-1])):
            return False
    return True


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
