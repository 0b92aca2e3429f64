"""Mamba-2 state-space duality (SSD) scan that starts from a given state and returns the final one.

The recurrence, per batch row b, head h (of ``nheads``, in group g = h // (nheads / ngroups)),
head channel p and state index n (shapes as in mamba_ssm's ``mamba_chunk_scan_combined``)::

    dt[b,t,h] = clamp(softplus?(dt[b,t,h] + dt_bias[h]), *dt_limit)
    S[b,h,p,n] = exp(dt[b,t,h] * A[h]) * S[b,h,p,n] + dt[b,t,h] * x[b,t,h,p] * B[b,t,g,n]
    y[b,t,h,p] = sum_n C[b,t,g,n] * S[b,h,p,n] + D[h] * x[b,t,h,p],   then  y *= silu(z)

``ssd_ref`` is that loop over tokens, the oracle. ``ssd`` computes the same with one Python
iteration per chunk of ``chunk_size`` tokens and only matrix products inside it: within a chunk
the output is a masked, decayed "attention" C B^T; the state enters and leaves through the chunk's
cumulative decay. Memory is O(batch * nheads * chunk_size^2 + the state), independent of L.

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

from lc_models.ops.selective_scan import LOG_FLUSH

# Tokens per chunk when the caller gives none. The intra-chunk work grows with the chunk and the
# state hand-over shrinks with it; 64 balances them on a CPU, GPUs prefer mamba_ssm's 256.
DEFAULT_CHUNK_SIZE = {"cpu": 64, "cuda": 256}

try:  # optional CUDA kernels; they take an initial state themselves
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined as _mamba_ssm_ssd
except Exception:  # noqa: BLE001  (ImportError, or a broken CUDA/triton build)
    _mamba_ssm_ssd = None


def ssd_ref(
    x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
    dt_limit=(0.0, float("inf")), initial_state=None, return_final_state=False,
):
    """The recurrence above, one token at a time (the oracle). Same arguments as ``ssd``."""
    batch, L, nheads, headdim = x.shape
    dt = discretize(dt, dt_bias, dt_softplus, dt_limit)  # (batch, L, nheads)
    Bh, Ch = (_per_head(t.float(), nheads) for t in (B, C))  # (batch, L, nheads, d_state)
    xf, A = x.float(), A.float()
    S = _initial_state(initial_state, batch, nheads, headdim, B.shape[-1], x.device)
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
    final_state (batch, nheads, headdim, d_state). ``backend``: "auto", "torch" or
    "mamba_ssm" (CUDA, when installed; it takes the initial state natively).
    """
    if backend not in ("auto", "torch", "mamba_ssm"):
        raise ValueError(f"unknown ssd backend {backend!r}; choose auto, torch or mamba_ssm")
    use_kernel = _mamba_ssm_ssd is not None and x.device.type == "cuda"
    if backend == "mamba_ssm" and not use_kernel:
        raise ValueError("backend='mamba_ssm' needs CUDA tensors and `pip install mamba-ssm`")
    T = chunk_size or DEFAULT_CHUNK_SIZE.get(x.device.type, 64)
    if T < 1:
        raise ValueError(f"chunk_size must be >= 1, got {T}")
    if use_kernel and backend != "torch":
        y, S = _mamba_ssm_ssd(
            x, dt, A, B, C, T, D=D, z=z, dt_bias=dt_bias, initial_states=initial_state,
            dt_softplus=dt_softplus, dt_limit=dt_limit, return_final_states=True,
        )
        return (y, S.float()) if return_final_state else y
    batch, L, nheads, headdim = x.shape
    ngroups, d_state = B.shape[-2:]
    if nheads % ngroups:
        raise ValueError(f"nheads ({nheads}) must be a multiple of ngroups ({ngroups})")
    dt = discretize(dt, dt_bias, dt_softplus, dt_limit)
    S = _initial_state(initial_state, batch, nheads, headdim, d_state, x.device)
    A = A.float()
    ys = []
    for s in range(0, L, T):
        y_chunk, S = _chunk(x[:, s : s + T], dt[:, s : s + T], A, B[:, s : s + T],
                            C[:, s : s + T], S)
        ys.append(y_chunk)
    y = torch.cat(ys, 1) if ys else x.new_zeros(x.shape, dtype=torch.float32)
    y = _finish(y, x, D, z)
    return (y, S) if return_final_state else y


def _chunk(x, dt, A, B, C, S):
    """One chunk of T tokens: returns y (batch, T, nheads, headdim) without D/z, and the state.

    x: (batch, T, nheads, headdim); dt: (batch, T, nheads) float32; B, C: (batch, T, ngroups,
    d_state); S: (batch, nheads, headdim, d_state) float32, the state before the chunk.
    """
    batch, T, nheads, headdim = x.shape
    ngroups = B.shape[2]
    per = nheads // ngroups
    dth = dt.transpose(1, 2)  # (batch, nheads, T)
    xdt = x.float().permute(0, 2, 1, 3) * dth[..., None]  # (batch, nheads, T, headdim)
    Bg = B.float().permute(0, 2, 1, 3)  # (batch, ngroups, T, d_state)
    Cg = C.float().permute(0, 2, 1, 3)  # (batch, ngroups, T, d_state)
    log_cum = torch.cumsum(dth.double() * A.double()[:, None], -1)  # (batch, nheads, T), <= 0
    # decay from token s to token t >= s: exp(log_cum[t] - log_cum[s]); zero above the diagonal
    pairs = (log_cum[..., :, None] - log_cum[..., None, :]).float()  # (batch, nheads, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    decay_ts = pairs.clamp_(LOG_FLUSH, 0.0).exp_().mul_(causal)
    scores = Cg @ Bg.transpose(-1, -2)  # (batch, ngroups, T, T), once per group
    mixed = decay_ts.view(batch, ngroups, per, T, T).mul_(scores[:, :, None])
    y = mixed.view(batch, nheads, T, T) @ xdt  # (batch, nheads, T, headdim)
    # the incoming state, read by C and decayed to each token
    Sg = S.view(batch, ngroups, per, headdim, -1)
    from_state = Cg[:, :, None] @ Sg.transpose(-1, -2)  # (batch, ngroups, per, T, headdim)
    reach = log_cum.float().clamp_(min=LOG_FLUSH).exp_()  # (batch, nheads, T)
    y = y + from_state.view(batch, nheads, T, headdim) * reach[..., None]
    # the outgoing state: the old one decayed over the chunk plus each token's input
    to_end = (log_cum[..., -1:] - log_cum).float().clamp_(min=LOG_FLUSH).exp_()  # (b, h, T)
    weighted = (xdt * to_end[..., None]).transpose(-1, -2)  # (batch, nheads, headdim, T)
    added = weighted.view(batch, ngroups, per, headdim, T) @ Bg[:, :, None]
    S = S * reach[..., -1, None, None] + added.view(batch, nheads, headdim, -1)
    return y.permute(0, 2, 1, 3), S


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


def _initial_state(initial_state, batch, nheads, headdim, d_state, device):
    shape = (batch, nheads, headdim, d_state)
    if initial_state is None:
        return torch.zeros(shape, dtype=torch.float32, device=device)
    if tuple(initial_state.shape) != shape:
        raise ValueError(f"initial_state must have shape {shape}, got "
                         f"{tuple(initial_state.shape)}")
    return initial_state.float().clone()


def _finish(y, x, D, z):
    """Skip connection and gate: (y + D x) * silu(z), cast to x's dtype."""
    if D is not None:
        Df = D.float()
        y = y + x.float() * (Df[:, None] if Df.dim() == 1 else Df)
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(x.dtype)
