"""Length-sweeping long-context tasks for lm-evaluation-harness.

The YAML task configs live in ``task_configs/`` at the repository root and are
installed as ``lc_tasks/task_configs``. Point the stock harness at them with::

    lm_eval run --include_path "$(python -c 'import lc_tasks; print(lc_tasks.include_path())')" \\
        --model hf --model_args pretrained=... --tasks 'lc_passkey_*'

Importing this package is cheap: it pulls in neither torch nor transformers.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["include_path"]


def include_path() -> str:
    """Absolute path of the folder holding lc-eval's lm-eval task YAMLs.

    Works for a wheel install (``lc_tasks/task_configs``) and for a source
    checkout or editable install (``<repo>/task_configs``).

    >>> import os, lc_tasks
    >>> os.path.isdir(lc_tasks.include_path())
    True
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "task_configs", here.parent / "task_configs"):
        if candidate.is_dir():
            return str(candidate)
    raise FileNotFoundError(
        f"lc-eval's task_configs folder is missing (looked in {here} and {here.parent}); "
        "reinstall with `pip install lc-eval` or `pip install -e .` from a full checkout."
    )
