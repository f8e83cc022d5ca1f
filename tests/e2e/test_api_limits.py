"""Limits that keep one client from holding the server: a body that stalls."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apiserver import ApiServer, serving

from shouhou.settings import Settings

#: How long the test server waits for each next piece of a body, in seconds.
BODY_TIMEOUT_S = 0.5
#: How long the test client waits for any answer: far longer, so only the server's timeout
#: can produce one in time.
CLIENT_WAIT_S = 30


@pytest.fixture
def strict(tmp_path: Path, migrated_db: Path) -> Iterator[ApiServer]:
    settings = Settings(body_timeout_s=BODY_TIMEOUT_S)
    with serving(tmp_path / "api.db", migrated_db, settings) as server:
        yield server


def _read_all(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_body_that_stops_arriving_is_cut_off_with_408_and_the_connection_closed(
    strict: ApiServer,
) -> None:
    url = httpx.URL(strict.url)
    token = strict.key("buyer:b1")
    head = (
        "POST /v1/cases HTTP/1.1\r\n"
        f"Host: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 200\r\n\r\n"
    )
    with socket.create_connection((url.host, url.port), timeout=CLIENT_WAIT_S) as sock:
        sock.sendall(head.encode() + b'{"order": "o1", ')  # then nothing more
        answer = _read_all(sock)  # returns once the server closes the connection

    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b"connection: close" in headers.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert "stalled" in error["message"]


def test_a_body_sent_in_slow_pieces_each_within_the_timeout_is_read(strict: ApiServer) -> None:
    url = httpx.URL(strict.url)
    body = json.dumps({"order": "nope", "kind": "refund_only", "reason": "quality", "amount": 1})
    head = (
        "POST /v1/cases HTTP/1.1\r\n"
        f"Host: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {strict.key('buyer:b1')}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((url.host, url.port), timeout=CLIENT_WAIT_S) as sock:
        sock.sendall(head.encode())
        for piece in (body[:10], body[10:30], body[30:]):  # no waiting: pieces, not a stall
            sock.sendall(piece.encode())
        answer = _read_all(sock)

    assert answer.startswith(b"HTTP/1.1 404")  # the body was read whole: no order "nope"
