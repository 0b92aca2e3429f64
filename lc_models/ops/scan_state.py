"""The state a scan starts from, shared by the SSD (Mamba-2), WKV6 and WKV7 ops."""

from __future__ import annotations

import torch


def start_state(initial_state, shape: tuple[int, ...], device) -> torch.Tensor:
    """The fp32 state a scan starts from: zeros of ``shape``, or a checked fp32 copy of
    ``initial_state`` (the caller's tensor is never modified)."""
    if initial_state is None:
        return torch.zeros(shape, dtype=torch.float32, device=device)
    if tuple(initial_state.shape) != shape:
        raise ValueError(f"initial_state must have shape {shape}, got "
                         f"{tuple(initial_state.shape)}")
    return initial_state.float().clone()
