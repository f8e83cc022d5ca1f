"""One Idempotency-Key sent by 50 clients at once to three API processes on one PostgreSQL
database: the use case runs once, and every client gets that one answer (the later ones wait
for it, then replay it) — none is refused.

The servers are real ``shouhou serve`` processes (uvicorn, no worker) on 127.0.0.1, running
the code this test imports; PostgreSQL is ``$SHOUHOU_TEST_POSTGRES_URL`` (default
``postgresql://127.0.0.1:5432/test``), the test in a schema of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

import shouhou
from pgscratch import scratch_schema
from shouhou.bootstrap import Engine
from shouhou.clock import SystemClock
from shouhou.db import engine as db_engine
from shouhou.db import tables
from shouhou.domain.model import Order
from shouhou.services.keys import create_key

SERVERS = 3
CLIENTS = 50
#: How long a server may take to answer /health before the test fails, in seconds.
STARTUP_S = 60
#: Safety net so a hung request fails the test instead of hanging it, in seconds.
REQUEST_TIMEOUT_S = 60
APPLY = {"order": "o1", "kind": "return_refund", "reason": "quality", "amount": 19900}

pytestmark = pytest.mark.slow


@pytest.fixture
def database() -> Iterator[str]:
    """The URL of a fresh, migrated schema on the PostgreSQL server, dropped afterwards."""
    with scratch_schema("idem") as url:
        yield url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(stack: ExitStack, url: str, log: Path) -> str:
    """A ``shouhou serve`` process on a free port, stopped when ``stack`` closes."""
    port = _free_port()
    source = str(Path(shouhou.__file__).resolve().parents[1])  # the code under test
    env = {**os.environ, "PYTHONPATH": source, "SHOUHOU_DATABASE_URL": url}
    out = stack.enter_context(log.open("w"))
    process = subprocess.Popen(
        [sys.executable, "-m", "shouhou", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=STARTUP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    return f"http://127.0.0.1:{port}"


def _wait_until_up(base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{base} did not start: {log.read_text()}"
        time.sleep(0.1)


def _marketplace(url: str) -> str:
    """Migrate, record a delivered order o1 of buyer b1; b1's API key."""
    engine = Engine.open(url, clock=SystemClock())
    try:
        now = engine.clock.now()
        engine.place_order(
            Order(
                id="o1",
                shop="s1",
                buyer="b1",
                total=19900,
                created_at=now - timedelta(days=2),
                paid_at=now - timedelta(days=2),
                shipped_at=now - timedelta(days=1),
            )
        )
        _, token = create_key(engine.uow_factory(), "buyer:b1", "race", now)
        return token
    finally:
        engine.close()


def test_fifty_identical_requests_across_three_processes_act_once_and_all_replay(
    database: str, tmp_path: Path
) -> None:
    token = _marketplace(database)
    with ExitStack() as stack:
        logs = [tmp_path / f"server{i}.log" for i in range(SERVERS)]
        servers = [_serve(stack, database, log) for log in logs]
        for base, log in zip(servers, logs, strict=True):
            _wait_until_up(base, log)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "race-o1"}
        start = threading.Barrier(CLIENTS)
        answers: list[httpx.Response | BaseException] = [ValueError("not sent")] * CLIENTS

        def send(i: int) -> None:
            with httpx.Client(base_url=servers[i % SERVERS], timeout=REQUEST_TIMEOUT_S) as http:
                start.wait()
                try:
                    answers[i] = http.post("/v1/cases", json=APPLY, headers=headers)
                except httpx.HTTPError as exc:
                    answers[i] = exc

        threads = [threading.Thread(target=send, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    got = [a for a in answers if isinstance(a, httpx.Response)]
    assert len(got) == CLIENTS, [a for a in answers if not isinstance(a, httpx.Response)]
    statuses = sorted(a.status_code for a in got)
    assert statuses == [201] * CLIENTS, [a.text for a in got if a.status_code != 201][:3]
    assert len({a.content for a in got}) == 1  # one body, byte for byte
    replayed = [a.headers.get("idempotent-replayed") == "true" for a in got]
    assert replayed.count(False) == 1 and replayed.count(True) == CLIENTS - 1
    sql = db_engine.create(database)
    try:
        with sql.connect() as conn:
            cases = conn.execute(sa.select(tables.cases.c.id)).scalars().all()
            stored = conn.execute(sa.select(tables.idempotency_keys.c.status_code)).all()
    finally:
        sql.dispose()
    assert cases == [got[0].json()["id"]]
    assert [row.status_code for row in stored] == [201]
