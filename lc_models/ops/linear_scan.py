"""A first-order linear recurrence per channel, from a given state (RecurrentGemma's RG-LRU):

    h[b,c] <- a[b,t,c] * h[b,c] + x[b,t,c],    y[b,t,c] = h[b,c]

``linear_scan_ref`` is that loop over tokens in torch (transformers' ``_rnn_scan``, the
oracle, a few torch ops per token); ``linear_scan`` runs it in C on a CPU
(``csrc/linear_scan.c``: one pass, the channels vectorised), the reference elsewhere.

>>> import torch
>>> a, x = torch.rand(1, 9, 4), torch.randn(1, 9, 4)
>>> y1, h = linear_scan(a[:, :5], x[:, :5])
>>> y2, _ = linear_scan(a[:, 5:], x[:, 5:], h)
>>> torch.allclose(torch.cat([y1, y2], 1), linear_scan_ref(a, x)[0], atol=1e-6)
True
"""

from __future__ import annotations

import torch

from lc_models.ops import native


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


def linear_scan(a, x, h=None, backend="auto"):
    """``linear_scan_ref``'s result; ``backend``: "auto" (native on a CPU when the kernel is
    built), "native" or "torch"."""
    if not native.use_kernel(backend, x.device.type == "cpu", "linear-scan"):
        return linear_scan_ref(a, x, h)
    batch, _, channels = x.shape
    state = (torch.zeros(batch, channels) if h is None
             else h.float().contiguous().clone())  # (batch, channels), updated in place
    return native.linear_scan(a, x, state), state
