"""The copy of ``lc_tasks`` that lm-eval's task folder carries, as ``lc_eval/lc_tasks/``.

The copy is the part of this package the folder's YAMLs reach: the modules their ``!function``
entries name and every module those import, found by reading the imports (``closure``), plus
the data folders those modules read (``files("lc_tasks").joinpath("data", ...)``: word lists,
prompt templates). Both are chosen from what the modules say, never from what sits beside
them on disk: an installed package also holds ``task_configs/``, which is no part of the copy,
so the folder is the same from a checkout, an editable install or a wheel. Each module is copied byte for byte
with two changes only, both undone by ``original``:

* a three-line header: where it comes from, ``# ruff: noqa`` and ``# fmt: off`` (lm-eval's
  pre-commit runs ruff's linter and formatter with its own rules; the copy stays the tested
  code rather than a reformatted variant of it);
* ``lc_tasks`` becomes ``lm_eval.tasks.lc_eval.lc_tasks`` in import statements and in
  ``files("lc_tasks")`` (package data), so the copy imports itself, never an installed lc-eval.

A module outside the standard library and lm-eval's own dependencies (torch, ``lc_models``)
anywhere in the closure is an error: the folder must run with what lm-eval installs.

>>> from lc_tasks.upstream_copy import closure
>>> mods = closure(["lc_tasks.upstream_entry"])
>>> "lc_tasks.generators.niah" in mods, "lc_tasks.cli" in mods
(True, False)
>>> original(vendored("from lc_tasks.errors import UsageError\\n", "errors.py")) == \\
...     "from lc_tasks.errors import UsageError\\n"
True
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

__all__ = ["PACKAGE", "PREFIX", "closure", "copy_package", "data_folders", "original",
           "vendored"]

PACKAGE = "lc_tasks"
PREFIX = "lm_eval.tasks.lc_eval.lc_tasks"  # the copy's import name inside lm-eval
ROOT = Path(__file__).resolve().parent  # this package's folder
# What lm-eval installs ([hf] for transformers, as its own RULER tasks need): the only
# third-party imports the copy may make.
ALLOWED = frozenset({"datasets", "huggingface_hub", "jinja2", "lm_eval", "numpy", "tqdm",
                     "transformers", "yaml"})

_IMPORT = re.compile(rf"^(\s*)(from|import) {PACKAGE}(?=[\s.])", re.MULTILINE)
_FILES = re.compile(rf"""files\((["']){PACKAGE}\1\)""")
_DATA = re.compile(rf"""files\((["']){PACKAGE}\1\)\s*\.joinpath\(\s*(["'])([\w.-]+)\2""")
_HEADER = ("# Generated from lc-eval's lc_tasks/{path} by scripts/make_upstream_folder.py; "
           "edit it there.\n# ruff: noqa\n# fmt: off\n")


def module_file(name: str) -> Path | None:
    """The source file of module ``lc_tasks[.x[.y]]`` in this package, or None."""
    parts = name.split(".")[1:]
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST) -> list[str]:
    """Every module name an ``import`` or ``from ... import`` of ``tree`` names (lazy ones
    inside functions too); ``from a import b`` gives ``a`` and ``a.b``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out += [f"{node.module}.{alias.name}" for alias in node.names]
    return out


def closure(entries: list[str]) -> list[str]:
    """The modules of this package that ``entries`` import, directly or not, with their
    parent packages, sorted. Raises ``ValueError`` for an import lm-eval cannot satisfy."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        for imported in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            top = imported.split(".")[0]
            if top == PACKAGE:
                todo.append(imported)
            elif top not in ALLOWED and top not in sys.stdlib_module_names:
                raise ValueError(f"{name} imports {imported!r}, which lm-eval does not install: "
                                 "the upstream folder's code must need only lm-eval's "
                                 f"dependencies ({', '.join(sorted(ALLOWED))})")
    return sorted(seen)


def data_folders(modules: list[str] | None = None) -> list[Path]:
    """The data folders ``modules`` (default: every module of the package) read through
    ``files("lc_tasks").joinpath("<folder>", ...)``, copied whole."""
    files = (ROOT.rglob("*.py") if modules is None
             else (module_file(name) for name in modules))
    names = {m.group(3) for path in files
             for m in _DATA.finditer(path.read_text(encoding="utf-8"))}
    return sorted(ROOT / n for n in names if (ROOT / n).is_dir())


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


def copy_package(entries: list[str], target: Path) -> list[Path]:
    """Write the copy of ``closure(entries)`` and the data folders into ``target`` (the copy's
    ``lc_tasks/``); returns the files written."""
    written = []
    modules = closure(entries)
    for name in modules:
        source = module_file(name)
        rel = source.relative_to(ROOT).as_posix()
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(vendored(source.read_text(encoding="utf-8"), rel), encoding="utf-8")
        written.append(out)
    for folder in data_folders(modules):
        for source in sorted(folder.rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts:
                out = target / source.relative_to(ROOT)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(source.read_bytes())
                written.append(out)
    return written
