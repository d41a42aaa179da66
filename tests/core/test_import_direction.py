"""Imports run one way: from the stages of the flow down to the layers beneath them.

io -> preprocess/denoise -> segment/detect -> features -> report; only the pipeline, the study,
the CLI and the napari plugin compose stages. Each package has a rank; a package imports only
packages of a lower rank (imports inside functions count too), never a private module of
another package, and the modules of one package form no import circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import cascope

SRC = Path(cascope.__file__).parent

#: The layer of each package (and top-level module) of cascope.
RANK = {
    "errors": 0,
    "_json": 0,
    "_progress": 0,
    "_device": 1,
    "config": 1,
    "io": 2,
    "__init__": 3,  # the public API: re-exports errors and io
    "preprocess": 3,
    "metrics": 4,
    "qc": 4,
    "simulate": 4,
    "models": 4,
    "morphology": 4,
    "training": 5,
    "tiling": 5,
    "denoise": 6,
    "segment": 7,
    "events": 7,
    "report": 8,
    "pipeline": 9,
    "study": 10,
    "cli": 11,
    "napari": 11,
    "__main__": 12,
}


def _unit(path: Path) -> tuple[str, str]:
    """(package, module) of a source file, e.g. ("io", "_api") or ("pipeline", "")."""
    rel = path.relative_to(SRC).with_suffix("").parts
    if len(rel) == 1:
        return rel[0], ""
    return rel[0], ".".join(p for p in rel[1:] if p != "__init__")


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every ``cascope...`` module imported by a file, with its line (function bodies too)."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {  # imports under ``if TYPE_CHECKING:`` never run
        id(n)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for stmt in branch.body
        for n in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("cascope")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "cascope":  # from cascope import io, _json, __version__
                found += [
                    (f"cascope.{a.name}" if a.name in RANK else "cascope", node.lineno)
                    for a in node.names
                ]
            elif node.module.startswith("cascope."):
                found.append((node.module, node.lineno))
    return found


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_package_has_a_rank():
    assert {_unit(p)[0] for p in _sources()} <= set(RANK)


def test_packages_import_only_lower_layers():
    against = []
    for path in _sources():
        pkg, _ = _unit(path)
        for module, line in _imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else "__init__"
            if target != pkg and RANK[target] >= RANK[pkg]:
                against.append(f"{path.relative_to(SRC)}:{line} {pkg} -> {module}")
    assert against == [], "imports against the flow:\n" + "\n".join(against)


def test_no_private_module_of_another_package():
    private = []
    for path in _sources():
        pkg, _ = _unit(path)
        for module, line in _imports(path):
            parts = module.split(".")
            if len(parts) > 2 and parts[1] != pkg and any(p.startswith("_") for p in parts[2:]):
                private.append(f"{path.relative_to(SRC)}:{line} -> {module}")
    assert private == [], "private modules imported across packages:\n" + "\n".join(private)


def test_no_import_circle_inside_a_package():
    graph: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for path in _sources():
        pkg, mod = _unit(path)
        for module, _ in _imports(path):
            parts = module.split(".")
            if len(parts) > 2 and parts[1] == pkg:
                target = (pkg, ".".join(parts[2:]))
                if target != (pkg, mod) and mod:  # a package's __init__ re-exports its modules
                    graph[(pkg, mod)].add(target)
    circles = []
    state: dict[tuple[str, str], int] = {}

    def visit(node: tuple[str, str], trail: list[tuple[str, str]]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(f"{p}.{m}" for p, m in trail[trail.index(nxt) :]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [node])
    assert circles == [], "import circles:\n" + "\n".join(circles)
