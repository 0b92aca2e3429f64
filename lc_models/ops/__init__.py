"""Sequence-mixing ops with an initial state in and a final state out, and their neighbours.

Each op has a short reference (``*_ref``: a loop over tokens, or the plain torch ops) beside
its fast paths in the same module, and the tests compare the two:

==================  ==================  ======================  ================================
module              op                  reference               what it is
==================  ==================  ======================  ================================
``selective_scan``  ``selective_scan``  ``selective_scan_ref``  Mamba-1's scan
``ssd``             ``ssd``             ``ssd_ref``             Mamba-2's scan (SSD)
``wkv6``            ``wkv6``            ``wkv6_ref``            RWKV-6's WKV
``wkv7``            ``wkv7``            ``wkv7_ref``            RWKV-7's generalized delta rule
``linear_scan``     ``linear_scan``     ``linear_scan_ref``     RecurrentGemma's RG-LRU scan
``causal_conv``     ``causal_conv1d``   ``causal_conv1d_ref``   the mixers' depthwise conv
``rms_norm``        ``gated_rms_norm``  ``gated_rms_norm_ref``  Mamba-2's gated RMS norm
``attention``       ``attend_chunk``    ``attend_chunk_ref``    a chunk's attention to its cache
``linear``          ``linear``          ``linear_ref``          fp32 linear layers (oneDNN)
==================  ==================  ======================  ================================

Which fast path runs is one rule for every op (``dispatch``): the vendor CUDA kernel (fla,
mamba_ssm, causal-conv1d) on a GPU where installed, the compiled kernel (``native``, built
from ``csrc/``) on the CPU, else the portable torch form; ``lc_hf``'s ``kernels=`` model
argument forces one. The other neighbours: ``scan_state`` (the state a scan starts from),
``chunk_scan`` (the chunked torch form that ``selective_scan`` and ``linear_scan`` share) and
``allocator`` (freed memory kept in the process). Layer forwards built from these ops, such as
one chunk through a Mamba mixer, sit with the models (``lc_models.models.mamba_mixer``).
"""
