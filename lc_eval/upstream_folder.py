"""The copy of ``lc_tasks`` that lm-eval's task folder carries, as ``lc_eval/lc_tasks/``.

``lc_tasks`` is exactly the code that ships to lm-eval (the application lives in ``lc_eval``,
the models in ``lc_models``), so the copy is the package whole: every module and every data
file (word lists, prompt templates; ``CARRIED``), but not ``task_configs/`` (an installed
package holds the YAMLs there; the folder carries its own). The folder is the same from a
checkout, an editable install or a wheel. Each module is copied byte for byte with two changes
only, both undone by ``original``:

* a three-line header: where it comes from, ``# ruff: noqa`` and ``# fmt: off`` (lm-eval's
  pre-commit runs ruff's linter and formatter with its own rules; the copy stays the tested
  code rather than a reformatted variant of it);
* ``lc_tasks`` becomes ``lm_eval.tasks.lc_eval.lc_tasks`` in import statements and in
  ``files("lc_tasks")`` (package data), so the copy imports itself, never an installed lc-eval.

A module that imports anything outside the standard library and lm-eval's own dependencies
(torch, ``lc_models``, ``lc_eval``) is an error: the folder must run with what lm-eval installs.

>>> rels = [p.relative_to(ROOT).as_posix() for p in package_files()]
>>> "generators/niah.py" in rels, "data/" in " ".join(rels), "task_configs" in " ".join(rels)
(True, True, False)
>>> original(vendored("from lc_tasks.errors import UsageError\\n", "errors.py")) == \\
...     "from lc_tasks.errors import UsageError\\n"
True
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import lc_tasks

__all__ = ["PACKAGE", "PREFIX", "ROOT", "check_imports", "copy_package", "original",
           "package_files", "vendored"]

PACKAGE = "lc_tasks"
PREFIX = "lm_eval.tasks.lc_eval.lc_tasks"  # the copy's import name inside lm-eval
ROOT = Path(lc_tasks.__file__).resolve().parent  # the package's folder, wherever installed
# What lm-eval installs ([hf] for transformers, as its own RULER tasks need): the only
# third-party imports the copy may make.
ALLOWED = frozenset({"datasets", "huggingface_hub", "jinja2", "lm_eval", "numpy", "tqdm",
                     "transformers", "yaml"})
# What the package is made of (pyproject.toml's package-data for lc_tasks, and its modules);
# anything else on disk (an editor's backup, a stray note, an installed task_configs/) stays out.
CARRIED = ("**/*.py", "templates/*.jinja", "data/*")

_IMPORT = re.compile(rf"^(\s*)(from|import) {PACKAGE}(?=[\s.])", re.MULTILINE)
_FILES = re.compile(rf"""files\((["']){PACKAGE}\1\)""")
_HEADER = ("# Generated from lc-eval's lc_tasks/{path} by scripts/make_upstream_folder.py; "
           "edit it there.\n# ruff: noqa\n# fmt: off\n")


def package_files() -> list[Path]:
    """Every file of the package the copy carries (``CARRIED``), sorted."""
    return sorted({p for pattern in CARRIED for p in ROOT.glob(pattern) if p.is_file()
                   and not {"task_configs", "__pycache__"} & set(p.relative_to(ROOT).parts)})


def _imports(tree: ast.AST) -> list[str]:
    """Every module name an ``import`` or ``from ... import`` of ``tree`` names (lazy ones
    inside functions too)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def check_imports(files: list[Path]) -> None:
    """Raise ``ValueError`` for an import in ``files`` that lm-eval cannot satisfy."""
    for path in files:
        if path.suffix != ".py":
            continue
        for imported in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            top = imported.split(".")[0]
            if top != PACKAGE and top not in ALLOWED and top not in sys.stdlib_module_names:
                raise ValueError(f"lc_tasks/{path.relative_to(ROOT).as_posix()} imports "
                                 f"{imported!r}, which lm-eval does not install: the upstream "
                                 "folder's code must need only lm-eval's dependencies "
                                 f"({', '.join(sorted(ALLOWED))})")


def vendored(text: str, path: str) -> str:
    """The copy of module source ``text`` (``path``: its path in the package)."""
    if PREFIX in text:  # `original` could not undo the rename
        raise ValueError(f"lc_tasks/{path} contains {PREFIX!r}; write it differently")
    text = _FILES.sub(rf'files("{PREFIX}")', _IMPORT.sub(rf"\1\2 {PREFIX}", text))
    return _HEADER.format(path=path) + text


def original(text: str) -> str:
    """The package source a copied module was made from (``vendored``'s inverse)."""
    header_lines = _HEADER.count("\n")
    body = text.split("\n", header_lines)[header_lines]
    return body.replace(PREFIX, PACKAGE)


def copy_package(target: Path) -> list[Path]:
    """Write the copy of the package (``package_files``) into ``target`` (the copy's
    ``lc_tasks/``); returns the files written."""
    files = package_files()
    check_imports(files)
    written = []
    for source in files:
        rel = source.relative_to(ROOT).as_posix()
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".py":
            out.write_text(vendored(source.read_text(encoding="utf-8"), rel), encoding="utf-8")
        else:
            out.write_bytes(source.read_bytes())
        written.append(out)
    return written
