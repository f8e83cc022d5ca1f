"""The worker: ``run_once(now)`` fires due deadlines, announces approaching ones, and delivers
webhooks; ``run_forever`` repeats it until told to stop.

Each step is its own transaction, so a crash loses nothing: a deadline fires once (the
services guarantee it), an outbox event is fanned out once (a conditional update), and a
delivery leased to a worker that died is picked up again when its lease ends. A receiver may
see a delivery twice (at least once); the ``webhook-id`` header lets it drop duplicates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from shouhou import webhooks
from shouhou.bootstrap import Engine
from shouhou.errors import CannotFire
from shouhou.observability import Telemetry
from shouhou.services.deadlines import Fired
from shouhou.services.destinations import AllowList
from shouhou.services.ports import IDEMPOTENCY_TTL, ApiUnitOfWork, Attempt, Claimed, Retention
from shouhou.services.webhooks import announce_approaching
from shouhou.settings import Settings
from shouhou.worker.transport import RefusedDestination, guarded_client

log = logging.getLogger("shouhou.worker")


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """The worker's tunables, with their units in the names."""

    #: ``deadline.approaching`` is written this long before a deadline is due.
    approaching: timedelta = timedelta(hours=24)
    #: How long one delivery attempt may take.
    delivery_timeout_s: float = 10.0
    #: A claimed delivery is another worker's to retry after this long.
    lease: timedelta = timedelta(minutes=2)
    #: The first retry waits this long; each next one twice as long, up to ``backoff_cap``.
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=12)
    #: After this many attempts a delivery is marked failed (replay it by hand).
    max_attempts: int = 12
    #: Idempotency keys are kept at least this long.
    idempotency_retention: timedelta = IDEMPOTENCY_TTL
    #: Fired and cancelled deadline rows are kept this long after their due time (their
    #: history stays in the timelines); delivered outbox events this long after fan-out
    #: (``GET /v1/webhooks/events`` shows no older ones). Events with a failed or unfinished
    #: delivery are kept until it is replayed and succeeds.
    deadline_retention: timedelta = timedelta(days=30)
    event_retention: timedelta = timedelta(days=30)
    #: Rows forgotten per transaction, and transactions per pass: a backlog (a first upgrade)
    #: is worked off over several passes instead of stalling one.
    purge_batch: int = 500
    purge_chunks: int = 20
    #: How many rows one step handles per transaction.
    batch: int = 100
    #: Deliveries sent at the same time.
    concurrency: int = 8
    #: Webhook hosts exempt from the public-address rule (names, addresses, CIDRs);
    #: None reads ``SHOUHOU_WEBHOOK_ALLOW_HOSTS``.
    allow_hosts: tuple[str, ...] | None = None


def backoff(attempt: int, settings: WorkerSettings) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based): base · 2^(attempt-1), capped."""
    delay: timedelta = settings.backoff_base * (2 ** min(attempt - 1, 30))
    return min(delay, settings.backoff_cap)


@dataclass
class Tick:
    """What one ``run_once`` did."""

    fired: list[Fired] = field(default_factory=list)
    announced: int = 0
    dispatched: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    purged: int = 0
    #: Deadlines that could not fire and were set aside as ``failed`` (docs/deployment.md).
    set_aside: list[CannotFire] = field(default_factory=list)


def _set_aside(tick: Tick, failed: CannotFire) -> None:
    due = failed.due
    log.error(
        "deadline %s of %s %s (due %s) cannot fire and was set aside as failed: %r",
        due.name,
        due.subject_type,
        due.subject_id,
        due.due_at.isoformat(),
        failed.error,
    )
    tick.set_aside.append(failed)


def failure_reason(exc: Exception) -> tuple[str, bool]:
    """A short, public reason for a failed attempt, and whether no retry can help. Exception
    texts are not kept: some quote what the receiver sent."""
    if isinstance(exc, RefusedDestination):
        return str(exc), False  # the name may resolve to a public address later
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "invalid URL", True
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", False
    if isinstance(exc, httpx.ConnectError):
        return "connection failed (ConnectError)", False
    return f"failed ({type(exc).__name__})", False


#: How many batches of deliveries one pass claims at most (each from one bucket); the rest
#: wait for the next pass.
MAX_DELIVERY_CLAIMS = 64


class Worker:
    """Deadlines and webhooks for one engine (on SQL storage)."""

    def __init__(
        self,
        engine: Engine[ApiUnitOfWork],
        settings: WorkerSettings | None = None,
        *,
        http: httpx.Client | None = None,
        on_fired: Callable[[Fired], None] | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.engine = engine
        #: Where firings and deliveries are counted (None: nowhere).
        self.telemetry = telemetry
        self.uow: Callable[[], ApiUnitOfWork] = engine.uow_factory
        self.settings = settings or WorkerSettings()
        allow = self.settings.allow_hosts
        if allow is None:
            allow = Settings.from_env().webhook_allow_hosts
        self.http = http or guarded_client(AllowList.parse(allow), self.settings.delivery_timeout_s)
        self.on_fired = on_fired
        self._last_purge: datetime | None = None

    def close(self) -> None:
        self.http.close()

    def run_once(self, now: datetime | None = None) -> Tick:
        """One pass: deadlines, ``deadline.approaching``, fan-out, deliveries, purge."""
        now = now or self.engine.clock.now()
        tick = Tick()
        tick.fired = self.engine.run_due(
            now, on_fired=self._fired, on_set_aside=lambda failed: self._set_aside(tick, failed)
        )
        tick.announced = self.announce(now)
        tick.dispatched = self.dispatch(now)
        tick.delivered, tick.failed_attempts = self.deliver(now)
        tick.purged = self.purge(now)
        return tick

    def _fired(self, fired: Fired) -> None:
        """Count a committed firing, then tell whoever asked."""
        if self.telemetry is not None:
            self.telemetry.fired.labels(fired.name).inc()
        if self.on_fired is not None:
            self.on_fired(fired)

    def _set_aside(self, tick: Tick, failed: CannotFire) -> None:
        if self.telemetry is not None:
            self.telemetry.failed.labels(failed.due.name).inc()
        _set_aside(tick, failed)

    def announce(self, now: datetime) -> int:
        total = 0
        while True:
            count = announce_approaching(
                self.uow(), now, self.settings.approaching, self.settings.batch
            )
            total += count
            if count == 0:  # one bucket's at a time (0021): none left in any
                return total

    def dispatch(self, now: datetime) -> int:
        total = 0
        while True:
            with self.uow() as uow:
                count = uow.webhooks.dispatch(now, self.settings.batch)
                uow.commit()
            total += count
            if count == 0:  # one bucket's at a time (0021): none left in any
                return total

    def deliver(self, now: datetime) -> tuple[int, int]:
        """Send the deliveries due at ``now``, a bucket's at a time (0021); (delivered,
        failed attempts)."""
        now = self._later(now)  # the pass may have spent a while on deadlines
        delivered = failed = 0
        for _ in range(MAX_DELIVERY_CLAIMS):
            with self.uow() as uow:
                claimed = uow.webhooks.claim(now, self.settings.lease, self.settings.batch)
                uow.commit()
            if not claimed:
                break
            workers = min(self.settings.concurrency, len(claimed))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
                results = list(pool.map(lambda one: self._send(one, now), claimed))
            delivered += sum(results)
            failed += len(results) - sum(results)
        return delivered, failed

    def _later(self, now: datetime) -> datetime:
        """``now``, or the clock's time if that is later: what a message is stamped and a
        lease counted from is the moment it happens, not the start of the pass."""
        return max(now, self.engine.clock.now())

    def _send(self, one: Claimed, now: datetime) -> bool:
        number = one.delivery.attempts + 1
        if one.endpoint.disabled_at is not None:
            self._record(one, number, now, None, "endpoint disabled", 0, final=True)
            return False
        now = self._later(now)
        body = json.dumps(one.event.envelope(), ensure_ascii=False, separators=(",", ":"))
        raw = body.encode("utf-8")
        headers = webhooks.headers(
            one.endpoint.secret, one.event.public_id, int(now.timestamp()), raw
        )
        headers["user-agent"] = "shouhou-webhooks"
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        final = False
        try:
            # the receiver's answer is not read: whatever it says is not ours to keep or show
            response = self.http.post(one.endpoint.url, content=raw, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except Exception as exc:  # one delivery must not fail the pass for the others
            error, final = failure_reason(exc)
            if not isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
                log.exception("webhook %s to %s", one.event.public_id, one.endpoint.url)
        elapsed = int((time.monotonic() - started) * 1000)
        self._record(one, number, now, status, error, elapsed, final=final)
        return error is None

    def _record(
        self,
        one: Claimed,
        number: int,
        now: datetime,
        status_code: int | None,
        error: str | None,
        elapsed_ms: int,
        *,
        final: bool,
    ) -> None:
        attempt = Attempt(
            number=number, at=now, status_code=status_code, error=error, duration_ms=elapsed_ms
        )
        if error is None:
            state, next_at, result = "delivered", now, "delivered"
        elif final or number >= self.settings.max_attempts:
            state, next_at, result = "failed", now, "failed"
        else:
            state, next_at, result = "pending", now + backoff(number, self.settings), "retrying"
        if error is not None:
            log.warning("webhook %s to %s: %s", one.event.public_id, one.endpoint.url, error)
        with self.uow() as uow:
            recorded = uow.webhooks.record(
                one.delivery.id,
                attempt,
                status=state,
                next_attempt_at=next_at,
                held_until=one.lease_until,
            )
            uow.commit()
        if self.telemetry is not None and recorded:
            self.telemetry.deliveries.labels(result).inc()
        if not recorded:
            log.warning(
                "webhook %s to %s: the lease ran out before the attempt was recorded; another"
                " worker has the delivery now",
                one.event.public_id,
                one.endpoint.url,
            )

    def purge(self, now: datetime) -> int:
        """Forget idempotency keys, handled deadline rows and delivered events older than
        their retention, at most once an hour, or on every pass while a backlog lasts."""
        if self._last_purge is not None and now - self._last_purge < timedelta(hours=1):
            return 0
        settings = self.settings
        with self.uow() as uow:
            count = uow.idempotency.forget_before(now - settings.idempotency_retention)
            uow.commit()
        forgotten, deadlines_done = self._forget(
            lambda kept, at, n: kept.forget_deadlines(at, n), now - settings.deadline_retention
        )
        count += forgotten
        forgotten, events_done = self._forget(
            lambda kept, at, n: kept.forget_events(at, n), now - settings.event_retention
        )
        count += forgotten
        if deadlines_done and events_done:  # else a backlog is left: the next pass goes on
            self._last_purge = now
        return count

    def _forget(
        self, forget: Callable[[Retention, datetime, int], int], before: datetime
    ) -> tuple[int, bool]:
        """``forget`` rows older than ``before``, a chunk per transaction, at most
        ``purge_chunks`` of them; how many went, and whether none is left."""
        total = 0
        for _ in range(self.settings.purge_chunks):
            with self.uow() as uow:
                forgotten = forget(uow.retention, before, self.settings.purge_batch)
                uow.commit()
            total += forgotten
            if forgotten < self.settings.purge_batch:
                return total, True
        return total, False

    def run_forever(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """``run_once`` every ``interval_s`` seconds until ``stop`` is set; errors are logged."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("worker pass failed; trying again in %ss", interval_s)
            stop.wait(interval_s)
