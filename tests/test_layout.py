"""The layout's rules, checked on the source: modules import each other one way, the library knows nothing of
Discord, and the fake Discord stays out of the bot's runtime import path."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: Imports inside a function that point back up, each for a reason: ``features`` still answers the presets' old
#: names (with a warning), and ``Storage.open`` picks its driver (asyncpg is an extra, loaded only when asked).
LAZY_BACK_EDGES = {
    ("ser_core.features", "ser_core.presets"),
    ("bot.storage.base", "bot.storage.postgres"),
    ("bot.storage.base", "bot.storage.sqlite"),
}


def module_imports(package: str) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports, at module level or inside a function (dotted names);
    ``if TYPE_CHECKING:`` blocks never run and are left out, and so are ``LAZY_BACK_EDGES``."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_init else parts)
        here = parts[:-1]  # the package a relative import starts from
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        deps = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - (node.level - 1)]
                if node.module:
                    deps.add(".".join([*base, *node.module.split(".")]))
                else:
                    deps |= {".".join([*base, a.name]) for a in node.names}
            elif isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                deps |= {m for m in mods if m == package or m.startswith(package + ".")}
        graph[name] = deps
    known = set(graph)

    def resolve(d: str) -> str | None:  # ``from .x import name``: ``name`` may be a function, not a module
        while d and d not in known:
            d = d.rpartition(".")[0]
        return d or None

    return {
        m: {r for d in deps if (r := resolve(d)) and r != m and (m, r) not in LAZY_BACK_EDGES}
        for m, deps in graph.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> list[str] | None:
        if m in path:
            return [*path[path.index(m) :], m]
        if m in done:
            return None
        for d in sorted(graph.get(m, ())):
            if d.startswith(m + "."):  # a package's __init__ importing its own submodules is not a cycle
                continue
            if cycle := visit(d, [*path, m]):
                return cycle
        done.add(m)
        return None

    for m in sorted(graph):
        if cycle := visit(m, []):
            return cycle
    return None


@pytest.mark.parametrize("package", ["ser_core", "bot"])
def test_modules_import_each_other_one_way(package):
    graph = module_imports(package)
    assert len(graph) > 10
    cycle = find_cycle(graph)
    assert cycle is None, " → ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_ser_core_knows_nothing_of_discord():
    for path in (ROOT / "ser_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("discord", "bot") for n in names), path


def test_the_bot_runs_without_importing_the_fake_discord():
    """``python -m bot`` loads its launcher, app, cogs and views; none of that may pull in ``bot.testing``
    (only ``--demo``, the tests and the bench do)."""
    code = (
        "import sys, bot.__main__, bot.app, bot.cogs.emotion, bot.cogs.listen, bot.cogs.feedback, bot.views; "
        "print(sorted(m for m in sys.modules if m.startswith('bot.testing')))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
