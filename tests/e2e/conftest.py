"""Fixtures for the API tests: a migrated empty database, and a real server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiserver import ApiServer, serving

from shouhou.bootstrap import Engine


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the newest schema, copied for each test (migrating takes a while)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    Engine.open(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def api(tmp_path: Path, migrated_db: Path) -> Iterator[ApiServer]:
    """A fresh database and a real server, for one test."""
    with serving(tmp_path / "api.db", migrated_db) as server:
        yield server
