"""A first-order linear recurrence per channel, from a given state (RecurrentGemma's RG-LRU):

    h[b,c] <- a[b,t,c] * h[b,c] + x[b,t,c],    y[b,t,c] = h[b,c]

with ``a`` in [0, 1]: RecurrentGemma passes ``exp(-8 r softplus(Λ))``, zeroed at a document
reset. Nothing else is assumed or checked (a negative ``a`` would need the log of its
magnitude and a sign; no caller makes one).

``linear_scan_ref`` is that loop over tokens in torch (transformers' ``_rnn_scan``, the
oracle, a few torch ops per token). ``linear_scan`` computes the same through the kernel
``lc_models.ops.dispatch`` picks: ``"native"`` on a CPU (``csrc/linear_scan.c``: one pass, the
channels vectorised), else ``"torch"``, chunks of ``CHUNK`` tokens, ``CHUNKS_PER_BLOCK`` of
them at once (one Python iteration per block):

* within a chunk, token t reads token s <= t through the product of ``a`` over s+1 .. t,
  the exponent of a sum of logs formed from the terms themselves. The (T, T) factor per
  channel is formed explicitly, every exponent <= 0, so strong decays never overflow;
  ``log(0)`` is floored at ``-LOG_ZERO``, whose exponent underflows to an exact 0 (a reset
  forgets exactly);
* the state enters each chunk through its cumulative decay, and the states entering the
  chunks of a block come from one lower-triangular decay matrix per channel.

>>> import torch
>>> a, x = torch.rand(1, 9, 4), torch.randn(1, 9, 4)
>>> y1, h = linear_scan(a[:, :5], x[:, :5])
>>> y2, _ = linear_scan(a[:, 5:], x[:, 5:], h, backend="torch")
>>> torch.allclose(torch.cat([y1, y2], 1), linear_scan_ref(a, x)[0], atol=1e-6)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lc_models.ops import dispatch, native
from lc_models.ops.chunk_scan import chunk_masks, decayed_chunks
from lc_models.ops.scan_state import start_state

CHUNK = 8  # tokens per chunk: the (T, T, channels) factor grows with it
CHUNKS_PER_BLOCK = 8  # one Python iteration each; 64 tokens keep a block in cache
LOG_ZERO = 1e4  # log(a) >= -LOG_ZERO; exp(-LOG_ZERO) is 0 in float32 and float64


def linear_scan_ref(a, x, h=None):
    """a, x: (batch, L, channels); h: (batch, channels) or None (zeros). Returns (y (batch, L,
    channels) float32, final h (batch, channels) float32)."""
    h = x.new_zeros(x.shape[0], x.shape[2], dtype=torch.float32) if h is None else h.float()
    ys = []
    for t in range(x.shape[1]):
        h = a[:, t].float() * h + x[:, t].float()
        ys.append(h)
    y = torch.stack(ys, 1) if ys else x.new_zeros(x.shape, dtype=torch.float32)
    return y, h


def linear_scan(a, x, h=None, backend="auto", chunk_size=None):
    """``linear_scan_ref``'s result (y, final h), float32. ``backend``: "auto" (see
    ``lc_models.ops.dispatch``), "native", "torch" or "vendor" (none exists: native on a CPU,
    else torch); ``chunk_size``: tokens per chunk of the torch form (default ``CHUNK``)."""
    batch, L, channels = x.shape
    kind = dispatch.choose("linear_scan", x, backend=backend)
    state = start_state(h, (batch, channels), x.device).contiguous()  # (batch, channels)
    if kind == "native":
        return native.linear_scan(a, x, state), state  # state updated in place
    T = chunk_size or CHUNK
    if T < 1:
        raise ValueError(f"chunk_size must be >= 1, got {T}")
    log_a = a.float().log().clamp_(min=-LOG_ZERO)  # (batch, L, channels), 0 -> -LOG_ZERO
    x = x.float()
    ys = []
    span = T * CHUNKS_PER_BLOCK
    masks = chunk_masks(T, CHUNKS_PER_BLOCK, x.device)
    for s in range(0, L, span):
        y, state = _block(log_a[:, s : s + span], x[:, s : s + span], state, T, masks)
        ys.append(y)
    y = torch.cat(ys, 1) if ys else x.new_zeros(x.shape)
    return y, state


def _block(log_a, x, h, T, masks):
    """Up to CHUNKS_PER_BLOCK chunks of T tokens at once (``chunk_scan.decayed_chunks``).
    log_a, x: (batch, L, channels) float32; h: (batch, channels) float32, the state before;
    masks: ``linear_scan``'s. The tail is padded with log_a = x = 0: no decay, no input, the
    state exact."""
    batch, L, channels = x.shape
    pad = -L % T
    if pad:
        log_a, x = F.pad(log_a, (0, 0, 0, pad)), F.pad(x, (0, 0, 0, pad))
    K = (L + pad) // T
    y, h = decayed_chunks(log_a.view(batch, K, T, channels), x.view(batch, K, T, channels), h,
                          masks)  # y: (b, K, T, c), the state after each token
    return y.reshape(batch, K * T, channels)[:, :L], h
