"""Mamba-1 selective scan that starts from a given state and returns the final one.

The recurrence, per batch row b, channel d and state index n (shapes as in mamba_ssm)::

    dt[b,d,t] = softplus?(delta[b,d,t] + delta_bias[d])
    h[b,d,n]  = exp(dt[b,d,t] * A[d,n]) * h[b,d,n] + dt[b,d,t] * B[b,n,t] * u[b,d,t]
    y[b,d,t]  = sum_n C[b,n,t] * h[b,d,n] + D[d] * u[b,d,t],   then  y *= silu(z[b,d,t])

``selective_scan_ref`` is that loop over tokens, the oracle. ``selective_scan`` computes the
same numbers without a Python loop over tokens, through the kernel ``lc_models.ops.dispatch``
picks:

* ``"native"`` (CPU default): a compiled C loop, state in registers (``lc_models.ops.native``);
* ``"torch"``: chunks of ``chunk_size`` tokens in matrix form, a block of them at once
  (``_block``); memory is O(batch * d_inner * BLOCK_TOKENS * chunk_size * d_state),
  independent of L;
* ``"vendor"`` (alias ``"mamba_ssm"``; CUDA default when installed): mamba_ssm's zero-state
  kernel plus the contribution of the initial state, which the recurrence carries linearly
  (``add_initial_state``).

All backends compute in float32 and return y in the dtype of ``u``; the state is float32.
Decays below exp(-60) are raised to exp(-60): it keeps CPUs off the slow subnormal path, and the
error it adds is below 1e-26 times the state it multiplies.

>>> import torch
>>> from lc_models.ops.selective_scan import selective_scan, selective_scan_ref
>>> u, delta, z = torch.randn(3, 2, 4, 10).unbind(0)
>>> A, B, C = -torch.rand(4, 8), torch.randn(2, 8, 10), torch.randn(2, 8, 10)
>>> y1, h = selective_scan(u[..., :6], delta[..., :6], A, B[..., :6], C[..., :6],
...                        delta_softplus=True, return_final_state=True)
>>> y2 = selective_scan(u[..., 6:], delta[..., 6:], A, B[..., 6:], C[..., 6:],
...                     delta_softplus=True, initial_state=h)
>>> y = selective_scan_ref(u, delta, A, B, C, delta_softplus=True)
>>> torch.allclose(torch.cat([y1, y2], -1), y, atol=1e-5)
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from lc_models.ops import dispatch, native
from lc_models.ops.chunk_scan import chunk_masks, decayed_chunks
from lc_models.ops.scan_state import start_state

BACKENDS = (*dispatch.KERNELS, "mamba_ssm")
# Tokens per chunk of the torch backend: the (chunk, chunk, d_state) decay factor per channel
# grows with it; chunks of BLOCK_TOKENS tokens together are one Python iteration.
DEFAULT_CHUNK_SIZE = 8
BLOCK_TOKENS = 64
# Tokens per step of the mamba_ssm wrapper's initial-state correction (memory per step:
# (batch, d_inner, STATE_SPAN, d_state)).
STATE_SPAN = 256
LOG_FLUSH = -60.0  # decays exp(x) are floored at exp(LOG_FLUSH), never subnormal


def selective_scan_ref(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    initial_state=None,
    return_final_state=False,
):
    """The recurrence above, one token at a time (the oracle). Same arguments as
    ``selective_scan``."""
    dt = discretize(delta, delta_bias, delta_softplus)  # (batch, d_inner, L)
    uf, A, B, C = u.float(), A.float(), B.float(), C.float()
    batch, d_inner, L = u.shape
    h = _initial_state(initial_state, batch, A)  # (batch, d_inner, d_state)
    ys = []
    for t in range(L):
        decay = torch.exp(dt[:, :, t, None] * A)  # (batch, d_inner, d_state)
        h = decay * h + (dt[:, :, t] * uf[:, :, t])[..., None] * B[:, None, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))
    y = torch.stack(ys, dim=-1) if ys else uf.new_zeros(batch, d_inner, 0)
    y = _finish(y, u, D, z)
    return (y, h) if return_final_state else y


def selective_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    initial_state=None,
    return_final_state=False,
    *,
    chunk_size=None,
    backend="auto",
):
    """Selective scan from ``initial_state``; no Python loop over tokens.

    u, delta, z: (batch, d_inner, L); A: (d_inner, d_state); B, C: (batch, d_state, L);
    D, delta_bias: (d_inner,); initial_state: (batch, d_inner, d_state) or None (zeros).
    Returns y (batch, d_inner, L) in u's dtype, or ``(y, final_state)`` with a float32
    final_state (batch, d_inner, d_state) when ``return_final_state``.
    ``chunk_size`` applies to the torch backend (default ``DEFAULT_CHUNK_SIZE``);
    ``backend`` is one of ``BACKENDS``.
    """
    _check_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state)
    backend = dispatch.choose("selective_scan", u, backend=backend,
                              native_fits=A.shape[1] <= native.max_state(),
                              needs="CPU tensors, d_state <= the kernel's limit")
    if backend == "native" and not _decaying(A, delta, delta_bias, delta_softplus):
        backend = "torch"  # the kernel's vector exp is for dt * A <= 0 only
    if backend == "vendor":
        y, h = add_initial_state(
            dispatch.vendor("selective_scan"),
            u,
            delta,
            A,
            B,
            C,
            D,
            z,
            delta_bias,
            delta_softplus,
            initial_state,
            chunk_size=chunk_size,
        )
        return (y, h) if return_final_state else y
    h = _initial_state(initial_state, u.shape[0], A)
    if backend == "native":  # discretisation, D and z fused in; updates h in place
        y = native.scan(u, delta, A, B, C, h, D, z, delta_bias, delta_softplus).to(u.dtype)
    else:
        dt = discretize(delta, delta_bias, delta_softplus)
        y, h = scan_chunked(u.float(), dt, A.float(), B.float(), C.float(), h, chunk_size)
        y = _finish(y, u, D, z)
    return (y, h) if return_final_state else y


def discretize(delta, delta_bias=None, delta_softplus=False) -> torch.Tensor:
    """The step sizes dt (batch, d_inner, L), float32."""
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()[:, None]
    return F.softplus(dt) if delta_softplus else dt


def decay(log_decay: torch.Tensor) -> torch.Tensor:
    """exp(log_decay) for log_decay <= 0, floored at exp(LOG_FLUSH). Overwrites its argument."""
    return log_decay.clamp_(min=LOG_FLUSH).exp_()


def scan_chunked(u, dt, A, B, C, h, chunk_size=None):
    """Torch backend on float32 inputs: returns (y without D/z, final state).

    u, dt: (batch, d_inner, L); A: (d_inner, d_state); B, C: (batch, d_state, L); h: (batch,
    d_inner, d_state), the state before. Chunks of ``chunk_size`` tokens (default
    ``DEFAULT_CHUNK_SIZE``), ``BLOCK_TOKENS`` tokens' worth of them at once (``_block``); memory
    is bounded by a block, independent of L.
    """
    T = chunk_size or DEFAULT_CHUNK_SIZE
    if T < 1:
        raise ValueError(f"chunk_size must be >= 1, got {T}")
    span = T * max(1, BLOCK_TOKENS // T)
    masks = chunk_masks(T, span // T, u.device)
    ys = []
    A = A[:, None]  # (d_inner, 1, d_state)
    for s in range(0, u.shape[-1], span):
        y, h = _block(u[..., s : s + span], dt[..., s : s + span], A, B[..., s : s + span],
                      C[..., s : s + span], h, T, masks)
        ys.append(y)
    y = torch.cat(ys, -1) if ys else u.new_zeros(u.shape)
    return y, h.contiguous()


def _block(u, dt, A, B, C, h, T, masks):
    """The chunks of T tokens in (batch, d_inner, L) inputs, all at once; A: (d_inner, 1,
    d_state); masks: ``scan_chunked``'s. Returns (y (batch, d_inner,
    L) without D/z, the state after). The tail is padded with dt = u = 0: decay 1 and
    no input, so the state is exact. The recurrence per (channel, state index), log decay
    dt * A and input dt * u * B, is ``chunk_scan.decayed_chunks``'s, with every exponent
    floored at LOG_FLUSH.
    """
    batch, d_inner, L = u.shape
    n = A.shape[-1]
    pad = -L % T
    if pad:
        u, dt, B, C = (F.pad(t, (0, pad)) for t in (u, dt, B, C))
    K = (L + pad) // T
    dA = (dt[..., None] * A).view(batch, d_inner, K, T, n)  # (b, d, K, T, n): log decays
    Bc, Cc = (t.view(batch, n, K, T).permute(0, 2, 3, 1)[:, None] for t in (B, C))  # (b,1,K,T,n)
    x = (dt * u).view(batch, d_inner, K, T, 1) * Bc  # (b, d, K, T, n): each token's input
    states, h = decayed_chunks(dA, x, h, masks, floor=LOG_FLUSH)  # (b, d, K, T, n), (b, d, n)
    y = (states * Cc).sum(-1)  # (b, d, K, T)
    return y.view(batch, d_inner, K * T)[..., :L], h


def add_initial_state(
    zero_state_scan: Callable,
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    initial_state=None,
    chunk_size=None,
):
    """Scan with a zero-state kernel, then add what ``initial_state`` contributes.

    ``zero_state_scan`` has mamba_ssm's ``selective_scan_fn`` signature (no initial state,
    ``return_last_state``). The state h0 reaches token t decayed by exp(A * cumsum(dt)[t]), so
    y gains C[t] . (decay[t] * h0), gated by silu(z), and the final state gains decay[L-1] * h0.
    Returns (y, final_state) like ``selective_scan``.
    """
    y, h = zero_state_scan(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state=True
    )
    h = h.float()
    if initial_state is None:
        return y, h
    dt = discretize(delta, delta_bias, delta_softplus)
    A, h0 = A.float(), initial_state.float()
    T = chunk_size or STATE_SPAN
    offset = dt.new_zeros(dt.shape[:2])  # (batch, d_inner): sum of dt before the chunk
    extra = []
    for s in range(0, u.shape[-1], T):
        log_cum = offset[..., None] + dt[..., s : s + T].cumsum(-1)  # (batch, d_inner, T)
        reach = decay(log_cum[..., None] * A[:, None, :]) * h0[:, :, None, :]
        extra.append(torch.einsum("bdtn,bnt->bdt", reach, C[..., s : s + T].float()))
        offset = log_cum[..., -1]
    if extra:
        extra = torch.cat(extra, -1)
        if z is not None:
            extra = extra * F.silu(z.float())
        y = (y.float() + extra).to(u.dtype)
    h = h + decay(offset[..., None] * A) * h0
    return y, h


def _finish(y, u, D, z):
    """Skip connection and gate: (y + D u) * silu(z), cast to u's dtype."""
    if D is not None:
        y = y + u.float() * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(u.dtype)


def _initial_state(initial_state, batch, A):
    """(batch, d_inner, d_state) fp32: zeros, or a checked contiguous copy (one start_state)."""
    return start_state(initial_state, (batch, *A.shape), A.device).contiguous()


def _decaying(A, delta, delta_bias, delta_softplus) -> bool:
    """Whether every dt * A is <= 0 (each step decays the state), as in every Mamba: A < 0
    and dt > 0, by the softplus or by delta itself."""
    if bool((A > 0).any()):
        return False
    if delta_softplus:
        return True
    dt = delta if delta_bias is None else delta + delta_bias[:, None]
    return bool((dt >= 0).all())


def _check_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state):
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, d_inner, L), got shape {tuple(u.shape)}")
    batch, d_inner, L = u.shape
    d_state = A.shape[-1]
    expected = {
        "delta": (delta, (batch, d_inner, L)),
        "A": (A, (d_inner, d_state)),
        "B": (B, (batch, d_state, L)),
        "C": (C, (batch, d_state, L)),
        "D": (D, (d_inner,)),
        "z": (z, (batch, d_inner, L)),
        "delta_bias": (delta_bias, (d_inner,)),
        "initial_state": (initial_state, (batch, d_inner, d_state)),
    }
    for name, (tensor, shape) in expected.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
