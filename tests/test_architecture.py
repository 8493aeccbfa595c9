"""The house plan, checked: the core imports no edge, modules import no cycle, none is huge.

Read from the source with ``ast`` (every import, also inside functions), so a
function-local import cannot hide a dependency. Imports under ``if TYPE_CHECKING:``
are annotations only and are left out of the cycle check, not of the core check.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bot"
MAX_LINES = 600

#: what the transport-agnostic core may never import (prefix match on module names)
CORE_FORBIDDEN = (
    "bot.storage",
    "bot.feeds",
    "bot.adapters",
    "bot.scheduling",
    "bot.config",
    "bot.app",
    "bot.runner",
    "apscheduler",
    "sqlalchemy",
    "aiohttp",
    "discord",
    "slack_bolt",
    "slack_sdk",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, *, runtime_only: bool) -> Iterator[str]:
    """Every module ``path`` imports (absolute names)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    yield from imports_in(path.read_text(encoding="utf-8"), package, runtime_only=runtime_only)


def imports_in(source: str, package: str, *, runtime_only: bool) -> Iterator[str]:
    """Every module ``source`` (a module of ``package``) imports (absolute names)."""
    tree = ast.parse(source)
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node):
                skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                yield full if full in MODULES else module


def test_the_package_was_found() -> None:
    assert "bot.core.models" in MODULES
    assert len(MODULES) > 30


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("bot.core")))
def test_the_core_imports_no_edge(name: str) -> None:
    bad = sorted(
        {
            imported
            for imported in imports(MODULES[name], runtime_only=False)
            if any(imported == f or imported.startswith(f + ".") for f in CORE_FORBIDDEN)
        }
    )
    assert not bad, f"{name} imports {bad}"


def test_no_import_cycle_among_bot_modules() -> None:
    graph = {
        name: sorted({i for i in imports(path, runtime_only=True) if i in MODULES and i != name})
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_over_600_lines() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_checker_sees_hidden_and_relative_imports() -> None:
    # the review found core/digest.py and core/render.py importing each other through a
    # function-local import: the checker must see such imports, and relative ones
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.storage import sql\n"
        "def f():\n    import sqlalchemy\n"
        "from . import models\nfrom ..feeds import poll\n"
    )
    everything = set(imports_in(source, "bot.core", runtime_only=False))
    assert {"sqlalchemy", "bot.storage.sql", "bot.core.models", "bot.feeds.poll"} <= everything
    runtime = set(imports_in(source, "bot.core", runtime_only=True))
    assert "bot.storage.sql" not in runtime
    assert "sqlalchemy" in runtime
