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
    # (rows, columns, 1) masks: where a row's term is not in a column's sum (T, T), where a
    # token reads nothing (T, T), and where a chunk reads no earlier chunk (K + 1, K + 1)
    ones = torch.ones(max(T, CHUNKS_PER_BLOCK + 1), max(T, CHUNKS_PER_BLOCK + 1),
                      dtype=torch.bool, device=x.device)
    masks = (ones[:T, :T].triu()[..., None], ones[:T, :T].triu(1)[..., None],
             ones.triu(1)[..., None])
    for s in range(0, L, span):
        y, state = _block(log_a[:, s : s + span], x[:, s : s + span], state, T, masks)
        ys.append(y)
    y = torch.cat(ys, 1) if ys else x.new_zeros(x.shape)
    return y, state


def _block(log_a, x, h, T, masks):
    """Up to CHUNKS_PER_BLOCK chunks of T tokens at once. log_a, x: (batch, L, channels)
    float32; h: (batch, channels) float32, the state before; masks: ``linear_scan``'s. The
    tail is padded with log_a = x = 0: no decay, no input, the state exact."""
    not_after, after, later = masks
    batch, L, channels = x.shape
    pad = -L % T
    if pad:
        log_a, x = F.pad(log_a, (0, 0, 0, pad)), F.pad(x, (0, 0, 0, pad))
    K = (L + pad) // T
    log_a, x = log_a.view(batch, K, T, channels), x.view(batch, K, T, channels)
    # token t reads token s <= t through P[t, s], the sum of log_a over s+1 .. t, summed from
    # its own terms (log_a[r] placed at (r, s) for r > s), not as a difference of two sums:
    # every exponent is <= 0 and as exact as float32 holds it. (b, K, T_t, T_s, c)
    pairs = log_a[:, :, :, None].masked_fill(not_after, 0.0).cumsum(2)
    pairs = pairs.masked_fill_(after, -float("inf")).exp_()
    y = (pairs.mul_(x[:, :, None])).sum(3)  # (b, K, T, c): each chunk from a zero state
    g = log_a.cumsum(2)  # (b, K, T, c): log decay from the chunk start through t
    # the states entering chunk k: h decayed over the chunks < k, plus each chunk j < k's end
    ends = F.pad(g[:, :, -1].double().cumsum(1), (0, 0, 1, 0))  # (b, K + 1, c): to chunk k
    carry = (ends[:, :, None] - ends[:, None]).float()  # (b, K + 1, K + 1, c), <= 0 below
    carry = carry.masked_fill_(later[: K + 1, : K + 1], -float("inf")).exp_()
    sources = torch.cat([h[:, None], y[:, :, -1]], 1)  # (b, K + 1, c)
    states = carry.mul_(sources[:, None]).sum(2)  # (b, K + 1, c): entering chunk k
    y = y.addcmul_(g.exp_(), states[:, :K, None])  # each token reads its chunk's start state
    return y.view(batch, K * T, channels)[:, :L], states[:, K]
