"""``python -m lc_eval`` is ``lc-eval``; used as ``accelerate launch -m lc_eval run ...``."""

from lc_eval.cli import main

main()
