"""Sequence-mixing ops with an initial state in and a final state out, and their neighbours.

Each op has a short reference (``*_ref``: a loop over tokens, or the plain torch ops) beside
its fast paths, and the tests compare the two:

=============================  ===========================  ===============================
op                             reference                    what it is
=============================  ===========================  ===============================
``selective_scan``             ``selective_scan_ref``       Mamba-1's scan
``ssd``                        ``ssd_ref``                  Mamba-2's scan (SSD)
``wkv6``                       ``wkv6_ref``                 RWKV-6's WKV
``wkv7``                       ``wkv7_ref``                 RWKV-7's generalized delta rule
``linear_scan``                ``linear_scan_ref``          RecurrentGemma's RG-LRU scan
``causal_conv1d``              ``causal_conv1d_ref``        the mixers' depthwise conv
``gated_rms_norm``             ``gated_rms_norm_ref``       Mamba-2's gated RMS norm
``attend_chunk``               ``attend_chunk_ref``         a chunk's attention to its cache
``linear``                     ``linear_ref``               fp32 linear layers (oneDNN)
=============================  ===========================  ===============================

Which fast path runs is one rule for every op (``dispatch``): the vendor CUDA kernel (fla,
mamba_ssm, causal-conv1d) on a GPU where installed, the compiled kernel (``native``) on the
CPU, else the portable torch form; ``lc_hf``'s ``kernels=`` model argument forces one.
"""
