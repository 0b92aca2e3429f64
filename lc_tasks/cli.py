"""The ``lc-eval`` command: lm-eval's own CLI with the plugin loaded.

``lc-eval`` accepts every lm-eval subcommand and flag (``run``, ``ls``,
``validate`` and the bare form without ``run``) and hands them to lm-eval's
parser unchanged. On top of that it

* registers our models (``lc_hf``, ...) in lm-eval's registry,
* adds our task folder to ``--include_path`` (a user's own path still works
  and wins on name clashes, since it is scanned after ours),
* adds our own subcommands, listed in ``SUBCOMMANDS``.

Data-parallel runs work the same way: ``accelerate launch -m lc_tasks run ...``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# Modules that add an lc-eval subcommand. Each exposes
# ``add_subcommand(subparsers)``, which adds a parser whose default ``func``
# takes the parsed namespace.
SUBCOMMANDS: list[str] = [
    "lc_tasks.report.cli",
    "lc_models.zoo.cli",
]


def _with_our_tasks(user_path: str | list[str] | None) -> list[str]:
    """Our task folder first, then whatever the user passed."""
    from lc_tasks import include_path

    if user_path is None:
        extra: list[str] = []
    elif isinstance(user_path, (list, tuple)):
        extra = [str(p) for p in user_path]
    else:
        extra = [str(user_path)]
    return [include_path(), *extra]


def build_cli():
    """lm-eval's ``HarnessCLI`` with our subcommands added and named ``lc-eval``."""
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    for module in SUBCOMMANDS:
        importlib.import_module(module).add_subcommand(cli._subparsers)
    cli._parser.prog = "lc-eval"
    for parser in cli._subparsers.choices.values():
        parser.prog = parser.prog.replace("lm-eval", "lc-eval", 1)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``lc-eval`` console script."""
    import lc_models  # noqa: F401  (registers lc_hf and friends)
    from lm_eval.utils import setup_logging

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    setup_logging()
    cli = build_cli()
    args = cli.parse_args()
    if "include_path" in vars(args):
        args.include_path = _with_our_tasks(args.include_path)
    cli.execute(args)


if __name__ == "__main__":
    main()
