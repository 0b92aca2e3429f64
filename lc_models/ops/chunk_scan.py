"""The chunked torch form of a diagonal linear recurrence, shared by ``selective_scan``
(Mamba-1) and ``linear_scan`` (RecurrentGemma's RG-LRU):

    h_t = exp(log_decay_t) * h_{t-1} + x_t      (per channel, log_decay_t <= 0)

over chunks of T tokens, all chunks of a block at once. Within a chunk, token t reads token
s <= t through exp(P[t, s]), P[t, s] the sum of log_decay over s+1 .. t, formed as a
cumulative sum of those terms themselves (not as a difference of two cumulative sums, which
would lose the small terms beside large ones in float32): every exponent is <= 0 and as exact
as float32 holds it. The states entering the chunks come from one (K + 1, K + 1) decay matrix
per channel (differences of float64 sums), as in ``lc_models.ops.ssd``.

Each op keeps its ``*_ref`` (a loop over tokens), which the tests hold this form to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["chunk_masks", "decayed_chunks"]


def chunk_masks(T: int, chunks: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (rows, columns, 1) boolean masks of ``decayed_chunks`` for chunks of ``T`` tokens,
    at most ``chunks`` of them: where a token reads nothing (``after``, (T, T)), where a row's
    term is not in a column's sum (``not_after``, (T, T)), and where a chunk reads no earlier
    chunk (``later``, (chunks + 1, chunks + 1))."""
    size = max(T, chunks + 1)
    ones = torch.ones(size, size, dtype=torch.bool, device=device)
    return (ones[:T, :T].triu(1)[..., None], ones[:T, :T].triu()[..., None],
            ones[: chunks + 1, : chunks + 1].triu(1)[..., None])


def decayed_chunks(log_decay: torch.Tensor, x: torch.Tensor, h: torch.Tensor, masks,
                   floor: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrence over K chunks of T tokens at once.

    log_decay, x: (..., K, T, n) float32, each token's log decay and input; h: (..., n)
    float32, the state before; masks: ``chunk_masks(T, >= K)``; floor: where given, every
    exponent is clamped to it (no subnormal decays). Returns (the state after each token,
    (..., K, T, n); the state after the last chunk, (..., n)). Overwrites ``log_decay``.
    """
    after, not_after, later = masks
    K = x.shape[-3]

    def floored(t: torch.Tensor) -> torch.Tensor:
        return t if floor is None else t.clamp_(min=floor)

    # P[t, s]: log_decay[r] placed at (r, s) for r > s, summed over r. (..., K, T_t, T_s, n)
    pairs = log_decay[..., :, None, :].masked_fill(not_after, 0.0).cumsum(-3)
    pairs = floored(pairs).masked_fill_(after, -float("inf")).exp_()
    local = pairs.mul_(x[..., None, :, :]).sum(-2)  # (..., K, T, n): each chunk from zero
    # the state entering chunk k: h decayed over the chunks < k, plus each chunk j < k's end
    g = log_decay.cumsum(-2)  # (..., K, T, n): log decay from the chunk start through t
    ends = F.pad(g[..., -1, :].double().cumsum(-2), (0, 0, 1, 0))  # (..., K + 1, n): to k
    carry = floored((ends[..., :, None, :] - ends[..., None, :, :]).float())  # <= 0 below
    carry = carry.masked_fill_(later[: K + 1, : K + 1], -float("inf")).exp_()
    sources = torch.cat([h[..., None, :], local[..., -1, :]], -2)  # (..., K + 1, n)
    states = carry.mul_(sources[..., None, :, :]).sum(-2)  # (..., K + 1, n): entering k
    local = local.addcmul_(floored(g).exp_(), states[..., :K, None, :])
    return local, states[..., K, :]
