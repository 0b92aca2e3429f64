"""``lc-eval report RUN... --out DIR``: the command-line face of ``lc_eval.report``."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from lc_eval.report.effective import RULER_THRESHOLD
from lc_eval.report.names import parse_length


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Add ``report`` to lc-eval's subcommands (see ``lc_eval.cli.SUBCOMMANDS``)."""
    parser = subparsers.add_parser(
        "report",
        help="Tables, effective context lengths and figures from lm-eval output",
        description=(
            "Build a long-context report from lm-eval output:\n"
            "  report.md   model x length tables per family and for the suite, effective\n"
            "              context length, other lm-eval tasks of the same runs\n"
            "  scores.csv  one row per (model, family, length, depth)\n"
            "  leaderboard.md/.csv  RULER's leaderboard table (claimed and effective\n"
            "              length, score per length, Avg, wAvg inc/dec), published rows beside\n"
            "  *.png       score-vs-length curves, depth x length heatmaps"
        ),
        epilog=textwrap.dedent(
            """\
            examples:
              lc-eval report results/ --out report/
              lc-eval report results/llama results/mamba/results_2025-01-01T00-00-00.json \\
                  --out report/ --name llama-7b=Llama --training-length Llama=4k
            """
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN",
        help="an lm-eval --output_path folder (searched for results_*.json) or a results file",
    )  # fmt: skip
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    parser.add_argument(
        "--name", action="append", default=[], metavar="OLD=NEW", type=_pair,
        help="rename a model (OLD: its automatic name or recorded model name); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--training-length", "--training_length", action="append", default=[], metavar="MODEL=TOKENS", type=_pair,
        help="a model's training length (4096 or 4k), over its checkpoint config; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=_percent, default=RULER_THRESHOLD, metavar="PERCENT",
        help=f"score for the effective context length (default: RULER's {RULER_THRESHOLD})",
    )  # fmt: skip
    parser.add_argument(
        "--families", type=_names,
        metavar="A,B,...", help="families to report, 'suite' included (default: all found)",
    )  # fmt: skip
    parser.add_argument(
        "--summary", metavar="FAMILY",
        help="family of the summary table (default: suite if scored, else the first family)",
    )  # fmt: skip
    parser.add_argument(
        "--depth-step", "--depth_step", type=_step, default=10.0, metavar="PERCENT",
        help="needle depths are rounded to multiples of this (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--no-figures", "--no_figures", action="store_true", help="skip the PNG figures"
    )
    parser.add_argument(
        "--published", metavar="CSV", action="append", default=[],
        help="rows of a published leaderboard (RULER's table) to set beside ours: columns "
             "model, claimed length, effective length, then one per length (4k, 8k, ...)",
    )  # fmt: skip
    parser.add_argument(
        "--claimed-length", "--claimed_length", action="append", default=[], type=_pair,
        metavar="MODEL=TOKENS", help="a model's claimed context length in the leaderboard "
        "(default: its training length); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--leaderboard-lengths", "--leaderboard_lengths", metavar="4k,8k,...",
        type=_lengths,
        help="the leaderboard's length columns (default: those of the summary family; "
             "RULER's own: 4k,8k,16k,32k,64k,128k)",
    )  # fmt: skip
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    """Build and write the report; bad input exits with one line naming the problem."""
    from lc_eval.report import build_report, write_report

    try:
        training = {name: _tokens("--training-length", name, tokens)
                    for name, tokens in args.training_length}
        _check_out(args.out)
        report = build_report(
            args.runs,
            names=dict(args.name),
            training_lengths=training,
            threshold=args.threshold,
            families=args.families,
            summary_family=args.summary,
            depth_step=args.depth_step,
        )
        from lc_eval.report.leaderboard import read_published

        published = [row for path in args.published for row in read_published(path)]
        claimed = {name: _tokens("--claimed-length", name, tokens)
                   for name, tokens in args.claimed_length}
        unknown = sorted(set(claimed) - {model.name for model in report.models})
        if unknown:
            raise ValueError(f"--claimed-length {unknown[0]}=...: no model of that name; models: "
                             f"{', '.join(sorted(model.name for model in report.models))}")
        written = write_report(report, args.out, figures=not args.no_figures,
                               published=published, claimed=claimed,
                               lengths=args.leaderboard_lengths)
    except ValueError as e:
        raise SystemExit(f"lc-eval report: {e}") from None
    except OSError as e:  # --out cannot be written
        raise SystemExit(f"lc-eval report: --out {args.out}: cannot write there "
                         f"({e.strerror or e}); pass a writable folder") from None
    pngs = sum(p.suffix == ".png" for p in written)
    board = " leaderboard.md/.csv," if any(p.name == "leaderboard.md" for p in written) else ""
    print(
        f"wrote {args.out}/report.md, scores.csv,{board} and {pngs} figure(s) for "
        f"{len(report.models)} model(s) from {len(report.runs)} results file(s)"
    )


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _percent(text: str) -> float:
    """``--threshold``: a score in percent, 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 100:  # nan too
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage in [0, 100]; RULER's "
                                         f"threshold is {RULER_THRESHOLD}")
    return value


def _step(text: str) -> float:
    """``--depth-step``: a positive percentage, at most 100."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage in (0, 100], e.g. 10")
    return value


def _names(text: str) -> list[str]:
    """``--families``: one or more comma-separated names."""
    names = [f.strip() for f in text.split(",") if f.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no family; pass e.g. niah_single,vt")
    return names


def _lengths(text: str) -> list[int]:
    """``--leaderboard-lengths``: one or more lengths of at least one token."""
    try:
        lengths = [parse_length(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not lengths or min(lengths) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more lengths of at least one "
                                         "token, e.g. 4k,8k,16k")
    return lengths


def _tokens(flag: str, name: str, text: str) -> int:
    """A MODEL=TOKENS value's tokens, at least one."""
    tokens = parse_length(text)
    if tokens < 1:
        raise ValueError(f"{flag} {name}={text}: a length is at least one token, e.g. 4k")
    return tokens


def _check_out(out: str) -> None:
    """``--out`` is a folder, or a path one can be made at."""
    path = Path(out)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file; pass a folder to write into")
