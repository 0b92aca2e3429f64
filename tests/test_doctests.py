"""The examples in the docstrings are true: every module of lc_tasks, lc_models and lc_eval
whose source holds one (``>>>``), all of them but those marked ``+SKIP``.

``lc_tasks`` imports nothing of ``lc_models``, so its examples get the offline test tokenizers
(``build_tokenizer(kind)``) from here.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from lc_models.zoo.tiny import build_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def _with_examples() -> list[str]:
    names = []
    for floor in ("lc_tasks", "lc_models", "lc_eval"):
        for path in sorted((ROOT / floor).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = list(path.relative_to(ROOT).with_suffix("").parts)
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _with_examples()


def test_the_modules_are_found():
    assert {"lc_tasks.sizing", "lc_models.ops.wkv7", "lc_eval.server"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runnable = [example for test in doctest.DocTestFinder().find(module)
                for example in test.examples if not example.options.get(doctest.SKIP)]
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS,
                             extraglobs={"build_tokenizer": build_tokenizer})
    assert result.attempted == len(runnable), f"{name}: {result.attempted} of {len(runnable)} ran"
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
