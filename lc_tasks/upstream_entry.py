"""The entry points of lm-eval's own copy of the tasks (the folder ``lm_eval/tasks/lc_eval/``).

The copy's YAMLs name these two functions where ours name ``dataset.build`` and
``scoring.process_results``. They differ from those in two ways only, both for a folder that
lives inside lm-eval, where tasks are loaded with no model at all:

* **No tokenizer** (lm-eval's ``tests/test_tasks.py`` and ``TaskManager().load`` pass no
  model arguments): the docs are built for validation only, ``VALIDATION_DOCS`` of them, sized
  by ``ValidationTokenizer`` (a word-level stand-in), each marked ``validation_only``.
  ``process_results`` refuses such a doc, so a run never scores a prompt sized with the wrong
  tokenizer; a run with a model (``pretrained=`` or ``tokenizer=``) builds the usual docs,
  byte for byte those of ``dataset.build``.
* **QA without a data file**: ``qa_squad`` and ``qa_hotpot`` read the Hugging Face Hub copy of
  their dev set (``hf:rajpurkar/squad_v2``, ``hf:hotpotqa/hotpot_qa:distractor``), as lm-eval's
  own RULER QA tasks download theirs, unless ``--metadata`` names a local file.

>>> out = build(family="passkey", length=512)["test"]
>>> len(out), out[0]["validation_only"], out[0]["n_tokens"] <= 512 - 16
(10, True, True)
>>> process_results(out[0], ["12345"])
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: lc_passkey docs built without a tokenizer are for validation only ...
"""

from __future__ import annotations

import logging
import re
import zlib
from typing import Any

from lc_tasks import dataset, scoring
from lc_tasks.errors import UsageError
from lc_tasks.families import FAMILIES
from lc_tasks.generators import generate
from lc_tasks.options import seed_option, task_spec
from lc_tasks.qa_data import WHERE
from lc_tasks.tokenizer import tokenizer_name

__all__ = ["MARK", "VALIDATION_DOCS", "ValidationTokenizer", "build", "process_results"]

log = logging.getLogger("lm_eval.lc_tasks")

VALIDATION_DOCS = 10  # lm-eval's task tests look at 10 docs (their `limit` fixture)
MARK = "validation_only"  # the doc field that keeps a validation doc from being scored


class ValidationTokenizer:
    """A stand-in tokenizer for the validation docs of a task loaded without a model: one token
    per word, digit or other character, with the whitespace before it (about a BPE tokenizer's
    counts, so that every family fits at every length), ids from the token's text.

    It has the slice of a ``transformers`` tokenizer's call interface the generators use, and
    no special tokens. Never used for a scored doc (see ``process_results``).

    >>> tok = ValidationTokenizer()
    >>> [len(ids) for ids in tok(["The key is 42.", " ab"], add_special_tokens=False)["input_ids"]]
    [6, 1]
    >>> tok("ab c", return_offsets_mapping=True)["offset_mapping"]
    [(0, 2), (2, 4)]
    """

    is_fast = False
    _TOKEN = re.compile(r"\s*(?:[A-Za-z]+|\S)|\s+")

    def _encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        spans = [m.span() for m in self._TOKEN.finditer(text)]
        return [zlib.crc32(text[a:b].encode()) for a, b in spans], spans

    def __call__(self, text, add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False, verbose: bool = False) -> dict:
        if not isinstance(text, str):
            return {"input_ids": [self._encode(t)[0] for t in text]}
        ids, spans = self._encode(text)
        return {"input_ids": ids, "offset_mapping": spans} if return_offsets_mapping else \
            {"input_ids": ids}


def _with_qa_source(family: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the Hub copy of a QA family's dev set where no file is named."""
    info = FAMILIES[family]
    if info.kind != "qa" or options.get(info.params["dataset"]) is not None:
        return options
    return {**options, info.params["dataset"]: WHERE[info.params["dataset"]][2]}


def build(*, family: str, length: int, **options: Any) -> dict:
    """``{"test": datasets.Dataset}``: ``dataset.build``'s docs, or validation docs where the
    options name no tokenizer."""
    import datasets

    options = _with_qa_source(family, options)
    if tokenizer_name(options) is not None:
        return dataset.build(family=family, length=length, **options)
    log.warning("lc_%s: no tokenizer in the model arguments; building %d docs for validation "
                "only (sized by a stand-in tokenizer), which no run scores", family, VALIDATION_DOCS)
    spec = task_spec(family, length, **{"num_samples": VALIDATION_DOCS, **options})
    docs = generate(spec, ValidationTokenizer(), seed=seed_option(options))
    return {"test": datasets.Dataset.from_list([{**doc, MARK: True} for doc in docs])}


def process_results(doc: dict, results: list) -> dict:
    """``scoring.process_results``, refusing a validation doc."""
    if doc.get(MARK):
        raise UsageError(
            f"lc_{doc['family']} docs built without a tokenizer are for validation only and "
            "are never scored: pass --model_args pretrained=<model> (or tokenizer=<name or "
            "path>), or --metadata '{\"tokenizer\": \"<name or path>\"}'")
    return scoring.process_results(doc, results)
