"""A fresh schema on the test PostgreSQL server, for any test folder (tests/conftest.py puts
this folder on the import path).

PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` (default ``postgresql://127.0.0.1:5432/test``).
Each test works in a schema of its own, dropped afterwards, so runs never collide. A server that
cannot be reached skips the test on a developer's machine and fails it under CI (``$CI`` set),
which must run the PostgreSQL tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
import sqlalchemy as sa

from shouhou.db import engine as db_engine

POSTGRES_URL = os.environ.get("SHOUHOU_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
    pytest.skip(reason)


def in_schema(schema: str, url: str = POSTGRES_URL) -> str:
    """``url`` with its connections working in ``schema``."""
    found = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return found.render_as_string(hide_password=False)


@contextmanager
def scratch_schema(prefix: str, url: str = POSTGRES_URL) -> Iterator[str]:
    """The URL of a new schema named ``<prefix>_<random>`` on the server at ``url``; the
    schema and everything in it are dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = db_engine.create(url)
    try:
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except sa.exc.OperationalError as exc:
            unavailable(f"PostgreSQL at {url} is unreachable: {exc.orig}")
        try:
            yield in_schema(schema, url)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
