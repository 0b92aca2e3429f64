"""``python -m lc_tasks`` is ``lc-eval``; used as ``accelerate launch -m lc_tasks run ...``."""

from lc_tasks.cli import main

main()
