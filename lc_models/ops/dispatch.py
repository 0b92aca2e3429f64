"""The one rule that picks each op's kernel: vendor on CUDA, native on the CPU, torch elsewhere.

Every op of ``lc_models.ops`` has up to three implementations and asks ``choose`` which runs:

* ``"vendor"``: a CUDA kernel from an optional package (``VENDORS``: fla for WKV6/WKV7,
  mamba_ssm for the selective scan and SSD, causal-conv1d for the conv), imported on first
  use, guarded: a missing or broken package only makes the kernel unavailable;
* ``"native"``: the compiled C kernel of ``lc_models.ops.native`` (CPU tensors; off with
  ``LC_EVAL_NATIVE=0`` or without a C compiler);
* ``"torch"``: the portable torch form (chunked matrix products; any device).

``"auto"`` takes the vendor kernel on CUDA when it is installed and fits the inputs, else the
native kernel on the CPU when it is built and fits, else torch. A forced choice that cannot
serve is one ``UsageError`` naming the fix. An op without a vendor kernel (the RG-LRU scan,
the gated RMS norm) runs its torch form under ``"vendor"`` on a GPU (the native kernel on a CPU).

The process-wide choice is ``lc_hf``'s ``kernels=`` model argument (``set_kernels``); an op's
own ``backend=`` argument, when not ``"auto"``, overrides it for that call.

>>> from lc_models.ops import dispatch
>>> import torch
>>> dispatch.choose("wkv7", torch.zeros(1), backend="torch")
'torch'
>>> with dispatch.forced("torch"):
...     dispatch.choose("wkv7", "cpu")
'torch'
"""

from __future__ import annotations

import contextlib
import importlib
import logging

import torch

from lc_models.args import KERNELS, kernel_name
from lc_models.ops import native
from lc_tasks.errors import UsageError

logger = logging.getLogger(__name__)

# op -> (module, attribute, pip name) of its CUDA kernel
VENDORS = {
    "wkv6": ("fla.ops.rwkv6", "chunk_rwkv6", "flash-linear-attention"),
    "wkv7": ("fla.ops.rwkv7", "chunk_rwkv7", "flash-linear-attention"),
    "selective_scan": ("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn",
                       "mamba-ssm"),
    "ssd": ("mamba_ssm.ops.triton.ssd_combined", "mamba_chunk_scan_combined", "mamba-ssm"),
    "causal_conv1d": ("causal_conv1d", "causal_conv1d_fn", "causal-conv1d"),
}
_mode = "auto"
_vendor_cache: dict[str, object] = {}


def set_kernels(mode: str) -> None:
    """Force one kind of kernel for every op in this process ("auto" restores the rule)."""
    global _mode
    _mode = kernel_name(mode)


def kernels() -> str:
    """The process-wide choice (``set_kernels``)."""
    return _mode


@contextlib.contextmanager
def forced(mode: str):
    """``set_kernels(mode)`` for the duration of a ``with`` block."""
    before = _mode
    set_kernels(mode)
    try:
        yield
    finally:
        set_kernels(before)


def vendor(op: str):
    """The vendor kernel of ``op`` (a callable), or None when it has none or it cannot be
    imported; on a machine without CUDA nothing is imported."""
    if op not in VENDORS or not torch.cuda.is_available():
        return None
    if op not in _vendor_cache:
        module, name, _ = VENDORS[op]
        try:
            _vendor_cache[op] = getattr(importlib.import_module(module), name)
        except Exception as err:  # noqa: BLE001  (ImportError, or a broken CUDA/triton build)
            logger.info("%s's vendor kernel %s.%s is unavailable: %s", op, module, name, err)
            _vendor_cache[op] = None
    return _vendor_cache[op]


def choose(op: str, where, *, backend: str = "auto", native_fits: bool = True,
           vendor_fits: bool = True, needs: str = "CPU tensors") -> str:
    """"vendor", "native" or "torch" for ``op`` on ``where`` (a tensor, or a device).

    backend: the op's own argument ("auto" defers to ``kernels()``; "mamba_ssm" is read as
    "vendor"); native_fits / vendor_fits: whether the inputs suit that kernel (head size,
    dtype, ...); needs: what the native kernel needs, for the error message.
    """
    mode = "vendor" if backend == "mamba_ssm" else backend
    if mode not in KERNELS:
        raise UsageError(f"unknown {op} backend {backend!r}; choose one of {KERNELS}")
    if mode == "auto":
        mode = _mode
    if mode == "torch":
        return "torch"
    device = torch.device(where.device if isinstance(where, torch.Tensor) else where).type
    on_cpu = device == "cpu"
    can_native = native_fits and on_cpu and native.available()
    has_vendor = op in VENDORS
    can_vendor = has_vendor and vendor_fits and device == "cuda" and vendor(op) is not None
    if mode == "vendor":
        if can_vendor:
            return "vendor"
        if has_vendor:
            pip = VENDORS[op][2]
            raise UsageError(f"kernels=vendor: {op} needs CUDA tensors and `pip install {pip}`"
                             " (lc-eval[cuda]); pass kernels=auto or kernels=torch")
        return "native" if can_native else "torch"  # no vendor kernel exists for this op
    if mode == "native":
        if can_native:
            return "native"
        raise UsageError(f"kernels=native: {op} needs {needs} and a C compiler (see "
                         "lc_models.ops.native); pass kernels=auto or kernels=torch")
    if can_vendor:
        return "vendor"
    return "native" if can_native else "torch"

