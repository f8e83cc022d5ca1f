"""The relay: the event feed published to NATS JetStream, at least once and in order per order.

One pass reads a batch of feed events after the stream's cursor of each bucket
(``services.relay.pending``), publishes them in waves (the first event of each order, then
the second, …: one event per subject at a time) and, once the stream has acknowledged every
one, moves each bucket's cursor past the batch's events of that bucket (one bucket per
transaction). Each message carries:

- ``Nats-Msg-Id: evt_<id>``: JetStream drops a second message with the same id within its
  duplicate window (a batch published again after a crash);
- ``Nats-Expected-Last-Subject-Sequence``: the stream sequence of the order's last message
  as the relay knows it (0: none). The stream refuses the message if the subject's last
  message is another one: the relay's knowledge is stale (a second relay, a restart); it
  then reads the subject's last message and either finds the event there already or
  publishes it again after that message. So an order's events reach the stream one after
  another in feed order, never one overtaking another, and none twice;
- ``Shouhou-Position``: the event's feed position in its bucket, by which that re-read tells
  whether an event is in the stream already (one subject is one order, in one bucket, so
  the positions on a subject are comparable).

A relay killed after the stream took a batch and before the cursor moved publishes the
batch again on restart: within the duplicate window the stream drops each message by its
id; after it, the expected sequence refuses it and the re-read finds it there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shouhou.clock import SystemClock
from shouhou.services.ports import ApiUnitOfWork, Clock, OutboxEvent
from shouhou.services.relay import DEFAULT_STREAM, mark, pending, reached, subject, waves

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.api import PubAck

log = logging.getLogger("shouhou.relay")

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
POSITION = "Shouhou-Position"
#: JetStream's error code for a publish whose expected last sequence is not the stream's.
WRONG_LAST_SEQUENCE = 10071
#: How many times one event is tried again after a refusal before the pass gives up (each
#: try follows a fresh read of the subject: only another relay racing on it refuses twice).
MAX_RETRIES = 5


@dataclass(frozen=True, kw_only=True)
class RelaySettings:
    """The relay's tunables, with their units in the names."""

    #: The JetStream stream published to; created if missing, on ``<prefix>.>``.
    stream: str = DEFAULT_STREAM
    #: The first token of every subject (``shouhou.<bucket>.case.<order>``).
    prefix: str = "shouhou"
    #: Feed events read, published and marked per pass.
    batch: int = 500
    #: How long the stream may take to acknowledge a message.
    ack_timeout_s: float = 10.0
    #: The stream's duplicate window when the relay creates it.
    duplicate_window_s: float = 120.0
    #: Orders whose last stream sequence is remembered between passes (a forgotten one
    #: costs one refused publish and one read when it has an event again).
    known_orders: int = 100_000


@dataclass
class Relayed:
    """What one pass did."""

    #: Feed events read after the cursor.
    read: int = 0
    #: Messages the stream stored.
    published: int = 0
    #: Messages the stream dropped as duplicates of one it holds (same ``Nats-Msg-Id``).
    duplicates: int = 0
    #: Events found in the stream already on reading an order's last message: not sent again.
    already: int = 0
    #: Publishes the stream refused because the order's last message was another one.
    refused: int = 0
    #: The stream's cursors after the pass, summed over the buckets: how many feed events
    #: (each bucket's positions run 1, 2, …) the stream holds by them.
    position: int = 0


@dataclass(frozen=True)
class _Last:
    """An order's last message in the stream: its stream sequence and its feed position."""

    seq: int
    position: int


NOTHING = _Last(0, 0)

#: Called after each wave the stream acknowledged, before the next one or the marking.
Hold = Callable[[Relayed], Awaitable[None]]


def body(event: OutboxEvent) -> bytes:
    """A message's payload: the event as a webhook delivery carries it."""
    return json.dumps(event.envelope(), ensure_ascii=False, separators=(",", ":")).encode()


class Relay:
    """Publishes one database's event feed to one JetStream stream."""

    def __init__(
        self,
        new_uow: Callable[[], ApiUnitOfWork],
        js: JetStreamContext,
        settings: RelaySettings | None = None,
        *,
        clock: Clock | None = None,
        hold: Hold | None = None,
    ) -> None:
        self.new_uow = new_uow
        self.js = js
        self.settings = settings or RelaySettings()
        self.clock = clock or SystemClock()
        self.hold = hold
        #: Each subject's last message as this relay saw it, oldest first.
        self._known: dict[str, _Last] = {}

    async def ensure_stream(self) -> bool:
        """Create the stream on ``<prefix>.>`` unless it exists; whether it was created. An
        existing stream must take the subjects (ValueError if not)."""
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        s = self.settings
        wanted = f"{s.prefix}.>"
        try:
            info = await self.js.stream_info(s.stream)
        except NotFoundError:
            config = StreamConfig(
                name=s.stream, subjects=[wanted], duplicate_window=s.duplicate_window_s
            )
            await self.js.add_stream(config)
            return True
        subjects = info.config.subjects or []
        if wanted not in subjects and ">" not in subjects:
            raise ValueError(f"{s.stream}: {', '.join(subjects)}")
        return False

    async def run_once(self) -> Relayed:
        """One pass: a batch published and marked (nothing read: nothing to do)."""
        s = self.settings
        after, events = pending(self.new_uow, s.stream, s.batch)
        done = Relayed(read=len(events), position=sum(after.values()))
        if not events:
            return done
        for wave in waves(events):
            await self._wave(wave, done)
            if self.hold is not None:
                await self.hold(done)
        to = reached(events)
        mark(self.new_uow, s.stream, to, self.clock.now())
        done.position = sum({**after, **to}.values())
        return done

    # --- publishing ---

    def _subject(self, event: OutboxEvent) -> str:
        return subject(self.settings.prefix, event)

    async def _send(self, event: OutboxEvent, to: str, expected: int) -> PubAck:
        """Publish one event and wait for the stream's answer. (``publish`` rather than
        ``publish_async``: nats-py 2.16 never completes the future of a refused message.)"""
        headers = {
            MSG_ID: event.public_id,
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected),
            POSITION: str(event.position),
        }
        return await self.js.publish(
            to,
            body(event),
            timeout=self.settings.ack_timeout_s,
            stream=self.settings.stream,
            headers=headers,
        )

    async def _wave(self, wave: list[OutboxEvent], done: Relayed) -> None:
        """Publish one event per subject at once; then read each answer."""
        sent: list[tuple[OutboxEvent, str, int]] = []
        for event in wave:
            to = self._subject(event)
            known = self._known.get(to)
            if known is not None and _position(event) <= known.position:
                done.already += 1
                continue
            # an order the relay knows nothing of is taken to be new: if it is not, the
            # stream refuses, and the subject is read (below)
            sent.append((event, to, NOTHING.seq if known is None else known.seq))
        answers = await asyncio.gather(
            *(self._send(event, to, expected) for event, to, expected in sent),
            return_exceptions=True,
        )
        for (event, to, _), answer in zip(sent, answers, strict=True):
            if isinstance(answer, BaseException):
                if not _refused(answer):
                    raise answer
                done.refused += 1
                await self._resume(event, to, done)
            else:
                self._stored(event, to, answer, done)

    def _stored(self, event: OutboxEvent, to: str, ack: PubAck, done: Relayed) -> None:
        if ack.duplicate:  # the stream holds it already: its seq may not be the last one
            done.duplicates += 1
            known = self._known.get(to)
            if known is not None and known.seq > ack.seq:
                return
        else:
            done.published += 1
        self._remember(to, _Last(ack.seq, _position(event)))

    async def _resume(self, event: OutboxEvent, to: str, done: Relayed) -> None:
        """After a refusal: read the subject's last message; the event is there already, or
        goes after that message."""
        for _ in range(MAX_RETRIES):
            last = await self._last(to)
            self._remember(to, last)
            if _position(event) <= last.position:
                done.already += 1
                return
            try:
                ack = await self._send(event, to, last.seq)
            except Exception as exc:
                if not _refused(exc):
                    raise
                done.refused += 1
                continue
            self._stored(event, to, ack, done)
            return
        raise RuntimeError(f"{to}: refused {MAX_RETRIES} times in a row")

    async def _last(self, to: str) -> _Last:
        """The subject's last message in the stream (NOTHING: it has none)."""
        from nats.js.errors import NotFoundError

        try:
            found = await self.js.get_last_msg(self.settings.stream, to)
        except NotFoundError:
            return NOTHING
        headers = found.headers or {}
        try:
            position = int(headers.get(POSITION, 0))
        except ValueError:
            position = 0  # not the relay's: the event goes after it
        return _Last(found.seq or 0, position)

    def _remember(self, to: str, last: _Last) -> None:
        known = self._known
        known.pop(to, None)
        known[to] = last
        while len(known) > self.settings.known_orders:
            del known[next(iter(known))]


def _position(event: OutboxEvent) -> int:
    assert event.position is not None  # the feed reads positioned events only
    return event.position


def _refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the stream refusing a stale expected last subject sequence."""
    from nats.js.errors import APIError

    return isinstance(exc, APIError) and exc.err_code == WRONG_LAST_SEQUENCE
