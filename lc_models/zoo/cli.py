"""``lc-eval zoo``: list the bundled tiny models, ``name<TAB>path`` per line.

Use a path with any lm-eval model type, e.g.
``lm_eval run --model hf --model_args pretrained=$(lc-eval zoo | grep llama | cut -f2)``,
or the short name with ``lc_hf``: ``--model lc_hf --model_args pretrained=tiny-llama``.
"""

from __future__ import annotations

import argparse


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Add ``zoo`` to lc-eval's subcommands (see ``lc_tasks.cli.SUBCOMMANDS``)."""
    parser = subparsers.add_parser(
        "zoo",
        help="List the bundled tiny models (name, tab, path)",
        description="List the bundled tiny models, one per line: short name, a tab, its folder. "
        "Load one with --model hf --model_args pretrained=<path>, or with "
        "--model lc_hf --model_args pretrained=<name>.",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from lc_models import zoo

    for name in zoo.names():
        print(f"{name}\t{zoo.path(name)}")
