"""fp32 linear layers through oneDNN's GEMM on CPUs where it beats torch's default.

torch computes an fp32 ``F.linear`` on a CPU with MKL's sgemm. MKL picks its code path by
CPU vendor, and on AMD processors it runs its AVX2 kernels even where the CPU has AVX-512:
on the project's machine (an AMD EPYC with AVX-512) a (1024 x 768) x (768 x 3072) product
runs at about 190 GFLOP/s through ``F.linear`` and about 440 GFLOP/s through oneDNN
(``torch.ops.mkldnn._linear_pointwise``, the op torch's own compiler emits for CPU linears),
with the same inputs and results equal to rounding (relative differences below 1e-6:
another summation order).

``linear_ref`` is ``F.linear``; ``linear`` is the same product through oneDNN, and
``fast_linear`` whichever of the two ``fast_backend()`` names. The choice is made by the CPU,
never by timing, so that every process on a machine rounds the same way: oneDNN on AMD CPUs
with AVX-512 (where MKL leaves half the machine's rate unused), after a check that it agrees
with ``F.linear`` on a layer-sized product; torch's default elsewhere (Intel CPUs, where MKL
uses AVX-512 itself; AMD CPUs without it, where both run AVX2 code). ``LC_EVAL_ONEDNN=1``
asks for oneDNN on any CPU, ``LC_EVAL_ONEDNN=0`` for torch's default. ``patch(model)`` routes
every fp32 ``nn.Linear`` of ``model`` through the choice for calls of at least ``MIN_MACS``
multiply-adds; lc_hf records the choice in its model info (``lc_fp32_gemm``).

>>> import torch
>>> x, w = torch.randn(5, 16), torch.randn(8, 16)
>>> torch.allclose(linear(x, w), linear_ref(x, w), atol=1e-5)
True
"""

from __future__ import annotations

import functools
import logging
import os
import types
from pathlib import Path

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

linear_ref = F.linear
# a layer-sized product for the agreement check: (tokens, d_model) x (d_model, 3 d_model)
PROBE = (256, 768, 2304)
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
    """"onednn" or "torch": the fp32 GEMM ``fast_linear`` uses in this process (see the module
    doc; decided once, from the CPU and ``LC_EVAL_ONEDNN``)."""
    wanted = os.environ.get("LC_EVAL_ONEDNN", "")
    if wanted == "0" or not torch.backends.mkldnn.is_available():
        return "torch"
    if wanted != "1" and not _amd_with_avx512():
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
    return "onednn"


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX tiles). Without
    either, torch emulates bf16 GEMMs with fp32 arithmetic plus conversions, slower than
    fp32. True where torch cannot tell (older builds, non-x86 CPUs, whose bf16 support these
    x86 probes do not see): no warning is better than a wrong one."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return True


def _amd_with_avx512() -> bool:
    """Whether /proc/cpuinfo names an AMD CPU with AVX-512 (False where it cannot be read)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                  if ln.startswith("flags")), [])
    return "AuthenticAMD" in info and "avx512f" in flags


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
              and type(m.weight.data) is torch.Tensor  # not a quantized tensor subclass
              and m.weight.dtype == torch.float32 and m.weight.device.type == "cpu"]
    if not layers or fast_backend() != "onednn":
        return 0
    for module in layers:
        module.forward = types.MethodType(_forward, module)
    return len(layers)
