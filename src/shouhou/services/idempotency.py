"""Writes sent with an ``Idempotency-Key``: one request acts, the others replay its answer.

The first request claims the key in a short transaction of its own, then runs the use case and
stores its answer in the claim in the use case's transaction. A request that finds the key
claimed waits for that answer (up to :data:`WAIT_S`) and replays it; one that waits longer is
told to come back (:class:`~shouhou.errors.StillRunning`, 409 with ``Retry-After``).
docs/decisions/0016-idempotency-keys-claimed-before-the-write.md says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shouhou.errors import Invalid, StillRunning
from shouhou.services.ports import IDEMPOTENCY_TTL, ApiUnitOfWork, Clock, StoredResponse

#: How long a request waits for another one running under the same key, in seconds.
WAIT_S = 10.0
#: The first and the longest pause between two looks at a claimed key, in seconds.
FIRST_POLL_S, LONGEST_POLL_S = 0.02, 0.25
#: The ``Retry-After`` of a request that waited :data:`WAIT_S` in vain, in seconds.
RETRY_AFTER_S = 2
#: A claim this old belongs to a request whose process died: another request may take it over
#: (a live request that slow loses its answer, see ``Idempotency.finish``).
STALE_CLAIM = timedelta(minutes=2)


@dataclass(frozen=True)
class Answer:
    """What to send back: the status and body, and whether it replays an earlier answer."""

    status_code: int
    body: Any
    replayed: bool


def run_once(
    begin: Callable[[], ApiUnitOfWork],
    clock: Clock,
    scope: str,
    key: str,
    request_hash: str,
    operation: Callable[[ApiUnitOfWork], tuple[int, Any]],
    *,
    wait_s: float = WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
    elapsed: Callable[[], float] = time.monotonic,
    bucket: int = 0,
) -> Answer:
    """Run ``operation`` once for ``key`` in ``scope`` (an API key), or replay its answer.

    ``bucket`` is the bucket of the order the request acts on: the key is kept there.
    ``sleep`` and ``elapsed`` measure the real time a request waits, not the marketplace's
    clock (which may be virtual and stand still). A refusal is not stored: nothing changed,
    so the same request sent again runs again.
    """
    started = elapsed()
    pause = FIRST_POLL_S
    while True:
        now = clock.now()
        with begin() as uow:
            found = uow.idempotency.claim(
                scope,
                key,
                request_hash,
                now,
                now - IDEMPOTENCY_TTL,
                now - STALE_CLAIM,
                bucket=bucket,
            )
            uow.commit()
        if found is None:
            return _run_claimed(begin, scope, key, request_hash, now, operation, bucket)
        if found.request_hash != request_hash:
            raise Invalid(
                f"Idempotency-Key {key!r} was used for another request "
                "(method, path, acting party or body); send a new key",
                rule="shouhou/idempotency",
            )
        if not found.pending:
            return Answer(found.status_code, found.body, replayed=True)
        if elapsed() - started >= wait_s:
            raise StillRunning(
                f"a request with Idempotency-Key {key!r} is still running; send it again "
                f"in {RETRY_AFTER_S} s to get its answer",
                retry_after=RETRY_AFTER_S,
            )
        sleep(pause)
        pause = min(pause * 2, LONGEST_POLL_S)


def _run_claimed(
    begin: Callable[[], ApiUnitOfWork],
    scope: str,
    key: str,
    request_hash: str,
    claimed_at: datetime,
    operation: Callable[[ApiUnitOfWork], tuple[int, Any]],
    bucket: int,
) -> Answer:
    try:
        with begin() as uow:
            status, body = operation(uow)
            answer = StoredResponse(request_hash=request_hash, status_code=status, body=body)
            uow.idempotency.finish(scope, key, answer, claimed_at, bucket=bucket)
            uow.commit()
    except BaseException:
        # refused or failed: nothing was stored, so free the key for the next try at once
        with begin() as uow:
            uow.idempotency.release(scope, key, claimed_at, bucket=bucket)
            uow.commit()
        raise
    return Answer(status, body, replayed=False)
