"""The import graph of ``connector/`` has no cycle, and no module is past the size the house style
allows (STYLE: values several modules share live in a leaf module, so the import graph has no
cycle; a file past ~300 lines is asking to be split). The graph is read from the source with
:mod:`ast`, so every import counts: at module level, inside functions and under ``if
TYPE_CHECKING:``. Each module is a node, a package's ``__init__`` one named as the package; an
import names the module it imports (``from connector.flow import observe``: the module
``connector.flow.observe``), not the packages Python loads on the way."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "connector"
MAX_LINES = 300
#: The loop's module: reading its main loop should read like SPEC §2, so it stays shorter.
PIPELINE, PIPELINE_MAX_LINES = "connector/pipeline.py", 250

#: Per module, the modules it imports, each with the line of its first import.
Graph = dict[str, dict[str, int]]


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (a folder under ``root``) by its dotted name."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name of the module ``from … import`` reads from (relative imports too)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, node.module] if node.module else parts)


def _known(name: str, known: Collection[str]) -> str | None:
    """``name`` if it is one of ``known``, else the closest package around it that is."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if (candidate := ".".join(parts[:end])) in known:
            return candidate
    return None


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: Collection[str]
) -> set[str]:
    """The modules of ``known`` one import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:  # ``from base import x``: the module ``base.x`` if there is one, else ``base``
        base = _base(node, module, is_package)
        names = {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {target for name in names if (target := _known(name, known)) is not None}


def import_graph(root: Path, package: str) -> Graph:
    """Who imports whom among the modules of ``package``, from their source."""
    known = modules(root, package)
    graph: Graph = {}
    for module, path in known.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, module, path.name == "__init__.py", known):
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
    return graph


def components(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph``, each sorted (Tarjan's algorithm, walking
    depth first with a stack of iterators instead of recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []  # nodes visited and not in a component yet
    walk: list[tuple[str, Iterator[str]]] = []  # the path from the start, with what is left
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        walk.append((node, iter(graph.get(node, ()))))

    for start in graph:
        if start not in index:
            visit(start)
        while walk:
            node, successors = walk[-1]
            for successor in successors:
                if successor not in index:
                    visit(successor)
                    break
                if successor in stack:
                    low[node] = min(low[node], index[successor])
            else:
                walk.pop()
                if walk:
                    parent = walk[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    cut = stack.index(node)
                    found.append(sorted(stack[cut:]))
                    del stack[cut:]
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """The modules of each import cycle: a component of more than one, or one importing itself."""
    return [c for c in components(graph) if len(c) > 1 or c[0] in graph[c[0]]]


def describe(graph: Graph, cycle: list[str]) -> str:
    """A cycle's modules and the imports inside it, with their lines."""
    members = set(cycle)
    imports = [
        f"    {module}:{line} imports {target}"
        for module in cycle
        for target, line in sorted(graph[module].items())
        if target in members
    ]
    return "\n".join([" <-> ".join(cycle), *imports])


def test_connector_has_no_import_cycle() -> None:
    """Every module of ``connector/`` is in no cycle, even through annotations only."""
    graph = import_graph(ROOT, PACKAGE)
    assert "connector.flow.tally" in graph["connector.flow.outcomes"]  # the reader reads imports
    found = cycles(graph)
    assert found == [], "import cycles:\n" + "\n".join(describe(graph, c) for c in found)


def test_the_checker_finds_a_cycle_however_it_is_imported(tmp_path: Path) -> None:
    """A cycle through a module-level, an annotation-only and a function-local relative import is
    found, as is a module importing itself; an acyclic package is not flagged."""
    sources = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import x\n",
        "c.py": "def late() -> None:\n    from .a import y\n",
        "d.py": "import pkg.d\n",
        "e.py": "from pkg.sub import f\nimport pkg, json\n",
        "sub/__init__.py": "from . import f\n",
        "sub/f.py": "import pkg.sub.missing\n",
    }
    for name, text in sources.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text, encoding="utf-8")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == {"pkg.a": 2}
    assert graph["pkg.e"] == {"pkg.sub.f": 1, "pkg": 2}
    assert graph["pkg.sub"] == {"pkg.sub.f": 1}
    assert graph["pkg.sub.f"] == {"pkg.sub": 1}  # an unknown module counts as its package
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.d"], ["pkg.sub", "pkg.sub.f"]]
    assert "pkg.b:3 imports pkg.c" in describe(graph, ["pkg.a", "pkg.b", "pkg.c"])


def test_no_module_is_past_its_size() -> None:
    """No module of ``connector/`` is over 300 lines, and the pipeline is at most 250."""
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
    }
    limits = {path: PIPELINE_MAX_LINES if path == PIPELINE else MAX_LINES for path in sizes}
    assert PIPELINE in sizes
    assert {path: n for path, n in sizes.items() if n > limits[path]} == {}
