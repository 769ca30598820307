"""The layout stays as docs/architecture.md describes it: no import cycles, dependencies one way.

The import graph is read from the source with :mod:`ast` (every ``import`` and
``from ... import``, at module level, inside functions and under ``TYPE_CHECKING`` alike),
so a lazy import cannot hide a dependency against the allowed direction.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent / "lbsim"

#: subpackage (or top-level module) -> its layer; a module may import only its own
#: subpackage and lower layers. Peers on one layer may not import each other, except
#: where ALLOWED_PEERS says so.
LAYERS: dict[str, int] = {
    "_version": 0,
    "scenario": 1,
    "octavia": 2,
    "haproxy": 2,
    "sim": 3,
    "results": 4,
    "api": 5,
    "figures": 5,
    "experiments": 6,
    "server": 6,
    "report": 7,
    "bench": 8,
    "cli": 9,
}
#: (importer, imported) pairs of peers that may depend on each other one way
ALLOWED_PEERS: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(root: Path = ROOT) -> nx.DiGraph:
    """Module -> lbsim modules it imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(files)
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = _resolve(mod, node, path.name == "__init__.py")
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in files else src for a in node.names]
            for t in targets:
                if t.startswith("lbsim") and t != mod:
                    while t not in files and "." in t:
                        t = t.rsplit(".", 1)[0]
                    g.add_edge(mod, t)
    return g


def area(mod: str) -> str | None:
    """The layer key of a module (None for the package root ``lbsim`` itself)."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def violations(g: nx.DiGraph) -> list[str]:
    out = []
    for a, b in g.edges:
        la, lb = area(a), area(b)
        if la is None or la == lb:
            continue
        if lb is None:
            out.append(f"{a} imports the package root 'lbsim' (import from the defining module)")
            continue
        if la not in LAYERS or lb not in LAYERS:
            out.append(f"{a} -> {b}: {la if la not in LAYERS else lb} has no layer in LAYERS")
        elif LAYERS[lb] > LAYERS[la] or (LAYERS[lb] == LAYERS[la] and (la, lb) not in ALLOWED_PEERS):
            out.append(f"{a} -> {b}: {la} (layer {LAYERS[la]}) may not import {lb} (layer {LAYERS[lb]})")
    return out


def test_no_import_cycles() -> None:
    g = import_graph()
    cycles = list(nx.simple_cycles(g))
    assert cycles == [], f"import cycles: {cycles[:5]}"
    packages = nx.DiGraph(
        (area(a), area(b)) for a, b in g.edges if area(a) and area(b) and area(a) != area(b)
    )
    assert list(nx.simple_cycles(packages)) == []


def test_dependencies_point_one_way() -> None:
    assert violations(import_graph()) == []


def test_every_subpackage_has_a_layer() -> None:
    found = {area(module_name(p)) for p in ROOT.rglob("*.py")} - {None}
    assert found <= set(LAYERS), f"add {sorted(found - set(LAYERS))} to LAYERS and to docs/architecture.md"


def test_no_room_over_about_800_lines() -> None:
    big = {module_name(p): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 900}
    assert big == {}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # a new cycle between two modules
        ({"a/x.py": "from lbsim.a import y\n", "a/y.py": "from lbsim.a import x\n"}, "cycle"),
        # a lower layer reaching up, even lazily inside a function
        ({"sim/e.py": "def f():\n    from lbsim.cli.main import main\n", "cli/main.py": "main = 1\n"}, "direction"),
        # the same import the right way round is fine
        ({"cli/main.py": "from lbsim.sim import e\n", "sim/e.py": "x = 1\n"}, None),
    ],
)
def test_the_check_catches_what_it_should(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    root = tmp_path / "lbsim"
    for rel, text in {"__init__.py": "", **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.parent / "__init__.py").touch()
        p.write_text(text)
    g = import_graph(root)
    has_cycle = bool(list(nx.simple_cycles(g)))
    LAYERS.setdefault("a", 3)
    try:
        bad = violations(g)
    finally:
        LAYERS.pop("a")
    assert has_cycle == (expected == "cycle")
    assert bool(bad) == (expected == "direction")
