"""Keep freed tensor memory in the process, so that a prefill does not page-fault its way
through every op.

torch allocates CPU tensors with ``malloc``. glibc serves a large block with a fresh
``mmap`` (above ``M_MMAP_THRESHOLD``, adjusted on the fly) and gives freed memory at the top
of its heap back to the OS (above ``M_TRIM_THRESHOLD``); every new activation of a chunk is
then memory the kernel has to fault in and zero, page by page, before the op can write it.
A 4096-token Mamba-130m request took 0.3-1.2 million page faults (1-5 GB zeroed) and ran at
1060-1440 tok/s; with both thresholds raised, at most a few thousand faults (the first
request's growth) and 1610-1700 tok/s (one process, load about 1).

``keep_freed_memory()`` raises both thresholds to ``THRESHOLD`` through glibc's ``mallopt``.
It changes the whole process, once: freed memory is reused, not returned, so the resident
size stays at its peak (the peak itself is what it was: the same tensors are alive at once).
Other C libraries (no ``mallopt``) are left alone; ``LC_EVAL_MALLOPT=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
THRESHOLD = 1 << 30  # bytes: blocks up to 1 GiB come from the heap, kept when freed


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once per process); returns whether it did."""
    if os.environ.get("LC_EVAL_MALLOPT", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # each on its own: a glibc that caps the mmap threshold still takes the trim one
    applied = (mallopt(M_MMAP_THRESHOLD, THRESHOLD), mallopt(M_TRIM_THRESHOLD, THRESHOLD))
    done = all(applied)
    logger.info("malloc thresholds raised to %d bytes: %s", THRESHOLD, done)
    return done
