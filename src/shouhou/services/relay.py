"""The event stream: which events ``shouhou relay`` publishes, on which subject, in which order.

The relay publishes the event feed (``GET /v1/events``: every committed outbox event, in feed
position order) to a NATS JetStream stream, each event on the subject of its order,
``<prefix>.<bucket>.case.<order id>``, so that one subject holds one order's events in feed
order. The NATS side is the worker's (``shouhou.worker.relay``); what is decided here is pure
or one transaction: the subject of an event, the waves a batch is published in, reading a
batch after the stream's cursor, and moving the cursor on once the stream has it all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from shouhou.domain.buckets import DEFAULT_BUCKETS, bucket_of
from shouhou.services.ports import ApiUnitOfWork, OutboxEvent

#: The number of buckets the subjects are computed with. The installation's bucket count
#: (issue 18) replaces it here, and only here.
RELAY_BUCKETS = DEFAULT_BUCKETS

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


def subject(prefix: str, event: OutboxEvent, buckets: int = RELAY_BUCKETS) -> str:
    """The subject ``event`` is published on: ``<prefix>.<bucket>.case.<order>``."""
    order = order_of(event)
    return f"{prefix}.{bucket_of(order, buckets)}.case.{token(order)}"


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
) -> tuple[int, list[OutboxEvent]]:
    """The stream's cursor and up to ``limit`` feed events after it, in feed order. Committed
    events without a feed position get one first (as the worker and ``GET /v1/events`` do),
    so the relay keeps up when no worker runs."""
    with new_uow() as uow:
        uow.webhooks.sequence(limit)
        uow.commit()
    with new_uow() as uow:
        after = uow.relay.position(stream)
        return after, uow.webhooks.events(after=after, limit=limit)


def mark(new_uow: Callable[[], ApiUnitOfWork], stream: str, to: int, at: datetime) -> None:
    """Record that ``stream`` holds every event up to feed position ``to``."""
    with new_uow() as uow:
        uow.relay.advance(stream, to, at)
        uow.commit()
