"""Mamba-2's gated RMS norm: ``weight * v / rms(v)`` over groups of channels, v = x * silu(gate).

``gated_rms_norm_ref`` is transformers' ``MambaRMSNormGated`` arithmetic in torch (the oracle,
and the fallback: six passes over the activations, each into a fresh tensor);
``gated_rms_norm`` runs the native kernel on a CPU (``csrc/gated_rms_norm.c``: one read of x
and the gate, one write). It computes in float32; for a half-precision x it rounds once, where
the module rounds the normed value and then its product with the weight, so the two can
differ by about one unit in the last place of bf16 (2**-8 to 2**-7 relative), far inside
bf16's tolerance. Without a gate and with one group it is the plain
RMS norm of Llama, Mamba and Mamba-2 blocks (``PLAIN_RMS_NORMS``), which ``patch`` routes
through the same kernel.

>>> import torch
>>> x, gate, w = torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.rand(8)
>>> torch.allclose(gated_rms_norm(x, gate, w, 4, 1e-6), gated_rms_norm_ref(x, gate, w, 4, 1e-6),
...                atol=1e-6)
True
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from lc_models.ops import dispatch, native

# transformers classes whose forward is exactly ``weight * (x / rms(x))``, the norm in fp32 and
# cast back before the weight (tests/test_rms_norm.py compares each with its own forward)
PLAIN_RMS_NORMS = ("LlamaRMSNorm", "MambaRMSNorm", "Mamba2RMSNorm")


def gated_rms_norm_ref(x, gate, weight, group_size: int, eps: float):
    """x, gate: (..., channels) (gate may be None); weight: (channels,). Returns the normed
    (..., channels) in x's dtype, as ``MambaRMSNormGated.forward`` computes it."""
    dtype = x.dtype
    v = x.float()
    if gate is not None:
        v = v * F.silu(gate.float())
    *prefix, channels = v.shape
    groups = v.view(*prefix, channels // group_size, group_size)
    groups = groups * torch.rsqrt(groups.pow(2).mean(-1, keepdim=True) + eps)
    return weight * groups.view(*prefix, channels).to(dtype)


def gated_rms_norm(x, gate, weight, group_size: int, eps: float, out_dtype=None,
                   backend="auto"):
    """``gated_rms_norm_ref``'s result, in the same dtype (x's and the weight's promoted, as
    in the module) or rounded to ``out_dtype`` (for a caller that casts it next); ``backend``:
    "auto" (native when x and the weight are float32, bfloat16 or float16 CPU tensors and the
    kernel is built; else torch), "native" or "torch"."""
    kind = dispatch.choose("gated_rms_norm", x, backend=backend, native_fits=_fits(x, weight),
                           needs="float32 or half-precision CPU tensors")
    if kind != "native":  # no vendor kernel: torch on a GPU
        y = gated_rms_norm_ref(x, gate, weight, group_size, eps)
        return y if out_dtype is None else y.to(out_dtype)
    dtype = out_dtype or torch.promote_types(x.dtype, weight.dtype)
    return native.gated_rms_norm(x, gate, weight, group_size, eps, dtype).to(dtype)


def _fits(x, weight) -> bool:
    return (x.device.type == "cpu" and x.dtype in native.KERNEL_DTYPES
            and weight.dtype in native.KERNEL_DTYPES)


def _plain_forward(self, x):
    if _fits(x, self.weight):
        return gated_rms_norm(x, None, self.weight, x.shape[-1], self.variance_epsilon)
    return type(self).forward(self, x)


def patch(model: torch.nn.Module) -> int:
    """Route every ``PLAIN_RMS_NORMS`` module of ``model`` through ``gated_rms_norm`` (fp32 or
    half precision on a CPU; the module's own forward otherwise); returns how many."""
    if not native.available():
        return 0
    count = 0
    for module in model.modules():
        if type(module).__name__ in PLAIN_RMS_NORMS and hasattr(module, "variance_epsilon"):
            module.forward = types.MethodType(_plain_forward, module)
            count += 1
    return count
