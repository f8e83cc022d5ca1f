"""Dependencies point inwards, and only clock.py reads the wall clock (STYLE.md, rules 1–2).

The source is read with ``ast``, never imported, so the checks see every import, including
those under ``if TYPE_CHECKING`` and inside functions.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import shouhou

PACKAGE = Path(shouhou.__file__).resolve().parent
#: Our outer layers: adapters and wiring the core must not know about.
OUTER_LAYERS = ("db", "services", "api", "console", "cli", "sim", "worker", "bootstrap")
IO_FRAMEWORKS = ("sqlalchemy", "fastapi", "alembic")
STORAGE_LIBRARIES = ("sqlalchemy", "alembic")
DOMAIN_MAY_IMPORT = ("shouhou.domain", "shouhou.errors")
CLOCK_MODULE = "clock.py"
#: The one command-line module that may import the API: ``shouhou serve`` runs it.
CLI_SERVES_THE_API = "serve.py"


@dataclass(frozen=True)
class Import:
    module: str  # the absolute dotted name imported (``shouhou.domain.model``)
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file.relative_to(PACKAGE.parent)}:{self.line} imports {self.module}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module a ``from … import`` names, with relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _sources(*under: str) -> list[Path]:
    root = PACKAGE.joinpath(*under)
    if root.suffix == ".py":
        return [root] if root.exists() else []
    return sorted(root.rglob("*.py"))


def _imports(path: Path) -> Iterator[Import]:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            yield Import(module, path, node.lineno)
            # ``from shouhou import db`` imports the subpackage shouhou.db
            for alias in node.names:
                yield Import(f"{module}.{alias.name}", path, node.lineno)


def _is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer_names(layers: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"shouhou.{layer}" for layer in layers)


def test_the_package_sources_are_found() -> None:
    assert _sources("domain", "cases.py")
    assert _sources("policy", "rulebook.py")
    assert _sources("cli", CLI_SERVES_THE_API)


@pytest.mark.parametrize("core", ["domain", "policy"])
def test_the_core_imports_no_outer_layer_and_no_io_framework(core: str) -> None:
    outer = _layer_names(OUTER_LAYERS)
    wrong = [
        str(imp)
        for path in _sources(core)
        for imp in _imports(path)
        if _is_under(imp.module, outer) or _is_under(imp.module, IO_FRAMEWORKS)
    ]
    assert wrong == []


def test_the_domain_imports_only_the_standard_library_itself_and_the_errors() -> None:
    wrong = []
    for path in _sources("domain"):
        for imp in _imports(path):
            top = imp.module.split(".")[0]
            if top == "shouhou":
                if not _is_under(imp.module, DOMAIN_MAY_IMPORT):
                    wrong.append(str(imp))
            elif top not in sys.stdlib_module_names and top != "__future__":
                wrong.append(str(imp))
    assert wrong == []


def test_the_domain_imports_neither_pydantic_nor_yaml() -> None:
    wrong = [
        str(imp)
        for path in _sources("domain")
        for imp in _imports(path)
        if _is_under(imp.module, ("pydantic", "yaml"))
    ]
    assert wrong == []


def _module_graph(*under: str) -> dict[str, set[str]]:
    """Which of the modules under ``under`` each of them imports."""
    paths = _sources(*under)
    names = {_module_name(path) for path in paths}
    return {
        _module_name(path): {imp.module for imp in _imports(path) if imp.module in names}
        - {_module_name(path)}
        for path in paths
    }


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (its modules in order, the first repeated), or []."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        for imported in sorted(graph.get(module, ())):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return []

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return []


@pytest.mark.parametrize("layer", ["domain", "services"])
def test_the_modules_of_a_layer_import_one_another_without_a_cycle(layer: str) -> None:
    assert _cycle(_module_graph(layer)) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_only_the_db_package_imports_sqlalchemy_or_alembic() -> None:
    db = PACKAGE / "db"
    wrong = [
        str(imp)
        for path in _sources()
        if not path.is_relative_to(db)
        for imp in _imports(path)
        if _is_under(imp.module, STORAGE_LIBRARIES)
    ]
    assert wrong == []


def _reads_the_wall_clock(node: ast.AST) -> bool:
    """``datetime.now(…)``, ``datetime.datetime.now(…)`` or any ``….utcnow(…)``."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    func = node.func
    if func.attr == "utcnow":
        return True
    if func.attr != "now":
        return False
    owner = func.value
    return (isinstance(owner, ast.Name) and owner.id == "datetime") or (
        isinstance(owner, ast.Attribute) and owner.attr == "datetime"
    )


def test_only_clock_py_reads_the_wall_clock() -> None:
    clock = PACKAGE / CLOCK_MODULE
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in _sources()
        if path != clock
        for node in ast.walk(_tree(path))
        if _reads_the_wall_clock(node)
    ]
    assert wrong == []


def test_no_source_text_calls_now_or_utcnow_outside_clock_py() -> None:
    """A text check too, for calls the ast check can't see (``getattr``, aliases)."""
    clock = PACKAGE / CLOCK_MODULE
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in _sources()
        if path != clock
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "datetime.now(" in line or "utcnow(" in line
    ]
    assert wrong == []


def test_the_clock_module_is_where_the_wall_clock_is_read() -> None:
    clock = PACKAGE / CLOCK_MODULE
    assert any(_reads_the_wall_clock(node) for node in ast.walk(_tree(clock)))


# --- the checks themselves see what they look for --------------------------------------------


@pytest.mark.parametrize(
    ("code", "reads"),
    [
        ("datetime.now(UTC)", True),
        ("datetime.datetime.now(tz=UTC)", True),
        ("datetime.utcnow()", True),
        ("clock.now()", False),
        ("self.clock.now()", False),
    ],
)
def test_the_wall_clock_check_tells_clock_reads_from_clock_calls(code: str, reads: bool) -> None:
    call = ast.parse(code, mode="eval").body
    assert _reads_the_wall_clock(call) is reads


@pytest.mark.parametrize(
    ("code", "file", "module"),
    [
        ("from ..errors import Invalid", "domain/cases.py", "shouhou.errors"),
        ("from . import model", "domain/cases.py", "shouhou.domain"),
        ("from .model import Case", "domain/__init__.py", "shouhou.domain.model"),
        ("from shouhou.db import tables", "services/views.py", "shouhou.db"),
    ],
)
def test_the_import_check_resolves_relative_imports(code: str, file: str, module: str) -> None:
    node = ast.parse(code).body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _absolute(node, PACKAGE / file) == module


WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")
WEB_LAYERS = ("api", "console")


def test_only_the_api_and_console_import_the_web_framework() -> None:
    web = [PACKAGE / layer for layer in WEB_LAYERS]
    wrong = [
        str(imp)
        for path in _sources()
        if not any(path.is_relative_to(layer) for layer in web)
        for imp in _imports(path)
        if _is_under(imp.module, WEB_FRAMEWORKS)
    ]
    assert wrong == []


#: The storage modules that take every statement they run from ``db/queries.py`` by name.
#: (``db/engine.py`` sets connections up; ``db/webhooks.py`` and ``db/idempotency.py`` are
#: still to move theirs.)
NAMED_SQL_MODULES = (
    "aggregates",
    "cases",
    "complaints",
    "cursor",
    "deadlines",
    "eventlog",
    "keys",
    "ledger",
    "lists",
    "orders",
    "outbox",
    "relay",
    "retention",
    "shops",
    "uow",
    "uploads",
)
STATEMENT_BUILDERS = tuple(
    f"sqlalchemy.{name}" for name in ("select", "insert", "update", "delete", "text")
)
SQL_VERBS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ")


def _string_constants(path: Path) -> Iterator[ast.Constant]:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


@pytest.mark.parametrize("module", NAMED_SQL_MODULES)
def test_the_storage_modules_take_their_statements_from_the_queries_module(module: str) -> None:
    path = PACKAGE / "db" / f"{module}.py"
    assert path.exists()
    built = [str(imp) for imp in _imports(path) if _is_under(imp.module, STATEMENT_BUILDERS)]
    written = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for node in _string_constants(path)
        if node.value.lstrip().startswith(SQL_VERBS)
    ]
    assert built == written == []


def test_the_queries_module_names_the_statements_the_hot_path_runs() -> None:
    from shouhou.db import queries

    assert {"get_complaint", "insert_complaint", "save_complaint"} <= {*queries.STATEMENTS}
    assert {"append", "outbox"} <= {*queries.HELD_SQLITE}


#: Fen written as yuan by hand (``f"¥{fen / 100:.2f}"``): amounts go through ``format_yuan``.
HAND_WRITTEN_YUAN = re.compile(r"/\s*100\s*:\s*\.2f")


def test_amounts_are_written_as_yuan_only_by_the_shared_money_formatter() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in _sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HAND_WRITTEN_YUAN.search(line)
    ]
    assert wrong == []


def test_the_money_check_finds_an_amount_written_by_hand() -> None:
    assert HAND_WRITTEN_YUAN.search('f"¥{case.refund_amount / 100:.2f}"')
    assert not HAND_WRITTEN_YUAN.search('f"¥{format_yuan(case.refund_amount)}"')


def test_the_command_line_imports_the_api_only_to_serve_it() -> None:
    serving = PACKAGE / "cli" / CLI_SERVES_THE_API
    wrong = [
        str(imp)
        for path in _sources("cli")
        if path != serving
        for imp in _imports(path)
        if _is_under(imp.module, _layer_names(("api",)))
    ]
    assert wrong == []


# --- one home per concept (STYLE.md, rule 13) ---------------------------------------------------

#: Modules whose concepts moved to homes named after them (issue 13).
GONE = ("services/integration.py", "db/api.py")


@pytest.mark.parametrize("module", GONE)
def test_no_catch_all_module_is_back(module: str) -> None:
    assert not (PACKAGE / module).exists()


def _asserts_on_the_engine(node: ast.AST) -> bool:
    """``assert <…>.engine.<x> is not None`` or ``assert engine.<x> …``: a hole in the wiring."""
    if not isinstance(node, ast.Assert):
        return False
    return any(
        isinstance(part, ast.Attribute)
        and isinstance(part.value, (ast.Name, ast.Attribute))
        and (
            getattr(part.value, "id", None) == "engine"
            or getattr(part.value, "attr", None) == "engine"
        )
        for part in ast.walk(node.test)
    )


def test_the_api_and_the_worker_never_check_what_the_engine_was_built_with() -> None:
    """The engine builds every unit of work itself (``Engine[ApiUnitOfWork]``): nothing to
    check at run time."""
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for layer in ("api", "worker")
        for path in _sources(layer)
        for node in ast.walk(_tree(path))
        if _asserts_on_the_engine(node)
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("code", "flagged"),
    [
        ("assert self.engine.integration is not None", True),
        ("assert engine.reader is not None", True),
        ("assert order is not None", False),
    ],
)
def test_the_engine_assert_check_sees_what_it_looks_for(code: str, flagged: bool) -> None:
    assert _asserts_on_the_engine(ast.parse(code).body[0]) is flagged
