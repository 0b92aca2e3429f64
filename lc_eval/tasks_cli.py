"""``lc-eval tasks``: our task families, lengths and groups, in a second (``lc-eval ls tasks``
indexes all of lm-eval's ~15,000 tasks)."""

from __future__ import annotations

import argparse


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Add ``tasks`` to lc-eval's subcommands (see ``lc_eval.cli.SUBCOMMANDS``)."""
    parser = subparsers.add_parser(
        "tasks",
        help="List lc-eval's tasks: lc_<family>_<length> and the lc_suite_<length> groups",
        description="List lc-eval's task families (what each asks, the RULER task it "
        "reproduces), the lengths, and the groups. Every family exists at every length.",
    )
    parser.add_argument("--names", action="store_true", help="print every task name, one a line")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from lc_tasks.families import (
        FAMILIES,
        GROUPS,
        LENGTHS,
        PAIR_SWEEPS,
        SUITE,
        SWEEPS,
        pair_task_name,
        sweep_task_name,
    )

    if args.names:
        for family in [*FAMILIES, *GROUPS]:
            for label in LENGTHS:
                print(f"lc_{family}_{label}")
        return
    width = max(len(f) for f in FAMILIES) + 3
    print(f"{'family':{width}} {'reproduces':18} what it asks")
    for name, family in FAMILIES.items():
        print(f"{'lc_' + name:{width}} {family.ruler or '-':18} {family.summary}")
    print(f"\nlengths (tokens of the model's tokenizer): {' '.join(LENGTHS)}")
    print(f"tasks: lc_<family>_<length>, e.g. lc_passkey_4k; groups: lc_suite_<length> (the "
          f"average of {len(SUITE)} RULER families, offline) and lc_ruler_<length> (all "
          f"{len(GROUPS['ruler'])}, with the QA data)")
    sweeps = "; ".join(f"{label}: p{counts[0]}..p{counts[-1]}" for label, counts in
                       PAIR_SWEEPS.items())
    print(f"pair sweeps: lc_kvrecall_<length>_p<pairs>, zero-padded, e.g. "
          f"{pair_task_name(4096, 16)} ({sweeps}); select one with 'lc_kvrecall_4k_p*'")
    for family in ("copy", "statetrack"):
        sweep = SWEEPS[family]
        points = "; ".join(f"{label}: {sweep.letter}{counts[0]}..{sweep.letter}{counts[-1]}"
                           for label, counts in sweep.counts.items())
        print(f"{sweep.option} sweeps: lc_{family}_<length>_{sweep.letter}<N>, zero-padded, e.g. "
              f"{sweep_task_name(family, 4096, 16)} ({points})")
    print("run a sweep: lc-eval run --model lc_hf --model_args pretrained=<model> "
          "--tasks 'lc_passkey_*'")
