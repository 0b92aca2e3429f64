"""Scoring: metric ``acc`` in [0, 1] for every family.

* passkey: 1 if the first integer in the output equals the key (landmark attention);
* QA families: RULER's string-match-part, 1 if any gold answer is in the output;
* copy: ``acc`` the fraction of the passage's words reproduced in order before the first
  error, and ``exact_match`` 1 if the output is the passage, word for word;
* niah_latent and statetrack: 1 if the output's first word is the answer (a name, an object),
  so that listing every candidate scores nothing;
* every other generating family (kvrecall too): RULER's string-match-all, the fraction of
  expected strings found in the output, case-insensitive;
* ppl: no ``acc``; the negative log-likelihood per token of each position bucket
  (``nll_<bucket>``, e.g. ``nll_1k-2k``) and of the whole document (``nll``), in nats,
  aggregated over the documents by :func:`token_mean`.

>>> process_results({"family": "passkey", "outputs": ["12345"]}, [" 12345. Remember it."])
{'acc': 1.0}
>>> process_results({"family": "niah_multivalue", "outputs": ["11", "22"]}, ["11 and 33"])
{'acc': 0.5}
>>> process_results({"family": "copy", "outputs": ["red fox ran"]}, [" red fox sat"])
{'acc': 0.6666666666666666, 'exact_match': 0.0}
>>> buckets = [{"label": "0-1k", "start": 1, "end": 1024}, {"label": "1k-2k", "start": 1024,
...            "end": 2000}]
>>> process_results({"family": "ppl", "buckets": buckets}, [(-2046.0, False), (-976.0, False)])
{'nll_0-1k': (2046.0, 1023), 'nll_1k-2k': (976.0, 976), 'nll': (3022.0, 1999)}
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lc_tasks.families import FAMILIES

__all__ = ["clean", "copy_prefix", "first_integer_match", "first_word_match", "process_results", "string_match_all",
           "string_match_part", "token_mean"]

_CONTROL = re.compile(r"[\x00-\x1f]")
_INTEGER = re.compile(r"\d+")
_WORD = re.compile(r"[A-Za-z0-9']+")


def clean(prediction: str) -> str:
    """RULER's post-processing: control characters become newlines, ends stripped."""
    return _CONTROL.sub("\n", prediction.strip()).strip()


def string_match_all(prediction: str, references: Sequence[str]) -> float:
    """Fraction of ``references`` that occur in ``prediction``, ignoring case.

    >>> string_match_all("The Words: apple, PEAR", ["apple", "pear", "plum"])
    0.6666666666666666
    """
    pred = clean(prediction).lower()
    return sum(r.lower() in pred for r in references) / len(references)


def string_match_part(prediction: str, references: Sequence[str]) -> float:
    """1.0 if any of ``references`` occurs in ``prediction``, ignoring case (RULER's QA score).

    >>> string_match_part("It is in France.", ["france", "French Republic"])
    1.0
    """
    pred = clean(prediction).lower()
    return float(any(r.lower() in pred for r in references))


def first_integer_match(prediction: str, key: str) -> float:
    """1.0 if the first run of digits in ``prediction`` is ``key``.

    >>> first_integer_match("It is 4 then 12345", "12345"), first_integer_match("12345", "12345")
    (0.0, 1.0)
    """
    found = _INTEGER.search(prediction)
    return float(found is not None and found.group() == key)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def copy_prefix(prediction: str, passage: str) -> tuple[float, float]:
    """``(fraction of the passage's words reproduced in order before the first error, exact
    match)`` of the output's first non-empty line (models often start on a new line, and
    copy tasks do not stop at one), without a leading "Passage:" label, ignoring case and
    punctuation; words past the passage spoil only the exact match.

    >>> copy_prefix("Red fox, ran far.", "red fox ran"), copy_prefix("fox ran", "red fox ran")
    ((1.0, 0.0), (0.0, 0.0))
    >>> copy_prefix("\\n Red fox ran.\\nThat is all.", "red fox ran")
    (1.0, 1.0)
    >>> copy_prefix("Passage: red fox ran", "red fox ran")
    (1.0, 1.0)
    """
    prediction = next((line for line in prediction.splitlines() if line.strip()), "")
    # the passage's line in the context starts with this label; a copy of the line may too
    prediction = re.sub(r"^\s*passage\s*:", "", prediction, flags=re.IGNORECASE)
    want, got = _words(passage), _words(clean(prediction))
    run = 0
    while run < min(len(want), len(got)) and want[run] == got[run]:
        run += 1
    return run / len(want), float(got == want)


def first_word_match(prediction: str, answer: str) -> float:
    """1.0 if the output starts with the answer's words (ignoring case and punctuation).

    >>> first_word_match(" Yuki. Or Mara.", "Yuki"), first_word_match("Mara or Yuki", "Yuki")
    (1.0, 0.0)
    """
    want = _words(answer)
    return float(_words(clean(prediction))[:len(want)] == want)


def token_mean(items: Sequence[tuple[float, int]]) -> float:
    """lm-eval aggregation of ``(nll, tokens)`` pairs: nats per token over all of them.

    >>> token_mean([(10.0, 4), (2.0, 2)])
    2.0
    """
    tokens = sum(n for _, n in items)
    return sum(nll for nll, _ in items) / tokens if tokens else float("nan")


def _position_loss(doc: dict, results: Sequence[tuple[float, bool]]) -> dict:
    out: dict = {}
    for bucket, (loglikelihood, _) in zip(doc["buckets"], results, strict=True):
        out[f"nll_{bucket['label']}"] = (-float(loglikelihood), bucket["end"] - bucket["start"])
    out["nll"] = (sum(v[0] for v in out.values()), sum(v[1] for v in out.values()))
    return out


def process_results(doc: dict, results: list) -> dict:
    """lm-eval hook: ``results`` holds the one generation for ``doc`` (``lc_ppl``: one
    ``(loglikelihood, is_greedy)`` per position bucket)."""
    if FAMILIES[doc["family"]].kind == "ppl":
        return _position_loss(doc, results)
    prediction = results[0] if results else ""
    if doc["family"] == "passkey":
        return {"acc": first_integer_match(prediction, doc["outputs"][0])}
    kind = FAMILIES[doc["family"]].kind
    if kind == "copy":
        acc, exact = copy_prefix(prediction, doc["outputs"][0])
        return {"acc": acc, "exact_match": exact}
    if kind in ("latent", "statetrack"):
        return {"acc": first_word_match(prediction, doc["outputs"][0])}
    if kind == "qa":
        return {"acc": string_match_part(prediction, doc["outputs"])}
    return {"acc": string_match_all(prediction, doc["outputs"])}
