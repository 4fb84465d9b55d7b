"""The shape of the house, read from the source (an AST walk, nothing imported):

- Floors: a module imports only from its own floor or the ones below. From the bottom:
  foundations (clock, config, catalog, db) < the schema (models, migrations) < notifications
  (the outbox and its senders) < the domain < the jobs and tools that drive it (scheduler,
  demo, bench, sim) < the edges (web, cli, commands, the app factory).
- No import cycle between modules (imports inside functions count too).
- Nothing below the edges imports Flask: the domain, the scheduler and the simulator run the
  same code without a request.
- No module reaches into another's private names (`offers._mail_patient`,
  `from ptmatch.domain.offers import _enum`): a name with a leading underscore is used only
  inside the module, or the package, that defines it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ptmatch"

FLOORS = [
    {"clock", "config", "catalog", "db", "links", "localtime"},
    {"models", "migrations", "migrate", "labels"},
    {"notifications"},
    {"domain", "ops"},
    {"scheduler", "demo", "bench", "sim"},
    {"web", "cli", "commands", "ptmatch"},
]
FLASK = (
    "flask",
    "flask_babel",
    "flask_bootstrap",
    "flask_login",
    "flask_wtf",
    "werkzeug",
    "wtforms",
)
# db.py is the one seam to Flask below the edges: init_app / get_session import it lazily.
FLASK_FREE = {
    "clock",
    "localtime",
    "config",
    "catalog",
    "models",
    "migrations",
    "migrate",
    "notifications",
    "domain",
    "ops",
    "scheduler",
    "demo",
    "bench",
    "sim",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a ptmatch module (or package) name
    line: int
    names: tuple[str, ...] = ()  # for `from target import a, b`


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    if not MODULES[importer].name == "__init__.py":
        package = package[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


def _imports(name: str, tree: ast.AST) -> list[Import]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                Import(name, a.name, node.lineno)
                for a in node.names
                if a.name.split(".")[0] == "ptmatch"
            ]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, node)
            if base.split(".")[0] == "ptmatch":
                found.append(Import(name, base, node.lineno, tuple(a.name for a in node.names)))
    return found


TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}
IMPORTS = {name: _imports(name, tree) for name, tree in TREES.items()}


def _targets(imp: Import) -> list[str]:
    """The modules an import loads (`from ptmatch.domain import offers`: ptmatch.domain.offers)."""
    submodules = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in MODULES]
    return submodules or [imp.target]


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ptmatch"


def _floor(module: str) -> int:
    area = _area(module)
    return next(i for i, floor in enumerate(FLOORS) if area in floor)


def test_every_area_has_a_floor():
    areas = {_area(m) for m in MODULES}
    placed = set().union(*FLOORS)
    assert areas <= placed, f"put these in FLOORS: {sorted(areas - placed)}"


def test_no_import_from_a_higher_floor():
    wrong = [
        f"{imp.importer}:{imp.line} imports {target}"
        f" ({_area(imp.importer)} may not import {_area(target)})"
        for imports in IMPORTS.values()
        for imp in imports
        for target in _targets(imp)
        if _floor(target) > _floor(imp.importer)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {
        m: {t for imp in IMPORTS[m] for t in _targets(imp) if t in MODULES and t != m}
        for m in MODULES
    }
    # A package imports its own modules (ptmatch.models re-exports them): not a cycle.
    graph = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in graph.items()}
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(cycles)


def test_flask_stays_at_the_edges():
    wrong = []
    for name, tree in TREES.items():
        if _area(name) not in FLASK_FREE:
            continue
        for node in ast.walk(tree):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            wrong += [
                f"{name}:{node.lineno} imports {m}" for m in modules if m.split(".")[0] in FLASK
            ]
    assert not wrong, "\n".join(wrong)


def _private_part(dotted: str) -> int | None:
    """Index of the first private segment (`_x`, not a dunder) of a dotted name, or None."""
    for i, part in enumerate(dotted.split(".")):
        if part.startswith("_") and not part.startswith("__"):
            return i
    return None


def _may_use(importer: str, owner: str) -> bool:
    """A private name belongs to `owner` (a module or package): usable inside it only."""
    return importer == owner or importer.startswith(owner + ".")


def private_reaches(name: str, tree: ast.AST) -> list[str]:
    """Every place where module `name` uses another ptmatch module's private name."""
    wrong = []
    bound: dict[str, str] = {}  # local name -> the ptmatch module it stands for
    for imp in IMPORTS.get(name, _imports(name, tree)):
        for dotted in [imp.target, *(f"{imp.target}.{n}" for n in imp.names)]:
            i = _private_part(dotted)
            if i is not None:
                owner = ".".join(dotted.split(".")[:i])
                if not _may_use(name, owner):
                    wrong.append(f"{name}:{imp.line} imports {dotted}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(name, node) if name in MODULES else node.module or ""
            for a in node.names:
                if f"{base}.{a.name}" in MODULES:
                    bound[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "ptmatch":
                    bound[a.asname or a.name.split(".")[0]] = a.asname and a.name or "ptmatch"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain.insert(0, value.attr)
            value = value.value
        if not isinstance(value, ast.Name) or value.id not in bound:
            continue
        dotted = ".".join([bound[value.id], *chain])
        i = _private_part(dotted)
        if i is not None and not _may_use(name, ".".join(dotted.split(".")[:i])):
            wrong.append(f"{name}:{node.lineno} uses {dotted}")
    return sorted(set(wrong))


def test_no_module_reaches_into_another_ones_private_names():
    wrong = [line for name, tree in TREES.items() for line in private_reaches(name, tree)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from ptmatch.domain import offers\noffers._mail_patient(1)\n", True),
        ("from ptmatch.domain.offers import _enum\n", True),
        ("import ptmatch.domain.offers\nptmatch.domain.offers._enum(1)\n", True),
        ("from ptmatch.domain import offers as o\no._require_answerer(1)\n", True),
        ("from ptmatch.domain import offers\noffers.accept_offer(1)\nself._x = 1\n", False),
        ("from ptmatch.models._types import enum_column\n", False),  # inside ptmatch.models
    ],
)
def test_the_private_name_check_can_fail(source, caught):
    name = "ptmatch.models.example" if "_types" in source else "ptmatch.domain.example"
    assert bool(private_reaches(name, ast.parse(source))) is caught
