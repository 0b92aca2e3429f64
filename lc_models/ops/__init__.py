"""Sequence-mixing ops with an initial state in and a final state out.

Each op has a short reference (``*_ref``, a loop over tokens) beside its fast path, and the
tests compare the two: ``selective_scan`` (Mamba-1) and ``ssd`` (Mamba-2).
"""
