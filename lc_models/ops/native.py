"""Small compiled CPU kernels for the two scan recurrences, built on first use.

PyTorch has no fused linear-recurrence op, and every pure-torch formulation of the Mamba-1
scan streams (batch, d_inner, L, d_state) values through memory several times. The plain
C loop in ``csrc/selective_scan.c`` keeps the state in L1 and reads each input once,
which on a CPU is 5-10x faster than the best chunked torch code (see ``benchmarks/``).
``csrc/ssd_scan.c`` does the same for Mamba-2 (SSD): its decay is one scalar per head and
token, so a token costs three vector operations per state element with the state in
registers, less than the chunked matrix form's batched small GEMMs and their copies;
``csrc/wkv6_scan.c`` for RWKV-6's WKV (a decay per key channel, the same three operations);
``csrc/wkv7_scan.c`` for RWKV-7's generalized delta rule (value channels in the lanes, the
head's state in L1);
``csrc/linear_scan.c`` for RecurrentGemma's RG-LRU (one multiply-add per channel and token).
Two element-wise neighbours of the scans are fused the same way, one read and one write
each instead of a torch op (and a fresh tensor) per term: the depthwise causal conv with its
SiLU (``csrc/causal_conv1d.c``) and Mamba-2's gated RMS norm (``csrc/gated_rms_norm.c``).

The kernel is compiled with the system C compiler (``$CC``, else ``cc``) into a cache folder
(``$LC_EVAL_CACHE``, else ``~/.cache/lc-eval``) keyed by the source, the flags and the CPU, and
loaded with ``ctypes``. No torch headers are needed, so a build takes well under a second.
Blocks of 8 channels (16 with AVX-512) are split across ``torch.get_num_threads()`` OpenMP
threads; ctypes releases the GIL during the call. If no compiler is found or the build fails,
``load()`` returns None (the reason is logged once) and callers use the pure-torch path.
``LC_EVAL_NATIVE=0`` turns the kernel off.

>>> import torch
>>> from lc_models.ops import native
>>> if native.available():
...     u = dt = torch.ones(1, 2, 3); A = -torch.ones(2, 4); B = C = torch.ones(1, 4, 3)
...     y = native.scan(u, dt, A, B, C, torch.zeros(1, 2, 4), softplus=True)
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SOURCES = tuple(Path(__file__).with_name("csrc") / name
                for name in ("selective_scan.c", "ssd_scan.c", "wkv6_scan.c", "wkv7_scan.c",
                             "linear_scan.c", "causal_conv1d.c", "gated_rms_norm.c"))
HEADERS = (Path(__file__).with_name("csrc") / "bf16.h",)  # part of the build's cache key
# -ffast-math lets gcc vectorise expf through glibc's libmvec. Linking is a separate step
# without it, so the library does not switch the whole process to flush-to-zero on load.
# -fopenmp: the kernel's threads come from libgomp, the OpenMP runtime torch itself loads, so
# the scan shares torch's thread team instead of competing with it. Without OpenMP (the
# fallback build) the kernel runs on one thread.
# input dtypes the conv and norm wrappers accept: the kernels compute in float32, and a half-
# precision input costs one conversion pass (the caller rounds the float32 result back)
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
COMPILE_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC", "-std=c99"]
LINK_FLAGS = ["-shared", "-fopenmp", "-lm"]
SERIAL_FLAGS = ["-fopenmp-simd"]  # replaces -fopenmp when the compiler has no OpenMP

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def _cpu_id() -> str:
    """The CPU's model name and feature flags: -march=native code is only valid on them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        found = {}
        for line in lines:
            key = line.split(":", 1)[0].strip()
            if key in ("model name", "flags") and key not in found:
                found[key] = line
        if found:
            return "\n".join(found.values())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_dir() -> Path:
    from lc_tasks.doc_cache import cache_root

    root = cache_root()
    if root is None or not _writable(root / "native"):  # LC_EVAL_CACHE=off, or read-only:
        root = Path(tempfile.gettempdir()) / f"lc-eval-{os.getpid()}"  # a build of our own
    return root / "native"


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists (made if missing) and this process may write in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def _build(compiler: str, openmp: bool = True) -> Path:
    """Compile the kernel (if not cached) and return the path of the shared library."""
    compile_flags, link_flags = COMPILE_FLAGS, LINK_FLAGS
    if not openmp:
        compile_flags = [f for f in COMPILE_FLAGS if f != "-fopenmp"] + SERIAL_FLAGS
        link_flags = [f for f in LINK_FLAGS if f != "-fopenmp"]
    sources = [source.read_bytes() for source in (*SOURCES, *HEADERS)]
    key = hashlib.sha256(
        b"\0".join([*sources, " ".join(compile_flags + link_flags).encode(), _cpu_id().encode()])
    ).hexdigest()[:16]
    target = _cache_dir() / f"lc_scans_{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        objs = [Path(tmp) / f"{source.stem}.o" for source in SOURCES]
        lib = Path(tmp) / "scans.so"
        for cmd in (
            *([compiler, *compile_flags, "-c", str(source), "-o", str(obj)]
              for source, obj in zip(SOURCES, objs)),
            [compiler, *map(str, objs), "-o", str(lib), *link_flags],
        ):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        os.replace(lib, target)  # atomic: concurrent builders race harmlessly
    return target


def load() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first call; None when unavailable."""
    global _lib, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("LC_EVAL_NATIVE", "1") == "0":
            logger.info("native selective scan disabled by LC_EVAL_NATIVE=0")
            return None
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            logger.warning("no C compiler found; the selective scan uses the slower torch path")
            return None
        try:
            try:
                lib = ctypes.CDLL(str(_build(compiler)))
            except (OSError, RuntimeError) as err:
                logger.warning("building the native scan with OpenMP failed, one thread: %s", err)
                lib = ctypes.CDLL(str(_build(compiler, openmp=False)))
        except (OSError, RuntimeError) as err:
            logger.warning("native selective scan unavailable, using the torch path: %s", err)
            return None
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        lib.lc_selective_scan_omp.argtypes = [ptr] * 10 + [ctypes.POINTER(i64)] + [i64] * 4 + [
            ctypes.c_int32, ctypes.c_int32,
        ]
        lib.lc_selective_scan_omp.restype = None
        lib.lc_ssd_scan.argtypes = [ptr] * 8 + [ctypes.POINTER(i64)] + [i64] * 6 + [
            ctypes.c_int32]
        lib.lc_ssd_scan.restype = None
        lib.lc_wkv6_scan.argtypes = [ptr] * 7 + [ctypes.POINTER(i64)] + [i64] * 4 + [
            ctypes.c_int32]
        lib.lc_wkv6_scan.restype = None
        lib.lc_wkv7_scan.argtypes = [ptr] * 8 + [ctypes.POINTER(i64)] + [i64] * 4 + [
            ctypes.c_int32]
        lib.lc_wkv7_scan.restype = None
        lib.lc_wkv7_max_n.restype = ctypes.c_int
        lib.lc_linear_scan.argtypes = [ptr] * 4 + [i64] * 3 + [ctypes.c_int32]
        lib.lc_linear_scan.restype = None
        lib.lc_causal_conv1d.argtypes = [ptr] * 5 + [ctypes.POINTER(i64)] + [i64] * 5 + [
            ctypes.c_int32] * 3
        lib.lc_causal_conv1d.restype = None
        lib.lc_gated_rms_norm.argtypes = [ptr] * 4 + [i64] * 5 + [ctypes.c_float] + [
            ctypes.c_int32] * 2
        lib.lc_gated_rms_norm.restype = None
        lib.lc_scan_max_state.restype = ctypes.c_int
        _lib = lib
        return _lib


def available() -> bool:
    """Whether the compiled kernel can be used in this process."""
    return load() is not None


def max_state() -> int:
    lib = load()
    return lib.lc_scan_max_state() if lib is not None else 0


def scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    softplus: bool = False,
) -> torch.Tensor:
    """Run the fused scan; returns y (batch, d_inner, L) float32 and updates ``h`` in place.

    u, delta, z: (batch, d_inner, L); B, C: (batch, d_state, L); any strides, so transposed
    views of channels-last (batch, L, ...) activations cost no copy (y then comes back as a
    transposed view of a channels-last tensor too). A: (d_inner, d_state); D, delta_bias:
    (d_inner,); h: (batch, d_inner, d_state) contiguous float32, the initial state on entry
    and the final state on return. Semantics as in ``csrc/selective_scan.c``.
    """
    lib = load()
    if lib is None:
        raise RuntimeError("the native selective scan is not available (see the log)")
    batch, d_inner, L = u.shape
    n = A.shape[1]
    _check_state(h)
    u, delta, B, C = (x if x.dtype == torch.float32 else x.float() for x in (u, delta, B, C))
    z = z if z is None or z.dtype == torch.float32 else z.float()
    A = A.float().contiguous()
    D = None if D is None else D.float().contiguous()
    delta_bias = None if delta_bias is None else delta_bias.float().contiguous()
    if u.stride(1) == 1:  # channels last in memory: write y the same way
        y = torch.empty(batch, L, d_inner).transpose(1, 2)
    else:
        y = torch.empty(batch, d_inner, L)
    strides = [s for x in (u, delta, z if z is not None else u, B, C, y) for s in x.stride()]
    st = (ctypes.c_int64 * 18)(*strides)
    ptr = [x.data_ptr() if x is not None else None for x in (u, delta, z, B, C, A, D, delta_bias)]
    threads = _threads(batch * d_inner * L, 32768)
    lib.lc_selective_scan_omp(
        *ptr, h.data_ptr(), y.data_ptr(), st, batch, d_inner, L, n, int(bool(softplus)), threads
    )
    return y


def ssd_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    decay: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    D: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the SSD recurrence; returns y (batch, L, nheads, headdim) float32 (with D x added)
    and updates ``h`` in place.

    x: (batch, L, nheads, headdim) float32, any strides but a unit last one (a view of the
    mixer's channels-last activations costs no copy); dt, decay = exp(dt * A): (batch, L,
    nheads) float32; B, C: (batch, L, ngroups, d_state) float32, any strides; D: (nheads,);
    h: (batch, nheads, headdim, d_state) contiguous float32, the initial state on entry and
    the final state on return. Semantics as in ``csrc/ssd_scan.c``.
    """
    lib = load()
    if lib is None:
        raise RuntimeError("the native scan kernels are not available (see the log)")
    batch, L, nheads, headdim = x.shape
    ngroups, d_state = B.shape[-2:]
    _check_state(h)
    if x.stride(-1) != 1:
        x = x.contiguous()
    dt, decay = dt.contiguous(), decay.contiguous()
    D = None if D is None else D.float().contiguous()
    y = torch.empty(batch, L, nheads, headdim)
    st = (ctypes.c_int64 * 12)(*x.stride(), *B.stride(), *C.stride())
    ptr = [t.data_ptr() if t is not None else None for t in (x, dt, decay, B, C, D, h, y)]
    threads = _threads(batch * nheads * headdim * d_state * L, 1 << 18)
    lib.lc_ssd_scan(*ptr, st, batch, L, nheads, headdim, ngroups, d_state, threads)
    return y


def wkv6_scan(r: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: torch.Tensor,
              u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Run the WKV6 recurrence; returns o (batch, L, heads, N) float32 and updates ``h`` in
    place. r, k, v, w = exp(log_w): (batch, L, heads, N) float32; u: (heads, N); h: (batch,
    heads, N, N) contiguous float32, the initial state on entry and the final one on return.
    Semantics as in ``csrc/wkv6_scan.c``."""
    lib = _require()
    batch, L, heads, n = r.shape
    _check_state(h)
    r, k, v, w = (t.float().contiguous() for t in (r, k, v, w))  # one layout for the four
    u = u.float().contiguous()
    o = torch.empty(batch, L, heads, n)
    st = (ctypes.c_int64 * 3)(*r.stride()[:3])
    threads = _threads(batch * heads * n * n * L, 1 << 18)
    lib.lc_wkv6_scan(*(t.data_ptr() for t in (r, k, v, w, u, h, o)), st, batch, L, heads, n,
                     threads)
    return o


def wkv7_max_n() -> int:
    """The largest head size ``wkv7_scan`` takes (0 without the kernel)."""
    lib = load()
    return lib.lc_wkv7_max_n() if lib is not None else 0


def wkv7_scan(r: torch.Tensor, w: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              a: torch.Tensor, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Run the WKV7 recurrence; returns o (batch, L, heads, N) float32 and updates ``h`` in
    place. r, w = exp(log_w), k, v, a, b: (batch, L, heads, N) float32; h: (batch, heads,
    N_value, N_key) contiguous float32, the initial state on entry and the final one on
    return; N <= ``wkv7_max_n()``. Semantics as in ``csrc/wkv7_scan.c``."""
    lib = _require()
    batch, L, heads, n = r.shape
    if n > lib.lc_wkv7_max_n():
        raise ValueError(f"head size {n} > {lib.lc_wkv7_max_n()}, the kernel's largest")
    _check_state(h)
    r, w, k, v, a, b = (t.float().contiguous() for t in (r, w, k, v, a, b))  # one layout
    o = torch.empty(batch, L, heads, n)
    st = (ctypes.c_int64 * 3)(*r.stride()[:3])
    threads = _threads(batch * heads * n * n * L, 1 << 18)
    lib.lc_wkv7_scan(*(t.data_ptr() for t in (r, w, k, v, a, b, h, o)), st, batch, L, heads,
                     n, threads)
    return o


def linear_scan(a: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """h <- a[t] * h + x[t] per channel; returns y (batch, L, channels) float32, every h, and
    updates ``h`` (batch, channels) contiguous float32 in place. a, x: (batch, L, channels).
    Semantics as in ``csrc/linear_scan.c``."""
    lib = _require()
    batch, L, channels = x.shape
    _check_state(h)
    a, x = a.float().contiguous(), x.float().contiguous()
    y = torch.empty(batch, L, channels)
    threads = _threads(batch * L * channels, 1 << 16)
    lib.lc_linear_scan(a.data_ptr(), x.data_ptr(), h.data_ptr(), y.data_ptr(), batch, L,
                       channels, threads)
    return y


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  history: torch.Tensor | None, silu: bool,
                  out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Depthwise causal conv (and SiLU); returns y (batch, L, channels) contiguous, float32 or
    ``out_dtype`` bfloat16 (computed in float32, rounded once).

    x: (batch, L, channels) float32 or bfloat16 with a unit channel stride (a slice of a
    projection costs no copy; other dtypes are converted); weight: (channels, K); bias:
    (channels,); history: (batch, channels, K') with K' >= K - 1, the inputs before x (most
    recent last), or None for zeros. Semantics as in ``csrc/causal_conv1d.c``.
    """
    lib = _require()
    batch, L, channels = x.shape
    K = weight.shape[-1]
    x = _kernel_input(x)
    w = weight.float().t().contiguous()  # (K, channels): one vector per tap
    bias = None if bias is None else bias.float().contiguous()
    history = None if history is None else history.float().contiguous()
    y = torch.empty(batch, L, channels, dtype=_kernel_output(out_dtype))
    st = (ctypes.c_int64 * 2)(*x.stride()[:2])
    ptr = [t.data_ptr() if t is not None else None for t in (x, history, w, bias, y)]
    threads = _threads(batch * L * channels, 1 << 15)
    lib.lc_causal_conv1d(*ptr, st, batch, L, channels, K,
                         history.shape[-1] if history is not None else 0, int(silu),
                         _dtype_bits(x, y), threads)
    return y


def gated_rms_norm(x: torch.Tensor, gate: torch.Tensor | None, weight: torch.Tensor,
                   group_size: int, eps: float,
                   out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``weight * v / rms(v)`` over groups of ``group_size`` channels, v = x * silu(gate);
    returns (..., channels) contiguous, float32 or ``out_dtype`` bfloat16 (computed in
    float32, rounded once). x, gate: (..., channels) float32 or bfloat16 (other dtypes are
    converted) whose rows are evenly strided with a unit channel stride. Semantics as in
    ``csrc/gated_rms_norm.c``.
    """
    lib = _require()
    shape = x.shape
    x, gate = (None if t is None else _rows(t) for t in (x, gate))  # (rows, channels)
    rows, channels = x.shape
    if channels % group_size:
        raise ValueError(f"{channels} channels do not split in groups of {group_size}")
    weight = weight.float().contiguous()
    y = torch.empty(rows, channels, dtype=_kernel_output(out_dtype))
    ptr = [t.data_ptr() if t is not None else None for t in (x, gate, weight, y)]
    threads = _threads(rows * channels, 1 << 15)
    lib.lc_gated_rms_norm(*ptr, x.stride(0), gate.stride(0) if gate is not None else 0, rows,
                          channels, group_size, eps, _dtype_bits(x, gate, y), threads)
    return y.view(shape)


def _kernel_input(t: torch.Tensor) -> torch.Tensor:
    """t as float32 or bfloat16 (what the kernels read) with a unit last stride."""
    if t.dtype not in (torch.float32, torch.bfloat16):
        t = t.float()
    return t if t.stride(-1) == 1 else t.contiguous()


def _kernel_output(dtype: torch.dtype) -> torch.dtype:
    """The dtype a kernel writes for a wanted ``dtype``: bfloat16 itself, else float32."""
    return torch.bfloat16 if dtype == torch.bfloat16 else torch.float32


def _dtype_bits(*tensors: torch.Tensor | None) -> int:
    """The kernels' ``dtypes`` argument: bit i set when tensor i is bfloat16."""
    return sum(1 << i for i, t in enumerate(tensors) if t is not None and t.dtype ==
               torch.bfloat16)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """t as (rows, channels) float32 or bfloat16 with a unit channel stride (a view when it
    can be: ``_kernel_input`` gives the unit stride, which the reshape keeps)."""
    return _kernel_input(t).reshape(-1, t.shape[-1])


def _check_state(h: torch.Tensor) -> None:
    """A state the kernels update in place: contiguous float32 on the CPU."""
    if not (h.is_contiguous() and h.dtype == torch.float32 and h.device.type == "cpu"):
        raise ValueError("h must be a contiguous float32 CPU tensor (it is updated in place)")


def _threads(work: int, serial_below: int) -> int:
    """OpenMP threads for a call over ``work`` elements: one below ``serial_below`` (not worth
    waking threads), else torch's."""
    return 1 if work < serial_below else torch.get_num_threads()


def _require() -> ctypes.CDLL:
    lib = load()
    if lib is None:
        raise RuntimeError("the native kernels are not available (see the log)")
    return lib
