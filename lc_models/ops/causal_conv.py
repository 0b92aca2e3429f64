"""Depthwise causal conv along the tokens of a chunk, continuing after the inputs before it.

For batch row b, token t and channel c, with a K-tap kernel w (channels, K)::

    y[b,t,c] = bias[c] + sum_k w[c,k] * in[b, t - (K - 1 - k), c],   then  y = silu(y)?

where ``in`` is the chunk x (batch, L, channels), preceded by the last K - 1 inputs of the
previous chunk (``prev``, zeros at a sequence start). Mamba's mixers and mamba_ssm's attention
run it on slices of their in-projection, channels last.

``causal_conv1d_ref`` is K shifted multiply-adds in torch (the oracle, and the fallback);
``causal_conv1d`` runs the kernel ``lc_models.ops.dispatch`` picks: on CUDA the
``causal-conv1d`` package's ``causal_conv1d_fn`` (2 to 4 taps; y in x's dtype, then cast), on a
CPU the native kernel (``csrc/causal_conv1d.c``: one read of x, one write of y, the SiLU fused
in; about a tenth of the memory traffic of the torch ops).
Both compute in float32 whatever x's dtype, as torch's conv kernels accumulate, and round y
once to x's dtype (or keep it float32 for a float32 consumer, ``out_dtype``; the torch path
then holds a float32 copy of x, on a GPU too): in bf16 the native kernel serves too.

>>> import torch
>>> x, w = torch.randn(1, 9, 6), torch.randn(6, 4)
>>> y1, tail = causal_conv1d(x[:, :5], w, activation="silu")
>>> y2, _ = causal_conv1d(x[:, 5:], w, prev=tail, activation="silu")
>>> y, _ = causal_conv1d_ref(x, w, activation="silu")
>>> torch.allclose(torch.cat([y1, y2], 1), y, atol=1e-6)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lc_models.ops import dispatch, native

ACTIVATIONS = (None, "silu")


def causal_conv1d_ref(x, weight, bias=None, prev=None, activation=None, out_dtype=None):
    """The conv in torch. x: (batch, L, channels), any strides; weight: (channels, K); bias:
    (channels,); prev: (batch, channels, K') with the inputs before x, most recent last (K' >=
    K - 1 are used; None means zeros); activation: None or "silu"; out_dtype: y's dtype
    (default x's; float32 keeps a half-precision conv unrounded for a float32 consumer).
    Returns (y (batch, L, channels) contiguous, tail (batch, channels, K) = the last K inputs,
    in prev's dtype, for the next chunk)."""
    L = x.shape[1]
    K = weight.shape[-1]
    prev = _check(x, weight, prev, activation)
    up = torch.float64 if x.dtype == torch.float64 else torch.float32  # the arithmetic's dtype
    history = prev[..., prev.shape[-1] - (K - 1) :].transpose(1, 2).to(up)  # (b, K-1, c)
    xs, w = x.to(up), weight.to(up)
    y = xs * w[:, K - 1]  # tap K - 1 sees the current token
    if bias is not None:
        y += bias.to(up)
    for k in range(K - 1):  # tap k sees the input lag = K - 1 - k tokens back
        lag = K - 1 - k
        if lag < L:
            y[:, lag:].addcmul_(xs[:, : L - lag], w[:, k])
        head = min(lag, L)  # the first tokens reach back into the previous chunk
        y[:, :head].addcmul_(history[:, k : k + head], w[:, k])
    if activation == "silu":
        y = F.silu(y)
    return y.to(out_dtype or x.dtype), _tail(x, prev, K)


def causal_conv1d(x, weight, bias=None, prev=None, activation=None, out_dtype=None,
                  backend="auto"):
    """``causal_conv1d_ref``'s result; ``backend``: "auto" (see ``lc_models.ops.dispatch``; the
    native kernel takes float32, bfloat16 and float16), "native", "vendor" or "torch"."""
    K = weight.shape[-1]
    kind = dispatch.choose("causal_conv1d", x, backend=backend,
                           native_fits=x.dtype in native.KERNEL_DTYPES,
                           vendor_fits=2 <= K <= 4 and x.dtype in native.KERNEL_DTYPES,
                           needs="float32 or half-precision CPU tensors")
    if kind == "torch":
        return causal_conv1d_ref(x, weight, bias, prev, activation, out_dtype)
    prev = _check(x, weight, prev, activation)
    dtype = out_dtype or x.dtype
    if kind == "vendor":  # channels-last (batch, channels, L) views in and out, as it wants
        history = prev[..., prev.shape[-1] - (K - 1) :].transpose(1, 2).contiguous()
        y = dispatch.vendor("causal_conv1d")(
            x.transpose(1, 2), weight.to(x.dtype), None if bias is None else bias.to(x.dtype),
            initial_states=history.to(x.dtype).transpose(1, 2), activation=activation)
        return y.transpose(1, 2).to(dtype).contiguous(), _tail(x, prev, K)
    y = native.causal_conv1d(x, weight, bias, prev, activation == "silu", dtype)
    return y.to(dtype), _tail(x, prev, weight.shape[-1])  # bf16 and float32 come back as asked


def _check(x, weight, prev, activation):
    """``prev``, or zeros for a sequence start, after checking the arguments."""
    batch, _, channels = x.shape
    K = weight.shape[-1]
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
    if prev is None:
        return x.new_zeros(batch, channels, K)
    if prev.shape[-1] < K - 1:
        raise ValueError(f"prev holds {prev.shape[-1]} inputs; a {K}-tap conv needs {K - 1}")
    return prev


def _tail(x, prev, K):
    """The last K inputs up to the end of x (batch, channels, K), contiguous."""
    recent = x[:, -K:].transpose(1, 2).to(prev.dtype)  # (batch, channels, min(K, L))
    tail = torch.cat([prev, recent], -1)[..., -K:] if x.shape[1] < K else recent
    return tail.contiguous()
