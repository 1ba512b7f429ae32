"""The imports go one way (issue 14, docs/gateway.md "Layers").

Every module of the tree is parsed with `ast`, imports inside functions included (a
lazy import is still a dependency: it only moves the moment it bites), and the graph
is checked for two things:

- the layering: protocols/ at the bottom; firmware/, gateway/ and tools/ on top of
  protocols only; hil/ (the harness and everything simulated) on top of those; nothing
  outside tests/ and bench/ imports tests/ (bench/ measures with the tests' own engine
  starters and captures, and ships nowhere, so it sits above tests/);
- no import cycle, except the deliberate lazy protocols.dc09 <-> protocols.dc09_data
  one (dc09_data imports dc09 inside a function so each stays loadable alone on the
  panel, which loads only what it needs).

The firmware imports its own modules by their on-device names (`core.app`, `panel.zones`,
...: firmware/ is the device's root), so those are resolved inside firmware/.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("protocols", "firmware", "gateway", "tools", "hil", "tests", "bench")
FIRMWARE_ROOTS = ("core", "hal", "panel", "intercom")

# Which layers each layer may import (itself always).
ALLOWED = {
    "protocols": set(),
    "firmware": {"protocols"},
    "gateway": {"protocols"},
    "tools": {"protocols"},
    "hil": {"protocols", "firmware", "gateway", "tools"},
    "tests": {"protocols", "firmware", "gateway", "tools", "hil"},
    "bench": {"protocols", "firmware", "gateway", "tools", "hil", "tests"},
}

# Edges that break the layering today, each with the reason it still stands. The test
# fails if one disappears (shrink the list) or a new one appears (fix it instead).
KNOWN_UPWARD = {
    ("gateway.demo", "hil.compound"),
    ("gateway.demo", "hil.firmware_panel"),
    ("gateway.demo", "hil.micropython"),
    ("gateway.demo_cluster", "hil.compound"),
    ("gateway.demo_cluster", "hil.firmware_panel"),
    ("gateway.demo_cluster", "hil.micropython"),
}

DELIBERATE_CYCLES = [{"protocols.dc09", "protocols.dc09_data"}]

# Cycles that still stand, each with its reason; same rule as KNOWN_UPWARD.
# Each SQLite module picks its PostgreSQL twin for a postgresql:// location (a lazy
# import), and the twin reuses the SQLite module's rules: one composition module
# choosing the engine would end these three. The demo pair goes with the move of
# the demo into hil/.
KNOWN_CYCLES = [
    {"gateway.vehicles.pgregistry", "gateway.vehicles.registry"},
    {"gateway.console.db", "gateway.console.pgdb"},
    {"gateway.pgstore", "gateway.store"},
    {"gateway.demo", "gateway.demo_cluster"},
]


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules():
    found = {}
    for top in TOP:
        for path in sorted((ROOT / top).rglob("*.py")):
            found[module_name(path)] = path
    return found


def resolve(name, known):
    """The most specific known module `name` names (a package's __init__ counts)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def imports_of(module, path, known):
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    in_firmware = module.startswith("firmware.")
    found = set()

    def add(name):
        if in_firmware and name.split(".")[0] in FIRMWARE_ROOTS:
            name = "firmware." + name
        target = resolve(name, known)
        if target and target != module:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base)
                stem = base + ("." + node.module if node.module else "")
            else:
                stem = node.module
            for alias in node.names:
                # `from x import y` names module x.y when there is one, else a name in x.
                add(stem + "." + alias.name if resolve(stem + "." + alias.name, known)
                    == stem + "." + alias.name else stem)
    return found


def graph():
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def layer(module):
    return module.split(".")[0]


def upward_edges(g):
    return {(a, b) for a, targets in g.items() for b in targets
            if layer(b) != layer(a) and layer(b) not in ALLOWED[layer(a)]}


def cycles(g):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_lazy_and_firmware_imports():
    """The parser itself: an import inside a function counts, and the firmware's
    on-device names resolve inside firmware/."""
    g = graph()
    assert "protocols.dc09" in g["protocols.dc09_data"]           # the lazy one
    assert "firmware.core.log" in g["firmware.core.app"]
    assert "protocols.crc" in g["firmware.core.users"]


def test_nothing_imports_upward():
    found = upward_edges(graph())
    assert found - KNOWN_UPWARD == set(), "imports against the layering"
    assert KNOWN_UPWARD - found == set(), "fixed: take these out of KNOWN_UPWARD"


def test_no_import_cycle_but_the_deliberate_one():
    found = [c for c in cycles(graph()) if c not in DELIBERATE_CYCLES]
    assert [c for c in found if c not in KNOWN_CYCLES] == [], "new import cycles"
    assert [c for c in KNOWN_CYCLES if c not in found] == [], "fixed: take these out of KNOWN_CYCLES"
