"""The package's modules import each other without cycles: read statically from the source (ast), nothing run.

Every import counts, at the top of a module or inside a function: a lazy
import hides a cycle from Python's loader, not from the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import caffe_relabel

ROOT = Path(caffe_relabel.__file__).parent
PACKAGE = ROOT.name


def _module_name(path: Path) -> str:
    parts = (PACKAGE,) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py") if not p.name.endswith("_pb2.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports: ``from P import m`` names module P.m where it exists."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            for a in node.names:
                sub = f"{parent}.{a.name}"
                out.add(sub if sub in known else parent)
    return {m for m in out if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_walk_sees_imports_and_would_see_a_cycle() -> None:
    graph = _graph()
    # Relative, absolute, package-level and function-level imports are all read.
    assert "caffe_relabel.relabel.settings" in graph["caffe_relabel.relabel.relabeller"]
    assert "caffe_relabel.cli.main" in graph["caffe_relabel.experiments.__main__"]
    assert "caffe_relabel.models.convert.efficientnet_lite_torch" in graph["caffe_relabel.models.convert.efficientnet_lite"]
    assert "caffe_relabel.experiments.plots" in graph["caffe_relabel.experiments.svm"]
    graph["caffe_relabel.relabel.batch_input"] = graph["caffe_relabel.relabel.batch_input"] | {"caffe_relabel.relabel.relabeller"}
    assert ["caffe_relabel.relabel.batch_input", "caffe_relabel.relabel.relabeller"] in _cycles(graph)


# The rooms (top-level modules and subpackages) from the ground up: a room imports only rooms on its
# own floor or lower ones, so no import runs back up. `python -m caffe_relabel.experiments` is the one
# entry point allowed to name the CLI above it.
FLOORS = (
    ("errors", "version"),
    ("numerics", "threads", "interrupts", "devices"),
    ("files",),
    ("netdef",),
    ("engine", "images"),
    ("backends",),
    ("models",),
    ("relabel",),
    ("experiments",),
    ("cli",),
    ("",),  # the package's __init__: the public API
)
ENTRY_POINTS = {"caffe_relabel.experiments.__main__"}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_tree_is_the_architecture() -> None:
    floor = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
    graph = _graph()
    assert {_room(m) for m in graph} == set(floor), "a new room needs its floor in FLOORS"
    upward = sorted((a, b) for a, targets in graph.items() if a not in ENTRY_POINTS for b in targets
                    if floor[_room(b)] > floor[_room(a)])
    assert upward == []
    loose = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(loose) <= 8, loose
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if not p.name.endswith("_pb2.py")
            for n in [len(p.read_text().splitlines())] if n > 400}
    assert long == {}


def test_netdef_needs_no_torch() -> None:
    """Caffe's formats and rules load and check nets on a machine without torch."""
    torch_users = sorted(m for m, p in _modules().items() if _room(m) == "netdef"
                         and any(isinstance(n, (ast.Import, ast.ImportFrom)) and "torch" in ast.unparse(n)
                                 for n in ast.walk(ast.parse(p.read_text()))))
    assert torch_users == []
