"""Limits that keep one client from holding the server: a body that stalls, and the daily
evidence upload quota of each actor."""

from __future__ import annotations

import hashlib
import io
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from apiserver import START, ApiServer, serving
from PIL import Image

from shouhou.domain.values import SHANGHAI
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


# --- the daily evidence upload quota -------------------------------------------------------

#: Files each actor may upload per day on the quota test server.
FILES_PER_DAY = 3
#: The next marketplace midnight after START (2026-03-02 10:00 in Shanghai).
NEXT_MIDNIGHT = datetime(2026, 3, 3, 0, 0, tzinfo=SHANGHAI)


def _png(shade: int, side: int = 8) -> bytes:
    """A PNG that decodes, different for each ``shade``; larger with a larger ``side``."""
    image = Image.new("RGB", (side, side))
    image.putdata([((x * 7 + shade) % 256, (x * 13) % 256, shade % 256) for x in range(side**2)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(server: ApiServer, who: str, data: bytes) -> httpx.Response:
    return server.client(who).post(
        "/v1/attachments", content=data, headers={"content-type": "image/png"}
    )


def _kept(server: ApiServer, data: bytes) -> bool:
    assert server.engine.attachments is not None
    return server.engine.attachments.get(hashlib.sha256(data).hexdigest()) is not None


def _quota(files: int, size: int) -> Settings:
    return Settings(upload_files_per_day=files, upload_bytes_per_day=size)


@pytest.fixture
def few_files(tmp_path: Path, migrated_db: Path) -> Iterator[ApiServer]:
    with serving(tmp_path / "api.db", migrated_db, _quota(FILES_PER_DAY, 10**9)) as server:
        yield server


def test_the_file_after_the_daily_quota_gets_429_with_retry_after_and_is_not_kept(
    few_files: ApiServer,
) -> None:
    files = [_png(shade) for shade in range(FILES_PER_DAY + 1)]

    answers = [_upload(few_files, "buyer:b1", data) for data in files]

    assert [a.status_code for a in answers] == [201] * FILES_PER_DAY + [429]
    over = answers[-1]
    assert over.headers["Retry-After"] == str(int((NEXT_MIDNIGHT - START).total_seconds()))
    error = over.json()["error"]
    assert error["code"] == "too_many_requests"
    assert "buyer:b1" in error["message"]
    assert error["allowed_from"] == NEXT_MIDNIGHT.isoformat()
    assert [_kept(few_files, data) for data in files] == [True] * FILES_PER_DAY + [False]


def test_another_actor_is_unaffected_by_one_actors_used_up_quota(few_files: ApiServer) -> None:
    for shade in range(FILES_PER_DAY):
        assert _upload(few_files, "buyer:b1", _png(shade)).status_code == 201
    assert _upload(few_files, "buyer:b1", _png(99)).status_code == 429

    other_buyer = _upload(few_files, "buyer:b2", _png(99))
    seller = _upload(few_files, "seller:s1", _png(98))
    for_b2 = _upload(few_files, "platform>buyer:b2", _png(97))  # counts as b2's

    assert (other_buyer.status_code, seller.status_code, for_b2.status_code) == (201, 201, 201)


def test_the_quota_resets_at_the_marketplace_midnight(few_files: ApiServer) -> None:
    for shade in range(FILES_PER_DAY):
        assert _upload(few_files, "buyer:b1", _png(shade)).status_code == 201

    few_files.clock.set(NEXT_MIDNIGHT - timedelta(seconds=1))
    last_second = _upload(few_files, "buyer:b1", _png(50))
    few_files.clock.set(NEXT_MIDNIGHT)
    next_day = [_upload(few_files, "buyer:b1", _png(60 + n)) for n in range(FILES_PER_DAY + 1)]

    assert last_second.status_code == 429
    assert last_second.headers["Retry-After"] == "1"
    assert [a.status_code for a in next_day] == [201] * FILES_PER_DAY + [429]
    assert next_day[-1].headers["Retry-After"] == str(24 * 3600)


def test_the_bytes_quota_refuses_a_file_that_would_pass_it_and_counts_nothing_for_it(
    tmp_path: Path, migrated_db: Path
) -> None:
    big, big2 = _png(1, side=64), _png(2, side=64)
    small, small2, small3 = _png(3), _png(4), _png(5)
    assert len(big2) > len(small2)  # so that big2 passes what small2 then fills exactly
    allowed = len(big) + len(small) + len(small2)

    with serving(tmp_path / "api.db", migrated_db, _quota(100, allowed)) as server:
        answers = [_upload(server, "buyer:b1", data) for data in (big, small, big2)]
        refused_kept = _kept(server, big2)
        fills_exactly = _upload(server, "buyer:b1", small2)
        full = _upload(server, "buyer:b1", small3)
        other = _upload(server, "buyer:b2", big2)

        assert [a.status_code for a in answers] == [201, 201, 429]
        assert answers[2].json()["error"]["code"] == "too_many_requests"
        assert "Retry-After" in answers[2].headers
        assert not refused_kept
        assert fills_exactly.status_code == 201  # the refused file counted no bytes
        assert full.status_code == 429
        assert other.status_code == 201
