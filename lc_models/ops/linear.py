"""fp32 linear layers through oneDNN's GEMM where it beats torch's default on this CPU.

torch computes an fp32 ``F.linear`` on a CPU with MKL's sgemm. MKL picks its code path by
CPU vendor, and on AMD processors it runs its AVX2 kernels even where the CPU has AVX-512:
on the project's Zen 5 machine a (1024 x 768) x (768 x 3072) product runs at about 190
GFLOP/s through ``F.linear`` and about 440 GFLOP/s through oneDNN (``torch.ops.mkldnn.
_linear_pointwise``, the op torch's own compiler emits for CPU linears), with the same inputs
and results equal to rounding (relative differences below 1e-6: another summation order).

``linear_ref`` is ``F.linear``; ``linear`` is the same product through oneDNN, and
``fast_linear`` whichever of the two is faster for the call.
``fast_backend()`` times both once per process on a layer-sized product and checks that they
agree; ``patch(model)`` then routes every fp32 ``nn.Linear`` of ``model`` through the faster
one for calls of at least ``MIN_MACS`` multiply-adds (nothing changes where MKL is as fast,
e.g. on Intel CPUs, or where torch has no oneDNN).
``LC_EVAL_ONEDNN=0`` keeps torch's default.

>>> import torch
>>> x, w = torch.randn(5, 16), torch.randn(8, 16)
>>> torch.allclose(linear(x, w), linear_ref(x, w), atol=1e-5)
True
"""

from __future__ import annotations

import functools
import logging
import os
import time
import types

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

linear_ref = F.linear
# a layer-sized product for the timing: (tokens, d_model) x (d_model, 3 d_model)
PROBE = (256, 768, 2304)
FASTER_BY = 1.15  # oneDNN is used only when it is at least this much faster
# Below this many multiply-adds per call oneDNN's fixed cost (~15 us a call here, against
# ~2 us for F.linear) outweighs its faster kernel: small layers and tiny models keep F.linear.
MIN_MACS = 1 << 21


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """``F.linear(x, weight, bias)`` through oneDNN. x: (..., in); weight: (out, in)."""
    if x.numel() == 0:
        return linear_ref(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1])  # (rows, in), a view when it can be
    out = torch.ops.mkldnn._linear_pointwise(flat, weight, bias, "none", [], "")
    return out.view(*x.shape[:-1], weight.shape[0])


@functools.cache
def fast_backend() -> str:
    """"onednn" when oneDNN's fp32 GEMM is faster here and agrees with ``F.linear``, else
    "torch" (timed once per process, about 50 ms)."""
    if os.environ.get("LC_EVAL_ONEDNN", "1") == "0" or not torch.backends.mkldnn.is_available():
        return "torch"
    rows, d_in, d_out = PROBE
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(rows, d_in, generator=g), torch.randn(d_out, d_in, generator=g)
    try:
        expected, got = linear_ref(x, w), linear(x, w)
    except RuntimeError as err:  # an op this build lacks
        logger.info("oneDNN linear unavailable: %s", err)
        return "torch"
    if ((got - expected).abs().max() / expected.abs().max()).item() > 1e-5:
        logger.warning("oneDNN's fp32 linear disagrees with torch's here; not used")
        return "torch"
    seconds = {name: _best_time(fn, x, w) for name, fn in (("torch", linear_ref),
                                                            ("onednn", linear))}
    choice = "onednn" if seconds["torch"] > FASTER_BY * seconds["onednn"] else "torch"
    logger.info("fp32 linear: torch %.2f ms, oneDNN %.2f ms -> %s", 1e3 * seconds["torch"],
                1e3 * seconds["onednn"], choice)
    return choice


def _best_time(fn, x, w, repeat: int = 5) -> float:
    fn(x, w)  # warm up (thread pools, oneDNN's kernel generation)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(x, w)
        best = min(best, time.perf_counter() - start)
    return best


def fast_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """``F.linear`` through the faster GEMM here (``fast_backend()``), for calls of at least
    ``MIN_MACS`` multiply-adds on fp32 CPU tensors; ``F.linear`` otherwise."""
    if (x.dtype == weight.dtype == torch.float32 and x.device.type == "cpu"
            and x.numel() * weight.shape[0] >= MIN_MACS and fast_backend() == "onednn"):
        return linear(x, weight, bias)
    return linear_ref(x, weight, bias)


def _forward(self, x):
    return fast_linear(x, self.weight, self.bias)


def patch(model: torch.nn.Module) -> int:
    """Route each fp32 CPU ``nn.Linear`` of ``model`` through oneDNN when ``fast_backend()``
    says so (the module's own forward, replaced on the instance); returns how many."""
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear
              and m.weight.dtype == torch.float32 and m.weight.device.type == "cpu"]
    if not layers or fast_backend() != "onednn":
        return 0
    for module in layers:
        module.forward = types.MethodType(_forward, module)
    return len(layers)
