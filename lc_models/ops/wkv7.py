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

``wkv7_ref`` is that loop over tokens, the oracle. ``wkv7`` computes the same through the kernel
``lc_models.ops.dispatch`` picks: ``"vendor"`` (CUDA: fla's ``chunk_rwkv7``), ``"native"``
(CPU: ``csrc/wkv7_scan.c``, value channels in vector lanes, the head's state in L1, no
horizontal sums) or ``"torch"``, the chunked matrix form below (any device).

The torch form, over chunks of T tokens (``CHUNK``) from the state S_0 before the chunk, with
``g`` the cumulative log decay inside the chunk (every decay between two tokens is formed as
one exponent ``g_t - g_s`` <= 0, summed from its own terms, so strong decays never overflow
and weak ones lose nothing beside strong ones) and ``u_i = S_{i-1} a_i`` (the state along a,
the delta rule's "pseudo-value")::

    S_t = S_0 diag(e^g_t) + sum_{i<=t} (u_i b_i^T + v_i k_i^T) diag(e^(g_t - g_i))
    u_i = S_0 (a_i e^g_{i-1}) + sum_{j<i} A_ab[i,j] u_j + A_ak[i,j] v_j       (WY form)

``A_ab[i,j] = sum_c a_i[c] b_j[c] e^(g_{i-1}[c] - g_j[c])`` (strictly lower), likewise A_ak
with k; so ``U = (I - A_ab)^-1 (W S_0^T + A_ak V)``, ``W_i = a_i e^g_{i-1}``, is one
unit-triangular solve per chunk.
Split into what S_0 multiplies and what it does not, every chunk is ``o = O0 + R S_0^T`` and
``S_T = S_0 M + X``, with O0, R, M, X computed for ``CHUNKS_PER_BLOCK`` chunks at once;
only the hand-over of the state, one batched matrix product per chunk, is a Python loop.

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
import torch.nn.functional as F

from lc_models.ops import dispatch, native
from lc_models.ops.scan_state import start_state

BACKENDS = dispatch.KERNELS
CHUNK = 16  # tokens per chunk: the (T, T, N) decay factors grow with it
CHUNKS_PER_BLOCK = 16  # chunks whose matrices are formed together (memory: a block)


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
         backend="auto", chunk_size=None):
    """WKV7 from ``initial_state``; no Python loop over tokens.

    r, log_w, k, v, a, b: (batch, L, heads, N), ``log_w <= 0`` the log of the decay;
    initial_state: (batch, heads, N_value, N_key) or None (zeros). Returns (o (batch, L,
    heads, N) float32, final_state float32 or None). ``backend``: one of ``BACKENDS`` ("auto":
    see ``lc_models.ops.dispatch``); ``chunk_size``: tokens per chunk of the torch form.
    """
    kind = dispatch.choose("wkv7", r, backend=backend,
                           native_fits=r.shape[-1] <= native.wkv7_max_n(),
                           needs="CPU tensors, head size <= 256")
    S = _check(r, log_w, k, v, a, b, initial_state)
    if kind == "vendor":  # fla keeps its state as (N_key, N_value)
        o, S = dispatch.vendor("wkv7")(r, log_w, k, v, a, b, scale=1.0,
                                       initial_state=S.transpose(-1, -2).contiguous(),
                                       output_final_state=output_final_state)
        return o.float(), (S.float().transpose(-1, -2) if output_final_state else None)
    if kind == "native":  # S: updated in place
        o = native.wkv7_scan(r, log_w.float().exp(), k, v, a, b, S)
        return o, (S if output_final_state else None)
    T = chunk_size or CHUNK
    if T < 1:
        raise ValueError(f"chunk_size must be >= 1, got {T}")
    if r.shape[1] == 1:  # decoding: one step of the recurrence
        r, w, k, v, a, b = (t[:, 0].float() for t in (r, log_w.float().exp(), k, v, a, b))
        S, o = _step(S, r, w, k, v, a, b)
        return o[:, None], (S if output_final_state else None)
    outs = []
    span = T * CHUNKS_PER_BLOCK
    for s in range(0, r.shape[1], span):
        o, S = _block(*(t[:, s : s + span] for t in (r, log_w, k, v, a, b)), S, T)
        outs.append(o)
    o = torch.cat(outs, 1) if outs else r.new_zeros(r.shape, dtype=torch.float32)
    return o, (S if output_final_state else None)


def _block(r, log_w, k, v, a, b, S, T):
    """Up to CHUNKS_PER_BLOCK chunks of T tokens. r, log_w, k, v, a, b: (batch, L, heads, N);
    S: (batch, heads, N_v, N_k) float32, the state before. Returns (o (batch, L, heads, N),
    the state after). The tail is padded with zeros (log_w = 0: no decay; no input)."""
    batch, L, heads, n = r.shape
    pad = -L % T
    K = (L + pad) // T

    def chunked(t):  # (batch, L, heads, n) -> (batch, heads, K, T, n) float32
        t = F.pad(t.float(), (0, 0, 0, 0, 0, pad)) if pad else t.float()
        return t.view(batch, K, T, heads, n).permute(0, 3, 1, 2, 4)

    r, k, v, a, b, log_w = (chunked(t) for t in (r, k, v, a, b, log_w))
    # token t reads what token s <= t wrote through the decays of s+1 .. t: exp of their sum,
    # formed from the terms themselves (log_w[q] placed at (q, s) for q > s, summed over q),
    # not as a difference of two cumulative sums; every exponent <= 0. (b, h, K, T_t, T_s, n)
    ones = torch.ones(T, T, dtype=torch.bool, device=r.device)
    incl = log_w[..., :, None, :].masked_fill(ones.triu()[..., None], 0.0).cumsum(3)
    incl = incl.masked_fill_(ones.triu(1)[..., None], -float("inf")).exp_()
    g = log_w.cumsum(3)  # (b, h, K, T, n): log decay from the chunk start through t
    excl = F.pad(incl[..., :-1, :, :], (0, 0, 0, 0, 1, 0))  # row i: decays of s+1 .. i-1
    bk = torch.stack([b, k], -1)  # (b, h, K, T, n, 2)
    A = torch.einsum("...tsn,...snc->...tsc", excl * a[..., :, None, :], bk)  # A_ab, A_ak
    Q = torch.einsum("...tsn,...snc->...tsc", incl * r[..., :, None, :], bk)  # same, with r
    # [W | U0] = (I - A_ab)^-1 [a e^g_{t-1} | A_ak V]: u_t = W_t S_0^T + U0_t
    eye = torch.eye(T, device=r.device)
    g_prev = F.pad(g[..., :-1, :], (0, 0, 1, 0)).exp()  # (b, h, K, T, n)
    rhs = torch.cat([a * g_prev, A[..., 1] @ v], -1)  # (b, h, K, T, n_k + n_v)
    WU = torch.linalg.solve_triangular(eye - A[..., 0], rhs, upper=False, unitriangular=True)
    W, U0 = WU[..., :n], WU[..., n:]
    R = r * g.exp() + Q[..., 0] @ W  # (b, h, K, T, n_k): o_t = O0_t + S_0 R_t
    O0 = Q[..., 0] @ U0 + Q[..., 1] @ v  # (b, h, K, T, n_v)
    to_end = incl[..., -1, :, :]  # (b, h, K, T, n): decay from after t to the chunk's end
    M = torch.diag_embed(g[..., -1, :].exp()) + W.transpose(-1, -2) @ (b * to_end)
    X = U0.transpose(-1, -2) @ (b * to_end) + v.transpose(-1, -2) @ (k * to_end)
    # the hand-over: S <- S M_k + X_k, chunk by chunk, as (batch * heads) batched products
    M, X = (t.permute(2, 0, 1, 3, 4).reshape(K, batch * heads, n, n) for t in (M, X))
    S = S.reshape(batch * heads, n, n)
    starts = []
    for M_k, X_k in zip(M.unbind(0), X.unbind(0)):
        starts.append(S)
        S = torch.baddbmm(X_k, S, M_k)
    starts = torch.stack(starts, 1).view(batch, heads, K, n, n)  # the state entering chunk k
    o = O0 + R @ starts.transpose(-1, -2)  # (b, h, K, T, n_v)
    o = o.permute(0, 2, 3, 1, 4).reshape(batch, K * T, heads, n)[:, :L]
    return o, S.view(batch, heads, n, n)
