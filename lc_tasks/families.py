"""The task families and lengths: every variant is a row of data, not code.

One generator per *kind* (``passkey``, ``niah``, ``vt``, ``cwe``, ``fwe``, ``qa``,
``kvrecall``, ``ppl``, ``copy``, ``latent``, ``statetrack``) reads its family's ``params``. The YAML task files, the READMEs and the
sizing all read ``max_gen_toks`` and ``until`` from here, so they agree.

>>> FAMILIES["niah_multikey"].ruler, FAMILIES["niah_multikey"].params["num_keys"]
('niah_multikey_1', 4)
>>> task_name("passkey", 4096)
'lc_passkey_4k'
>>> pair_task_name(4096, 16), position_buckets(4096)
('lc_kvrecall_4k_p016', [(0, 1024), (1024, 2048), (2048, 4096)])
>>> sweep_task_name("copy", 4096, 64), sweep_task_name("statetrack", 16384, 4)
('lc_copy_4k_w064', 'lc_statetrack_16k_o004')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType
from typing import Any

__all__ = ["COPY_SWEEPS", "DEFAULT_DEPTHS", "FAMILIES", "GROUPS", "LENGTHS", "OPS_SWEEPS",
           "PAIR_SWEEPS", "READ_TWICE_KINDS", "RULER13", "SUITE", "SWEEPS", "Family", "Sweep",
           "bucket_label", "copy_gen_toks", "length_label", "pair_task_name", "position_buckets",
           "sweep_task_name", "task_name"]

# Label -> tokens of the model's own tokenizer (k = 1024, m = 1048576).
LENGTHS: dict[str, int] = {
    "1k": 1 << 10, "2k": 1 << 11, "4k": 1 << 12, "8k": 1 << 13, "16k": 1 << 14, "32k": 1 << 15,
    "64k": 1 << 16, "128k": 1 << 17, "256k": 1 << 18, "512k": 1 << 19, "1m": 1 << 20,
}

# 11 needle depths, percent of the haystack.
DEFAULT_DEPTHS: tuple[float, ...] = tuple(float(d) for d in range(0, 101, 10))


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # which generator: passkey | niah | vt | cwe | fwe | qa | kvrecall | ppl | copy
    #            | latent | statetrack
    ruler: str | None  # the RULER task it reproduces
    summary: str
    max_gen_toks: int  # 0: the family scores log-likelihoods and generates nothing
    until: tuple[str, ...] = ()
    haystack: str | None = None  # default haystack; None: the family has its own
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    num_samples: int = 100  # docs per task unless --metadata num_samples says otherwise

    @property
    def output_type(self) -> str:
        """lm-eval's request type of the family's tasks."""
        return "loglikelihood" if self.kind == "ppl" else "generate_until"


def copy_gen_toks(words: int) -> int:
    """``max_gen_toks`` of a copy task of ``words`` words: the passage's words have at most
    5 ASCII letters, so one with its space is at most 6 tokens of any tokenizer (one per
    character at worst), plus room for the end of the line.

    >>> copy_gen_toks(64)
    392
    """
    return 6 * words + 8


def _niah(name: str, ruler: str, summary: str, haystack: str, **params: Any) -> Family:
    base = {"key": "word", "value": "number", "num_keys": 1, "num_values": 1, "num_queries": 1}
    return Family(name, "niah", ruler, summary, max_gen_toks=128, haystack=haystack,
                  params=MappingProxyType(base | params))


_ROWS = [
    Family("passkey", "passkey", None,
           "one 5-digit pass key in repeated noise (Mohtashami & Jaggi, landmark attention)",
           max_gen_toks=16, until=("\n",), haystack="noise"),
    _niah("niah_single", "niah_single_1", "one word key -> 7-digit number, noise haystack",
          "noise"),
    _niah("niah_prose", "niah_single_2", "the same needle in prose", "prose"),
    _niah("niah_uuid", "niah_single_3", "word key -> UUID value, prose", "prose", value="uuid"),
    _niah("niah_multikey", "niah_multikey_1", "4 needles with different keys, ask one",
          "prose", num_keys=4),
    _niah("niah_needles", "niah_multikey_2", "the haystack is made of needles, ask one",
          "needles"),
    _niah("niah_uuidkv", "niah_multikey_3", "haystack of UUID -> UUID needles, ask one",
          "needles", key="uuid", value="uuid"),
    _niah("niah_multivalue", "niah_multivalue", "4 values under one key, return all",
          "prose", num_values=4),
    _niah("niah_multiquery", "niah_multiquery", "ask for 4 keys, return all values",
          "prose", num_keys=4, num_queries=4),
    Family("vt", "vt", "vt", "multi-hop variable tracing: name every variable bound to a value",
           max_gen_toks=30, haystack="noise",
           params=MappingProxyType({"num_chains": 1, "num_hops": 4})),
    Family("cwe", "cwe", "cwe", "common-word extraction: the 10 most frequent words of a list",
           max_gen_toks=120, params=MappingProxyType({"num_cw": 10})),
    Family("fwe", "fwe", "fwe", "frequent-word extraction: the 3 most frequent coded words",
           max_gen_toks=50, params=MappingProxyType({"alpha": 2.0, "word_len": 6})),
    Family("qa_squad", "qa", "qa_1", "question answering: the gold SQuAD paragraph at the "
           "depth among distractor paragraphs (needs the SQuAD v2 dev set)",
           max_gen_toks=32, params=MappingProxyType({"dataset": "squad"})),
    Family("qa_hotpot", "qa", "qa_2", "multi-hop question answering: the gold HotpotQA "
           "paragraphs at the depth among distractors (needs the HotpotQA dev set)",
           max_gen_toks=32, params=MappingProxyType({"dataset": "hotpotqa"})),
    Family("kvrecall", "kvrecall", None,
           "associative recall: num_pairs key -> number pairs spread through noise, "
           "num_queries of them asked (Zoology's MQAR in words)",
           max_gen_toks=48, haystack="noise",
           params=MappingProxyType({"num_pairs": 16, "num_queries": 1, "value_digits": 4})),
    Family("copy", "copy", None,
           "copying: a passage of copy_words random words in noise, to repeat word for word "
           "(Jelassi et al. 2024, Repeat After Me)",
           # no stop string: a model may start its answer on a new line (scored: the first
           # non-empty line), so "\n" would stop it before the passage
           max_gen_toks=copy_gen_toks(64), until=(), haystack="noise",
           params=MappingProxyType({"copy_words": 64})),
    Family("niah_latent", "latent", None,
           "a needle with no literal overlap: the question names what a character's fact "
           "implies (NoLiMa); literal: true asks the needle's own words as a control",
           max_gen_toks=16, until=("\n",), haystack="prose",
           params=MappingProxyType({"literal": False, "num_distractors": 4})),
    Family("statetrack", "statetrack", None,
           "state tracking: five boxes, num_ops swaps of their contents spread through "
           "noise, what one box holds at the end (Merrill et al. 2024)",
           max_gen_toks=16, until=("\n",), haystack="noise",
           params=MappingProxyType({"num_ops": 16, "parity": False})),
    Family("ppl", "ppl", None,
           "loss by position: the per-token negative log-likelihood of whole documents in "
           "log-spaced position buckets (0-1k, 1k-2k, 2k-4k, ...)",
           max_gen_toks=0, haystack="prose", num_samples=20),
]

FAMILIES: dict[str, Family] = {f.name: f for f in _ROWS}

# The eleven RULER-equivalent families averaged by the lc_suite_<len> groups
# (RULER's 13 minus its two QA tasks, which need downloaded data).
SUITE: tuple[str, ...] = tuple(f.name for f in _ROWS if f.ruler is not None and f.kind != "qa")
# All 13 RULER tasks, averaged by the lc_ruler_<len> groups (with the QA data given).
RULER13: tuple[str, ...] = tuple(f.name for f in _ROWS if f.ruler is not None)
# Group name -> the families it averages at one length.
GROUPS: dict[str, tuple[str, ...]] = {"suite": SUITE, "ruler": RULER13}


# Families whose prompts can be read twice (options query_first, repeat_context): all that
# ask a question about a context (lc_ppl scores documents and has none).
READ_TWICE_KINDS: tuple[str, ...] = ("passkey", "niah", "vt", "cwe", "fwe", "qa", "kvrecall",
                                     "copy", "latent", "statetrack")

# The pair-count sweeps of lc_kvrecall: length label -> pair counts, powers of 2 up to one pair
# per 32 tokens (a pair line is 10-20 tokens of a BPE tokenizer; ``lc_kvrecall_<len>_p<pairs>``;
# the length sweep at the default pair count is ``lc_kvrecall_<len>``).
PAIR_SWEEPS: dict[str, tuple[int, ...]] = {
    label: tuple(2**i for i in range(21) if 2**i <= LENGTHS[label] // 32)
    for label in ("1k", "4k", "16k")
}


# The passage-length sweeps of lc_copy: powers of 2 from 8 words up to one word per 16 tokens
# (the passage is read once and written once, at most 6 tokens a word each time):
# ``lc_copy_<len>_w<words>``.
COPY_SWEEPS: dict[str, tuple[int, ...]] = {
    label: tuple(2**i for i in range(3, 21) if 2**i <= LENGTHS[label] // 16)
    for label in ("4k", "16k")
}
# The operation-count sweeps of lc_statetrack: powers of 2 up to one swap per 64 tokens:
# ``lc_statetrack_<len>_o<ops>``.
OPS_SWEEPS: dict[str, tuple[int, ...]] = {
    label: tuple(2**i for i in range(21) if 2**i <= LENGTHS[label] // 64)
    for label in ("4k", "16k")
}


@dataclass(frozen=True)
class Sweep:
    """A count swept at fixed lengths: each point is a task ``lc_<family>_<len>_<letter><N>``
    whose YAML passes ``<kwarg>: N`` (fixing option ``option`` to N)."""

    family: str
    letter: str
    option: str  # the option the sweep fixes
    kwarg: str  # the dataset_kwargs key that carries the count
    counts: dict[str, tuple[int, ...]]  # length label -> counts


SWEEPS: dict[str, Sweep] = {
    "kvrecall": Sweep("kvrecall", "p", "num_pairs", "sweep_pairs", PAIR_SWEEPS),
    "copy": Sweep("copy", "w", "copy_words", "sweep_words", COPY_SWEEPS),
    "statetrack": Sweep("statetrack", "o", "num_ops", "sweep_ops", OPS_SWEEPS),
}


def sweep_task_name(family: str, tokens: int, count: int) -> str:
    """Task name of a sweep point, e.g. ``lc_copy_4k_w064``: the count zero-padded to the
    width of the sweep's largest at that length, so lm-eval's table lists it in order."""
    if family == "kvrecall":
        return pair_task_name(tokens, count)
    label = length_label(tokens)
    width = len(str(max(SWEEPS[family].counts.get(label, (count,)))))
    return f"lc_{family}_{label}_{SWEEPS[family].letter}{count:0{width}d}"


def length_label(tokens: int) -> str:
    """``4096 -> '4k'`` for the lengths in ``LENGTHS``."""
    for label, value in LENGTHS.items():
        if value == tokens:
            return label
    raise ValueError(f"{tokens} is not one of the task lengths {sorted(LENGTHS.values())}")


def task_name(family: str, tokens: int) -> str:
    """Task name of a family at a length, e.g. ``lc_niah_single_128k``."""
    return f"lc_{family}_{length_label(tokens)}"


def pair_task_name(tokens: int, pairs: int) -> str:
    """Task name of a kvrecall pair-count sweep point, e.g. ``lc_kvrecall_4k_p016``: the count
    is zero-padded to the width of the sweep's largest, so lm-eval's table (sorted by name)
    lists a sweep in numeric order."""
    width = len(str(max(tokens // 32, 1)))
    return f"lc_kvrecall_{length_label(tokens)}_p{pairs:0{width}d}"


def position_buckets(tokens: int) -> list[tuple[int, int]]:
    """The log-spaced position buckets of ``lc_ppl`` at a length: ``[0, 1k)``, then doublings.

    >>> position_buckets(1024), len(position_buckets(1 << 20))
    ([(0, 1024)], 11)
    """
    edges = [0, *(1024 << i for i in range(20) if (1024 << i) < tokens), tokens]
    return list(pairwise(edges))


def bucket_label(start: int, end: int) -> str:
    """``(1024, 2048) -> '1k-2k'``, the suffix of the bucket's metric (``nll_1k-2k``)."""
    short = {0: "0", **{v: k for k, v in LENGTHS.items()}}
    return f"{short.get(start, start)}-{short.get(end, end)}"
