"""The house: three floors whose imports point down only, and no import circle.

``lc_tasks`` (what ships to lm-eval) at the bottom, ``lc_models`` (``lc_hf``) above it, the
application ``lc_eval`` on top; ``benchmarks/`` and ``scripts/`` above all. Every import
counts, lazy ones inside functions included (``docs/development.md``, "The house").
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ["lc_tasks", "lc_models", "lc_eval"]  # bottom to top


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for floor in FLOORS for p in sorted((ROOT / floor).rglob("*.py"))}


MODULES = _sources()


def _imported(path: Path) -> set[str]:
    """The modules a file imports, lazily or not, through ``import``, ``from ... import``
    (``from a import b`` is ``a.b`` where that is a module) or ``importlib.import_module``
    with a constant name."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            out |= subs or {node.module}
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id",
              None)) in ("import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.add(node.args[0].value)
    return out


def _floor(module: str) -> int | None:
    top = module.split(".")[0]
    return FLOORS.index(top) if top in FLOORS else None


GRAPH = {name: {m for m in _imported(path) if _floor(m) is not None}
         for name, path in MODULES.items()}


@pytest.mark.parametrize("floor", FLOORS)
def test_imports_point_down_only(floor):
    level = FLOORS.index(floor)
    upward = sorted(f"{name} imports {m}" for name, imported in GRAPH.items()
                    if _floor(name) == level for m in imported if _floor(m) > level)
    assert not upward, "an import reaches a higher floor:\n" + "\n".join(upward)


def test_the_packages_import_no_benchmark_or_script():
    for name, path in MODULES.items():
        tops = {m.split(".")[0] for m in _imported(path)}
        assert not tops & {"benchmarks", "scripts", "tests", "conftest"}, name


def test_imports_are_absolute():
    """The graph reads absolute imports; a relative one would hide an arrow."""
    relative = [name for name, path in MODULES.items()
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert not relative, f"relative imports in {relative}"


def test_lc_tasks_does_not_name_the_floors_above_it():
    """Not even in a string handed to importlib: the tasks must run from lm-eval's own folder,
    where neither lc_models nor lc_eval exists."""
    for path in sorted((ROOT / "lc_tasks").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "lc_models" not in text, path
        assert not re.search(r"(?<![\w./])lc_eval\.\w", text), path


@pytest.mark.parametrize("floor", FLOORS[:-1])
def test_no_module_name_of_a_higher_floor_in_a_string(floor):
    """A table of module names (``"pkg.mod"`` or ``"pkg.mod:obj"``) is an import in waiting."""
    above = "|".join(FLOORS[FLOORS.index(floor) + 1:])
    name = re.compile(rf"^({above})(\.\w+)*(:\w+)?$")
    found = [f"{path.relative_to(ROOT)}: {node.value!r}"
             for path in sorted((ROOT / floor).rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and name.match(node.value)]
    assert not found, "\n".join(found)


def test_the_model_plugin_teaches_the_tasks_its_names():
    """lc_tasks alone knows no short name; importing lc_models registers them."""
    script = ("from lc_tasks.tokenizer import local_path; before = local_path('tiny-llama'); "
              "import lc_models; print(before, local_path('tiny-llama').endswith('zoo/tiny-llama'))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["tiny-llama", "True"]


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan)."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node] & graph.keys()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1 or node in graph[node]:
                circles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circle():
    assert not _circles(GRAPH), f"modules that import each other: {_circles(GRAPH)}"


def test_the_circle_check_sees_a_lazy_import(tmp_path):
    lazy = tmp_path / "beyond.py"
    lazy.write_text("def section():\n    from lc_eval.report.markdown import table\n")
    assert _imported(lazy) == {"lc_eval.report.markdown"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def test_lc_tasks_holds_no_command_line_program():
    assert not (ROOT / "lc_tasks" / "__main__.py").exists()
    for path in sorted((ROOT / "lc_tasks").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "argparse" not in _imported(path), path
        assert not any(isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                       and node.left.id == "__name__" for node in ast.walk(ast.parse(text))), path


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_console_script_and_plugin_entry_points():
    project = _pyproject()["project"]
    assert project["scripts"] == {"lc-eval": "lc_eval.cli:main"}
    assert project["entry-points"]["lm_eval.tasks"] == {"lc_eval": "lc_tasks:include_path"}
    assert project["entry-points"]["lm_eval.models"] == {"lc_hf": "lc_models.adapter:LongContextLM"}


def test_every_package_ships():
    """Each folder with an ``__init__.py`` is in pyproject's package list (it is kept by hand)."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {_module_name(p) for floor in FLOORS for p in (ROOT / floor).rglob("__init__.py")}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"
