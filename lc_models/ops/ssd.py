"""Mamba-2 state-space duality (SSD) scan that starts from a given state and returns the final one.

The recurrence, per batch row b, head h (of ``nheads``, in group g = h // (nheads / ngroups)),
head channel p and state index n (shapes as in mamba_ssm's ``mamba_chunk_scan_combined``)::

    dt[b,t,h] = clamp(softplus?(dt[b,t,h] + dt_bias[h]), *dt_limit)
    S[b,h,p,n] = exp(dt[b,t,h] * A[h]) * S[b,h,p,n] + dt[b,t,h] * x[b,t,h,p] * B[b,t,g,n]
    y[b,t,h,p] = sum_n C[b,t,g,n] * S[b,h,p,n] + D[h] * x[b,t,h,p],   then  y *= silu(z)

``ssd_ref`` is that loop over tokens, the oracle. ``ssd`` computes the same through the kernel
``lc_models.ops.dispatch`` picks:

* ``"native"`` (CPU default): the oracle's loop in C with the state in registers
  (``lc_models.ops.native``, ``csrc/ssd_scan.c``); a token costs a multiply and two fused
  multiply-adds per state element, and no copies;
* ``"torch"`` (the fallback without a C compiler): matrix products over chunks of
  ``chunk_size`` tokens, below;
* ``"vendor"`` (alias ``"mamba_ssm"``; CUDA default when installed): mamba_ssm's
  ``mamba_chunk_scan_combined``, which takes the initial state.

The torch backend: within a chunk the output is a masked, decayed
"attention" C B^T; the state enters and leaves through the chunk's cumulative decay. Blocks of
``CHUNKS_PER_BLOCK`` chunks are computed at once (one Python iteration per block, so the op
count does not grow with L / chunk_size); memory is bounded by a block, independent of L.

Why not transformers' torch path (``modeling_mamba2.mamba2_chunk_scan``): it materialises every
chunk at once, (batch, chunks, chunk, chunk, heads) several times over, so its memory grows
linearly with L (gigabytes at 16k tokens); it copies B and C to every head before the C B^T
products (nheads / ngroups times the work); and it builds the decay matrix with a cumsum over a
(chunk, chunk) square. Here C B^T is formed once per group, and the decay matrix comes from
differences of a float64 cumsum (float32 differences would lose digits when the sum is large).

>>> import torch
>>> from lc_models.ops.ssd import ssd, ssd_ref
>>> x, B, C = torch.randn(1, 9, 2, 3), torch.randn(1, 9, 1, 4), torch.randn(1, 9, 1, 4)
>>> dt, A = torch.rand(1, 9, 2), -torch.rand(2)
>>> y1, s = ssd(x[:, :5], dt[:, :5], A, B[:, :5], C[:, :5], chunk_size=2, return_final_state=True)
>>> y2 = ssd(x[:, 5:], dt[:, 5:], A, B[:, 5:], C[:, 5:], chunk_size=2, initial_state=s)
>>> torch.allclose(torch.cat([y1, y2], 1), ssd_ref(x, dt, A, B, C), atol=1e-5)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lc_models.ops import dispatch, native
from lc_models.ops.scan_state import start_state
from lc_models.ops.selective_scan import LOG_FLUSH

# Tokens per chunk when the caller gives none. The intra-chunk work grows with the chunk and the
# state hand-over shrinks with it; 64 balances them on a CPU, GPUs prefer mamba_ssm's 256.
DEFAULT_CHUNK_SIZE = {"cpu": 64, "cuda": 256}
# Chunks computed together as one batch of matrix products; bounds memory to a block.
CHUNKS_PER_BLOCK = 16
BACKENDS = (*dispatch.KERNELS, "mamba_ssm")


def ssd_ref(
    x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
    dt_limit=(0.0, float("inf")), initial_state=None, return_final_state=False,
):
    """The recurrence above, one token at a time (the oracle). Same arguments as ``ssd``."""
    batch, L, nheads, headdim = x.shape
    dt = discretize(dt, dt_bias, dt_softplus, dt_limit)  # (batch, L, nheads)
    Bh, Ch = (_per_head(t.float(), nheads) for t in (B, C))  # (batch, L, nheads, d_state)
    xf, A = x.float(), A.float()
    S = start_state(initial_state, (batch, nheads, headdim, B.shape[-1]), x.device)
    ys = []
    for t in range(L):
        decay = torch.exp(dt[:, t] * A)[..., None, None]  # (batch, nheads, 1, 1)
        inp = (dt[:, t, :, None] * xf[:, t])[..., None] * Bh[:, t, :, None, :]
        S = decay * S + inp  # (batch, nheads, headdim, d_state)
        ys.append(torch.einsum("bhpn,bhn->bhp", S, Ch[:, t]))
    y = torch.stack(ys, 1) if ys else xf.new_zeros(x.shape)
    y = _finish(y, x, D, z)
    return (y, S) if return_final_state else y


def ssd(
    x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
    dt_limit=(0.0, float("inf")), initial_state=None, return_final_state=False, *,
    chunk_size=None, backend="auto",
):
    """SSD scan from ``initial_state``, chunk by chunk; no Python loop over tokens.

    x, z: (batch, L, nheads, headdim); dt: (batch, L, nheads); A, dt_bias: (nheads,);
    B, C: (batch, L, ngroups, d_state); D: (nheads,) or (nheads, headdim);
    initial_state: (batch, nheads, headdim, d_state) or None (zeros).
    Returns y (batch, L, nheads, headdim) in x's dtype, or ``(y, final_state)`` with a float32
    final_state (batch, nheads, headdim, d_state). ``backend``: one of ``BACKENDS``
    (see the module docstring); ``chunk_size`` applies to the torch and mamba_ssm backends.
    """
    backend = dispatch.choose("ssd", x, backend=backend)
    T = chunk_size or DEFAULT_CHUNK_SIZE.get(x.device.type, 64)
    if T < 1:
        raise ValueError(f"chunk_size must be >= 1, got {T}")
    if backend == "vendor":
        y, S = dispatch.vendor("ssd")(
            x, dt, A, B, C, T, D=D, z=z, dt_bias=dt_bias, initial_states=initial_state,
            dt_softplus=dt_softplus, dt_limit=dt_limit, return_final_states=True,
        )
        return (y, S.float()) if return_final_state else y
    batch, L, nheads, headdim = x.shape
    ngroups, d_state = B.shape[-2:]
    if nheads % ngroups:
        raise ValueError(f"nheads ({nheads}) must be a multiple of ngroups ({ngroups})")
    dt = discretize(dt, dt_bias, dt_softplus, dt_limit)
    S = start_state(initial_state, (batch, nheads, headdim, d_state), x.device)
    A = A.float()
    if backend == "native":  # D (one per head) fused in; S updated in place
        decay = (dt * A).clamp_(min=LOG_FLUSH).exp_()  # (batch, L, nheads)
        per_head = D is not None and D.dim() == 1
        y = native.ssd_scan(x.float(), dt, decay, B.float(), C.float(), S,
                            D if per_head else None)
        y = _finish(y, x, None if per_head else D, z)
        return (y, S) if return_final_state else y
    ys = []
    span = T * CHUNKS_PER_BLOCK  # tokens per batched block: a few dozen ops each, not per chunk
    for s in range(0, L, span):
        y_block, S = _block(x[:, s : s + span], dt[:, s : s + span], A, B[:, s : s + span],
                            C[:, s : s + span], S, T)
        ys.append(y_block)
    y = torch.cat(ys, 1) if ys else x.new_zeros(x.shape, dtype=torch.float32)
    y = _finish(y, x, D, z)
    return (y, S) if return_final_state else y


def _block(x, dt, A, B, C, S, T):
    """A block of up to CHUNKS_PER_BLOCK chunks of T tokens, all chunks at once.

    x: (batch, L, nheads, headdim); dt: (batch, L, nheads) float32; B, C: (batch, L, ngroups,
    d_state); S: (batch, nheads, headdim, d_state) float32, the state before the block.
    Returns y (batch, L, nheads, headdim) without D/z, and the state after the block.
    The tail is padded with dt = 0 and x = 0: decay 1 and no input, so the state is exact.
    """
    batch, L, nheads, headdim = x.shape
    ngroups = B.shape[2]
    per = nheads // ngroups
    pad = -L % T
    if pad:
        x, dt, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    K = (L + pad) // T  # chunks in this block
    dth = dt.view(batch, K, T, nheads).permute(0, 3, 1, 2)  # (b, h, K, T)
    xdt = x.float().view(batch, K, T, nheads, headdim).permute(0, 3, 1, 2, 4) * dth[..., None]
    Bg = B.float().view(batch, K, T, ngroups, -1).permute(0, 3, 1, 2, 4)  # (b, g, K, T, n)
    Cg = C.float().view(batch, K, T, ngroups, -1).permute(0, 3, 1, 2, 4)  # (b, g, K, T, n)
    log_cum = torch.cumsum(dth.double() * A.double()[:, None, None], -1)  # (b, h, K, T), <= 0
    # within each chunk, decay from token s to token t >= s: exp(log_cum[t] - log_cum[s])
    pairs = (log_cum[..., :, None] - log_cum[..., None, :]).float()  # (b, h, K, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    decay_ts = pairs.clamp_(LOG_FLUSH, 0.0).exp_().mul_(causal)
    scores = Cg @ Bg.transpose(-1, -2)  # (b, g, K, T, T), once per group
    mixed = decay_ts.view(batch, ngroups, per, K, T, T).mul_(scores[:, :, None])
    y = mixed.view(batch, nheads, K, T, T) @ xdt  # (b, h, K, T, headdim)
    # what each chunk adds to the state, from a zero start: (b, h, K, headdim, d_state)
    to_end = (log_cum[..., -1:] - log_cum).float().clamp_(min=LOG_FLUSH).exp_()  # (b, h, K, T)
    weighted = (xdt * to_end[..., None]).transpose(-1, -2)  # (b, h, K, headdim, T)
    added = (weighted.view(batch, ngroups, per, K, headdim, T) @ Bg[:, :, None]).view(
        batch, nheads, K, headdim, -1)
    # the state entering chunk k: S decayed over chunks < k, plus what chunk j < k added,
    # decayed over the chunks between (a (K+1) x (K+1) lower-triangular decay per head)
    ends = F.pad(log_cum[..., -1].cumsum(-1), (1, 0))  # (b, h, K + 1): log decay to chunk k
    between = (ends[..., :, None] - ends[..., None, :]).float()  # (b, h, K + 1, K + 1)
    lower = torch.ones(K + 1, K + 1, dtype=torch.bool, device=x.device).tril()
    carry = between.clamp_(LOG_FLUSH, 0.0).exp_().mul_(lower)
    sources = torch.cat([S[:, :, None], added], 2).flatten(3)  # (b, h, K + 1, headdim * n)
    states = (carry @ sources).view(batch, nheads, K + 1, headdim, -1)  # entering chunk k
    # each chunk reads the state it starts from, decayed to each of its tokens
    Sg = states[:, :, :K].reshape(batch, ngroups, per, K, headdim, -1)
    from_state = Cg[:, :, None] @ Sg.transpose(-1, -2)  # (b, g, per, K, T, headdim)
    reach = log_cum.float().clamp_(min=LOG_FLUSH).exp_()  # (b, h, K, T)
    y = y + from_state.view(batch, nheads, K, T, headdim) * reach[..., None]
    y = y.permute(0, 2, 3, 1, 4).reshape(batch, K * T, nheads, headdim)[:, :L]
    return y, states[:, :, K].contiguous()


def discretize(dt, dt_bias=None, dt_softplus=False, dt_limit=(0.0, float("inf"))):
    """The step sizes (batch, L, nheads), float32."""
    dt = dt.float()
    if dt_bias is not None:
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    if tuple(dt_limit) != (0.0, float("inf")):
        dt = dt.clamp(min=dt_limit[0], max=dt_limit[1])
    return dt


def _per_head(t, nheads):
    """(batch, L, ngroups, d_state) -> (batch, L, nheads, d_state), heads grouped in order."""
    return t.repeat_interleave(nheads // t.shape[2], dim=2)


def _finish(y, x, D, z):
    """Skip connection and gate: (y + D x) * silu(z), cast to x's dtype."""
    if D is not None:
        Df = D.float()
        y = y + x.float() * (Df[:, None] if Df.dim() == 1 else Df)
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(x.dtype)
