"""The examples in lc_tasks' docstrings are true.

``lc_tasks`` imports nothing of ``lc_models``, so its examples get the offline test tokenizers
(``build_tokenizer(kind)``) from here.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from lc_models.zoo.tiny import build_tokenizer

MODULES = [
    "lc_tasks.words", "lc_tasks.prose", "lc_tasks.sizing", "lc_tasks.haystack",
    "lc_tasks.families", "lc_tasks.citations", "lc_tasks.options", "lc_tasks.tokenizer",
    "lc_tasks.prompts",
    "lc_tasks.scoring", "lc_tasks.dataset", "lc_tasks.generators",
    "lc_tasks.generators.common", "lc_tasks.generators.vt", "lc_tasks.generators.fwe",
    "lc_tasks.generators.kvrecall", "lc_tasks.generators.ppl", "lc_eval.summary", "lc_eval.server",
    "lc_tasks.generators.copy", "lc_tasks.generators.latent", "lc_tasks.generators.statetrack",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS,
                             extraglobs={"build_tokenizer": build_tokenizer})
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
