"""RWKV-6 ("Finch", x060) WKV recurrence that starts from a given state and returns the final one.

Per batch row b and head h, with r, k, v of ``head_size`` N, a data-dependent decay per key
channel ``w_t = exp(log_w_t)`` in (0, 1] and the per-head bonus ``u`` (``time_faaaa``)::

    o_t = r_t (S + diag(u) k_t^T v_t)           # (N,) = (N,) @ (N_key, N_value)
    S  <- diag(w_t) S + k_t^T v_t               # S: (N_key, N_value), float32

``wkv6_ref`` is that loop over tokens, the oracle. ``wkv6`` computes the same through the
kernel ``lc_models.ops.dispatch`` picks: ``"vendor"`` (CUDA: fla's ``chunk_rwkv6``, scale 1);
``"native"`` (CPU) runs the oracle's loop in C with the state in
registers (``lc_models.ops.native``, ``csrc/wkv6_scan.c``: three vector operations per state
element and token); ``"torch"`` (any device) works over chunks of
``CHUNK`` tokens, ``CHUNKS_PER_BLOCK`` chunks at once (one Python iteration per block):

* within a chunk, token t reads token s < t through the decay accumulated between them,
  ``exp(a_excl[t] - a_incl[s])`` per key channel (``a`` the cumulative log decay, summed in
  float64). This
  (T, T, N) factor is formed explicitly rather than split into ``exp(a_t) * exp(-a_s)``,
  because real RWKV-6 decays reach ``w ~ 1e-3`` per token, and ``exp(-a_s)`` would overflow
  float32 within a few tokens; every exponent used here is <= 0;
* the state enters and leaves each chunk through its cumulative decay, and the states
  entering the chunks of a block come from one lower-triangular decay matrix per key channel
  (as in ``lc_models.ops.ssd``).

Same signature as fla's RWKV-6 ops: ``(r, k, v, log_w, u, initial_state, output_final_state)
-> (o, final_state)``.

>>> import torch
>>> from lc_models.ops.wkv6 import wkv6, wkv6_ref
>>> g = torch.Generator().manual_seed(0)
>>> r, k, v = (torch.randn(1, 9, 2, 4, generator=g) for _ in range(3))
>>> log_w, u = -torch.rand(1, 9, 2, 4, generator=g), torch.randn(2, 4, generator=g)
>>> o1, s = wkv6(r[:, :5], k[:, :5], v[:, :5], log_w[:, :5], u, output_final_state=True)
>>> o2, _ = wkv6(r[:, 5:], k[:, 5:], v[:, 5:], log_w[:, 5:], u, initial_state=s)
>>> bool(torch.allclose(torch.cat([o1, o2], 1), wkv6_ref(r, k, v, log_w, u)[0], atol=1e-5))
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lc_models.ops import dispatch, native
from lc_models.ops.scan_state import start_state

# Tokens per chunk (the (T, T, N) intra-chunk factor grows with it) and chunks per block.
CHUNK = 16
CHUNKS_PER_BLOCK = 8
BACKENDS = dispatch.KERNELS


def _check(r, k, v, log_w, u, initial_state):
    batch, _, heads, n = r.shape
    for name, t in (("k", k), ("v", v), ("log_w", log_w)):
        if t.shape != r.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}; r has {tuple(r.shape)}")
    if tuple(u.shape) != (heads, n):
        raise ValueError(f"u must have shape {(heads, n)}, got {tuple(u.shape)}")
    return start_state(initial_state, (batch, heads, n, n), r.device)


def wkv6_ref(r, k, v, log_w, u, initial_state=None, output_final_state=True):
    """The recurrence above, one token at a time (the oracle). Same arguments as ``wkv6``."""
    S = _check(r, k, v, log_w, u, initial_state)  # (batch, heads, N_key, N_value)
    r, k, v, w, u = r.float(), k.float(), v.float(), log_w.float().exp(), u.float()
    out = []
    for t in range(r.shape[1]):
        kv = k[:, t, :, :, None] * v[:, t, :, None, :]  # (batch, heads, N, N)
        out.append(torch.einsum("bhk,bhkv->bhv", r[:, t], S + u[..., None] * kv))
        S = w[:, t, :, :, None] * S + kv
    o = torch.stack(out, 1) if out else r.new_zeros(r.shape)
    return o, (S if output_final_state else None)


def wkv6(r, k, v, log_w, u, initial_state=None, output_final_state=False, *, backend="auto"):
    """WKV6 from ``initial_state``; no Python loop over tokens.

    r, k, v, log_w: (batch, L, heads, N), ``log_w <= 0`` the log of the decay;
    u: (heads, N); initial_state: (batch, heads, N_key, N_value) or None (zeros).
    Returns (o (batch, L, heads, N) float32, final_state float32 or None). ``backend``: one of
    ``BACKENDS`` ("auto": see ``lc_models.ops.dispatch``).
    """
    kind = dispatch.choose("wkv6", r, backend=backend)
    S = _check(r, k, v, log_w, u, initial_state)
    if kind == "vendor":  # fla's state is (N_key, N_value) too
        o, S = dispatch.vendor("wkv6")(r, k, v, log_w, u, scale=1.0, initial_state=S,
                                       output_final_state=output_final_state)
        return o.float(), (S.float() if output_final_state else None)
    if kind == "native":  # S: updated in place
        o = native.wkv6_scan(r, k, v, log_w.float().exp(), u, S)
        return o, (S if output_final_state else None)
    r, k, v, log_w, u = r.float(), k.float(), v.float(), log_w.float(), u.float()
    L = r.shape[1]
    if L == 1:  # decoding: one step of the recurrence
        kv = k[:, 0, :, :, None] * v[:, 0, :, None, :]  # (batch, heads, N, N)
        o = torch.einsum("bhk,bhkv->bhv", r[:, 0], S + u[..., None] * kv)[:, None]
        S = log_w[:, 0, :, :, None].exp() * S + kv
        return o, (S if output_final_state else None)
    outs = []
    span = CHUNK * CHUNKS_PER_BLOCK
    for s in range(0, L, span):
        o, S = _block(r[:, s : s + span], k[:, s : s + span], v[:, s : s + span],
                      log_w[:, s : s + span], u, S)
        outs.append(o)
    o = torch.cat(outs, 1) if outs else r.new_zeros(r.shape)
    return o, (S if output_final_state else None)


def _block(r, k, v, log_w, u, S):
    """Up to CHUNKS_PER_BLOCK chunks of CHUNK tokens at once.

    r, k, v, log_w: (batch, L, heads, N) float32; S: (batch, heads, N, N), the state before.
    The tail is padded with k = v = r = 0 and log_w = 0: no input, no decay, the state exact.
    """
    batch, L, heads, n = r.shape
    T = CHUNK
    pad = -L % T
    if pad:
        r, k, v, log_w = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (r, k, v, log_w))
    K = (L + pad) // T

    def chunked(t):  # (batch, K*T, heads, n) -> (batch, heads, K, T, n)
        return t.view(batch, K, T, heads, n).permute(0, 3, 1, 2, 4)

    r, k, v, log_w = chunked(r), chunked(k), chunked(v), chunked(log_w.double())
    # log decays accumulate in float64: one token's log_w can be -400, and float32 differences
    # of such sums would lose the small decays of the other tokens
    a_incl = log_w.cumsum(3)  # (b, h, K, T, n): log decay through token t, <= 0
    a_excl = a_incl - log_w  # through token t - 1
    # token t reads token s < t with the decay of tokens s+1 .. t-1: (b, h, K, T_t, T_s, n)
    pairs = (a_excl[..., :, None, :] - a_incl[..., None, :, :]).float()
    strict = torch.ones(T, T, dtype=torch.bool, device=r.device).tril(-1)[..., None]
    decay_ts = pairs.clamp_(max=0.0).exp_().mul_(strict)
    scores = (decay_ts.mul_(r[..., :, None, :]) * k[..., None, :, :]).sum(-1)  # (b,h,K,T,T)
    bonus = (r * u[:, None, None, :] * k).sum(-1)  # (b, h, K, T): the token's own k v
    o = scores @ v + bonus[..., None] * v  # (b, h, K, T, n)
    # what each chunk adds to the state from a zero start, at its end: (b, h, K, n, n)
    to_end = (a_incl[..., -1:, :] - a_incl).float().exp()  # (b, h, K, T, n)
    added = (k * to_end).transpose(-1, -2) @ v
    # states entering chunk k = sum over sources j <= k, decayed per key channel
    ends = F.pad(a_incl[..., -1, :].cumsum(2), (0, 0, 1, 0))  # (b, h, K + 1, n)
    between = (ends[:, :, :, None] - ends[:, :, None]).float()  # (b, h, K + 1, K + 1, n)
    lower = torch.ones(K + 1, K + 1, dtype=torch.bool, device=r.device).tril()[..., None]
    carry = between.clamp_(max=0.0).exp_().mul_(lower)
    sources = torch.cat([S[:, :, None], added], 2)  # (b, h, K + 1, n_key, n_value)
    states = torch.einsum("bhkjn,bhjnm->bhknm", carry, sources)  # entering chunk k
    o = o + (r * a_excl.float().exp()) @ states[:, :, :K]  # what each token reads of the state
    o = o.permute(0, 2, 3, 1, 4).reshape(batch, K * T, heads, n)[:, :L]
    return o, states[:, :, K].contiguous()
