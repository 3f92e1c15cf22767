"""The layout docs/architecture.md promises: no import circle in ``numdiff/``, no
module over about 400 lines in ``numdiff/`` or ``validation/``, and a thin
``EmpiricalScore``.

Imports are read from the source (``ast``), every one of them, those inside
functions included: a lazy import that closes a circle still couples the modules.
The circle finder is checked on a package written here with a known circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# "About 400 lines": a module that grows past this is split (docs/architecture.md).
MAX_LINES = 430
EMPIRICAL_SCORE_MAX_LINES = 250


def module_names(package):
    """``{dotted name: path}`` of every module under the folder ``package``."""
    names = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_graph(package):
    """``{module: set of modules of the same package it imports}``; a package's import
    of its own submodules is not an edge (that is how a package is assembled)."""
    names = module_names(package)
    graph = {name: set() for name in names}
    for name, path in names.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in names:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def circles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle_through_a_lazy_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("from pkg.sub.b import g\n\ndef f():\n    return g()\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def g():\n    from .. import a\n    return a\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    assert circles(import_graph(pkg)) == [["pkg.a", "pkg.sub.b"]]


def test_no_import_circle_in_numdiff():
    assert circles(import_graph(ROOT / "numdiff")) == []


@pytest.mark.parametrize("package", ["numdiff", "validation"])
def test_no_module_over_about_400_lines(package):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / package).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules: {long}"


def test_empirical_score_stays_thin():
    tree = ast.parse((ROOT / "numdiff" / "score.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "EmpiricalScore"]
    assert cls.end_lineno - cls.lineno + 1 <= EMPIRICAL_SCORE_MAX_LINES
