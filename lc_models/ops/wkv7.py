"""RWKV-7 ("Goose", x070) WKV recurrence, the generalized delta rule, from a given state.

Per batch row b and head h, with r, k, a, b of key size N, v of value size N, and a decay per
key channel ``w_t = exp(log_w_t)`` in (0, 1]::

    S_t = S_{t-1} diag(w_t) + (S_{t-1} a_t) b_t^T + v_t k_t^T    # S: (N_value, N_key), fp32
    o_t = S_t r_t                                                # (N_value,)

RWKV-7 calls it with ``a = -kk`` and ``b = kk * iclr`` (``kk`` the L2-normalized key, ``iclr``
the in-context learning rate), so ``S (1 - ...)`` removes part of what the state holds along
``kk`` before writing ``v k^T``. Both terms read the *previous* state, as BlinkDL's ``rwkv``
package does (``RWKV_x070_TMix_seq``: ``state * w + state @ ab + vk``); the state layout
(value, key) is the package's too.

``wkv7_ref`` is that loop over tokens, the oracle. ``wkv7`` computes the same through one of
two backends: ``"native"`` (CPU default, ``lc_models.ops.native``, ``csrc/wkv7_scan.c``: value
channels in vector lanes, the head's state in L1, no horizontal sums); ``"torch"``, the same
per-token loop batched over rows and heads (no chunked form: the delta rule's chunked
WY form pays off on GPUs, and ``native`` is the CPU path).

Same signature as fla's ``fused_recurrent_rwkv7`` up to the layout: ``(r, log_w, k, v, a, b,
initial_state, output_final_state) -> (o, final_state)``.

>>> import torch
>>> from lc_models.ops.wkv7 import wkv7, wkv7_ref
>>> g = torch.Generator().manual_seed(0)
>>> r, k, v, a, b = (torch.randn(1, 9, 2, 4, generator=g) for _ in range(5))
>>> log_w = -torch.rand(1, 9, 2, 4, generator=g)
>>> o1, s = wkv7(r[:, :5], log_w[:, :5], k[:, :5], v[:, :5], a[:, :5] * 0.1, b[:, :5] * 0.1,
...              output_final_state=True)
>>> o2, _ = wkv7(r[:, 5:], log_w[:, 5:], k[:, 5:], v[:, 5:], a[:, 5:] * 0.1, b[:, 5:] * 0.1,
...              initial_state=s)
>>> want, _ = wkv7_ref(r, log_w, k, v, a * 0.1, b * 0.1)
>>> bool(torch.allclose(torch.cat([o1, o2], 1), want, atol=1e-5))
True
"""

from __future__ import annotations

import torch

from lc_models.ops import native
from lc_models.ops.scan_state import start_state

BACKENDS = native.CPU_BACKENDS


def _check(r, log_w, k, v, a, b, initial_state):
    batch, _, heads, n = r.shape
    for name, t in (("log_w", log_w), ("k", k), ("v", v), ("a", a), ("b", b)):
        if t.shape != r.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}; r has {tuple(r.shape)}")
    return start_state(initial_state, (batch, heads, n, n), r.device)


def _step(S, r, w, k, v, a, b):
    """One token for every row and head: S (batch, heads, N_v, N_k); the rest (batch, heads, N)."""
    sa = torch.einsum("bhij,bhj->bhi", S, a)  # (batch, heads, N_v): the state along a
    S = S * w[:, :, None, :] + sa[..., None] * b[:, :, None, :] + v[..., None] * k[:, :, None, :]
    return S, torch.einsum("bhij,bhj->bhi", S, r)


def wkv7_ref(r, log_w, k, v, a, b, initial_state=None, output_final_state=True):
    """The recurrence above, one token at a time (the oracle). Same arguments as ``wkv7``."""
    S = _check(r, log_w, k, v, a, b, initial_state)  # (batch, heads, N_value, N_key)
    r, w, k, v, a, b = (t.float() for t in (r, log_w.float().exp(), k, v, a, b))
    out = []
    for t in range(r.shape[1]):
        S, o = _step(S, r[:, t], w[:, t], k[:, t], v[:, t], a[:, t], b[:, t])
        out.append(o)
    o = torch.stack(out, 1) if out else r.new_zeros(r.shape)
    return o, (S if output_final_state else None)


def wkv7(r, log_w, k, v, a, b, initial_state=None, output_final_state=False, *,
         backend="auto"):
    """WKV7 from ``initial_state``.

    r, log_w, k, v, a, b: (batch, L, heads, N), ``log_w <= 0`` the log of the decay;
    initial_state: (batch, heads, N_value, N_key) or None (zeros). Returns (o (batch, L,
    heads, N) float32, final_state float32 or None). ``backend``: one of ``BACKENDS``
    ("auto": native on a CPU when the kernel is built, else torch).
    """
    fits = r.device.type == "cpu" and r.shape[-1] <= native.wkv7_max_n()
    kernel = native.use_kernel(backend, fits, "wkv7", needs="CPU tensors, head size <= 256")
    S = _check(r, log_w, k, v, a, b, initial_state)
    if kernel:  # S: updated in place
        o = native.wkv7_scan(r, log_w.float().exp(), k, v, a, b, S)
        return o, (S if output_final_state else None)
    return wkv7_ref(r, log_w, k, v, a, b, S, output_final_state)
