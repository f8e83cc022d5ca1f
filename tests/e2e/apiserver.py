"""A real API server on 127.0.0.1 (uvicorn in a thread), its engine, clock and API keys.

The fixtures that use it are in conftest.py; tests import the helpers from here.

The server shares the test's engine and virtual clock, so a test can move time, run the
worker and look at the database while it talks HTTP to the server.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from shouhou.api import create_app
from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db.attachments import FileAttachmentStore
from shouhou.domain.values import SHANGHAI
from shouhou.services.keys import create_key
from shouhou.settings import Settings

#: When every API test starts, on the server's virtual clock.
START = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
#: How long a server may take to start before the test fails, in seconds.
STARTUP_S = 20


@dataclass
class ApiServer:
    url: str
    engine: Engine
    clock: VirtualClock
    keys: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)

    def key(self, principal: str) -> str:
        """An API key bound to ``principal`` (made once per server)."""
        if principal not in self.keys:
            _, token = create_key(self.engine.uow_factory(), principal, "test", self.clock.now())
            self.keys[principal] = token
        return self.keys[principal]

    def client(self, principal: str | None = None, **headers: str) -> httpx.Client:
        """An HTTP client authenticated as ``principal`` (``platform>buyer:b1``: on behalf)."""
        if principal is not None:
            key_of, _, behalf = principal.partition(">")
            headers["Authorization"] = f"Bearer {self.key(key_of)}"
            if behalf:
                headers["X-On-Behalf-Of"] = behalf
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def order(self, order_id: str, *, shop: str = "s1", buyer: str = "b1", **extra: Any) -> Any:
        """Record a delivered order (paid two days ago) through the API."""
        body = {
            "id": order_id,
            "shop": shop,
            "buyer": buyer,
            "total": 19900,
            "paid_at": (self.clock.now() - timedelta(days=2)).isoformat(),
            "shipped_at": (self.clock.now() - timedelta(days=1)).isoformat(),
            **extra,
        }
        response = self.client("platform").post("/v1/orders", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def case(self, order_id: str, *, buyer: str = "b1", kind: str = "return_refund") -> Any:
        """Open a case on ``order_id`` as its buyer; the case view."""
        body = {"order": order_id, "kind": kind, "reason": "quality", "amount": 19900}
        response = self.client(f"buyer:{buyer}").post("/v1/cases", json=body)
        assert response.status_code == 201, response.text
        return response.json()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(
    database: Path, migrated_db: Path, settings: Settings | None = None
) -> Iterator[ApiServer]:
    """A copy of the empty database, and a real server on a free port of 127.0.0.1 (with
    ``settings``, else the defaults: none read from the environment)."""
    clock = VirtualClock(START)
    shutil.copy(migrated_db, database)
    attachments = FileAttachmentStore(database.parent / "attachments")
    engine = Engine.open(
        f"sqlite:///{database}", clock=clock, migrate=False, attachments=attachments
    )
    sock = free_socket()
    port = sock.getsockname()[1]
    app = create_app(engine, settings=settings or Settings())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.01)
    state = ApiServer(url=f"http://127.0.0.1:{port}", engine=engine, clock=clock)
    try:
        yield state
    finally:
        for client in state.clients:
            client.close()
        server.should_exit = True
        thread.join(timeout=STARTUP_S)
        sock.close()
        engine.close()
