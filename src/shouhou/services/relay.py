"""The event stream: which events ``shouhou relay`` publishes, on which subject, in which order.

The relay publishes the event feed (``GET /v1/events``: every committed outbox event, each
bucket's in feed position order) to a NATS JetStream stream, each event on the subject of its
order, ``<prefix>.<bucket>.case.<order id>``, so that one subject holds one order's events in
feed order (an order lives in one bucket, whose positions order its events). The NATS side is
the worker's (``shouhou.worker.relay``); what is decided here is pure or one transaction at a
time: the subject of an event, the waves a batch is published in, reading a batch after the
stream's cursor of each bucket, and moving each bucket's cursor on once the stream has all of
that bucket's events of the batch, one bucket per transaction (decision 0021).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from shouhou.services.ports import ApiUnitOfWork, OutboxEvent

#: At most how many one-bucket transactions a pass spends numbering the feed before it reads
#: (as ``GET /v1/webhooks/events`` does): each numbers one bucket's waiting events.
SEQUENCE_ROUNDS = 256

#: The stream the relay publishes to unless told otherwise; its subjects are ``shouhou.>``.
DEFAULT_STREAM = "SHOUHOU"

#: Characters kept as they are in a subject token; every other one is written ``_XX`` per
#: UTF-8 byte (``_`` too), so that two different ids never share a token.
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


def token(text: str) -> str:
    """``text`` as one NATS subject token: no ``.``, ``*``, ``>`` or white space, and one
    token per text (``o.1`` → ``o_2E1``, ``o_1`` → ``o_5F1``). Empty text is ``_``."""
    if not text:
        return "_"
    return "".join(
        char if char in _PLAIN else "".join(f"_{byte:02X}" for byte in char.encode("utf-8"))
        for char in text
    )


def order_of(event: OutboxEvent) -> str:
    """The order an event belongs to: every subject's data names it (an order's own events
    are about the order itself); a case or complaint whose order is unknown stands alone."""
    found = event.data.get("order")
    if isinstance(found, str) and found:
        return found
    if event.subject_type == "order":
        return event.subject_id
    return f"{event.subject_type}:{event.subject_id}"


def subject(prefix: str, event: OutboxEvent) -> str:
    """The subject ``event`` is published on: ``<prefix>.<bucket>.case.<order>``, where the
    bucket is the one the event is stored in (its order's, decision 0021)."""
    return f"{prefix}.{event.bucket}.case.{token(order_of(event))}"


def waves(events: Sequence[OutboxEvent]) -> list[list[OutboxEvent]]:
    """``events`` (in feed order) in waves: the first event of each order, then the second
    of each, …; each wave in feed order. The events of one wave are on different subjects
    and may be published at once; a wave starts when the one before is acknowledged, so an
    order's events reach the stream one after another, in feed order."""
    seen: dict[str, int] = {}
    out: list[list[OutboxEvent]] = []
    for event in events:
        number = seen.get(order_of(event), 0)
        seen[order_of(event)] = number + 1
        if number == len(out):
            out.append([])
        out[number].append(event)
    return out


def pending(
    new_uow: Callable[[], ApiUnitOfWork], stream: str, limit: int
) -> tuple[dict[int, int], list[OutboxEvent]]:
    """The stream's cursor of each bucket and up to ``limit`` feed events after them, each
    bucket's in position order. Committed events without a feed position get one first, one
    bucket per transaction (as the worker and ``GET /v1/webhooks/events`` do), so the relay
    keeps up when no worker runs."""
    for _ in range(SEQUENCE_ROUNDS):
        with new_uow() as uow:
            given = uow.webhooks.sequence(limit)
            uow.commit()
        if not given:
            break
    with new_uow() as uow:
        after = uow.relay.positions(stream)
        return after, uow.webhooks.events(after=after, limit=limit)


def reached(events: Sequence[OutboxEvent]) -> dict[int, int]:
    """Each bucket's last feed position among ``events``."""
    last: dict[int, int] = {}
    for event in events:
        assert event.position is not None  # the feed reads positioned events only
        last[event.bucket] = max(last.get(event.bucket, 0), event.position)
    return last


def mark(
    new_uow: Callable[[], ApiUnitOfWork], stream: str, to: Mapping[int, int], at: datetime
) -> None:
    """Record that ``stream`` holds every event of each bucket of ``to`` up to that bucket's
    position: one transaction per bucket (a relay stopped in between has marked some
    buckets; the next pass publishes the others again, which the stream keeps out)."""
    for bucket, position in sorted(to.items()):
        with new_uow() as uow:
            uow.relay.advance(stream, bucket, position, at)
            uow.commit()
