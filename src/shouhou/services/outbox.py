"""Webhook events from domain events: the messages the services write to the outbox.

Every stored event becomes one message named ``<stream>.<what happened>`` (``case.agreed``,
``order.shipped``); deadline events are named ``deadline.scheduled``, ``deadline.cleared`` and
``deadline.fired`` whatever they belong to, and so are the families ``complaint.*``,
``compensation.*`` and ``penalty.*`` (``PenaltyRecorded`` is ``penalty.recorded``). New event
classes get a name by the same rules, so nothing here changes when the domain grows.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shouhou.domain import events as e
from shouhou.domain.model import Case, Complaint, Order
from shouhou.services.ports import OutboxMessage
from shouhou.services.views import event_fields

#: Event classes whose webhook name is not derived from the class name.
SPECIAL_NAMES: dict[type[e.Event], str] = {
    e.Applied: "applied",
    e.DeadlineFired: "deadline.fired",
    e.OrderPlaced: "placed",
    e.CaseOpenedOnOrder: "case_opened",
    e.CaseEndedOnOrder: "case_ended",
}


#: Event families named for themselves whatever stream they are stored in (SPEC §10).
FAMILIES = ("complaint", "compensation", "penalty")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


#: The webhook names worked out so far, by stream and event class (DeadlineSet excluded).
_NAMES: dict[tuple[str, type[e.Event]], str] = {}


def event_type(stream: str, event: e.Event) -> str:
    """The public webhook name of ``event`` in ``stream`` (``case.agreed``, ``deadline.fired``)."""
    if isinstance(event, e.DeadlineSet):
        return "deadline.scheduled" if event.deadline is not None else "deadline.cleared"
    key = (stream, type(event))
    found = _NAMES.get(key)
    if found is None:
        found = _NAMES[key] = _name(stream, event)
    return found


def _name(stream: str, event: e.Event) -> str:
    special = SPECIAL_NAMES.get(type(event))
    if special is not None and "." in special:
        return special
    name = special or _snake(type(event).__name__)
    for family in FAMILIES:
        if name.startswith(f"{family}_"):
            return f"{family}.{name[len(family) + 1 :]}"
    if name.startswith(f"{stream}_"):
        name = name[len(stream) + 1 :]
    return f"{stream}.{name}"


def _subject(stream: str, subject: Case | Order | Complaint) -> dict[str, Any]:
    if isinstance(subject, Complaint):
        return {
            "complaint": subject.id,
            "order": subject.order_id,
            "case": subject.case_id,
            "shop": subject.shop,
            "buyer": subject.buyer,
            "status": subject.status.value,
        }
    if isinstance(subject, Case):
        return {
            "case": subject.id,
            "order": subject.order_id,
            "shop": subject.shop,
            "buyer": subject.buyer,
            "status": subject.status.value,
        }
    return {
        "order": subject.id,
        "shop": subject.shop,
        "buyer": subject.buyer,
        "status": subject.status.value,
    }


def messages(
    stream: str, subject: Case | Order | Complaint, events: Sequence[e.Event]
) -> list[OutboxMessage]:
    """One outbox message per event; ``subject`` is the state after all of ``events``. The
    messages share one ``data``: the subject's fields (the event's view is added on reading)."""
    about = _subject(stream, subject)
    return [
        OutboxMessage(
            type=event_type(stream, event),
            subject_type=stream,
            subject_id=subject.id,
            occurred_at=event.at,
            data=about,
            event=event,
        )
        for event in events
    ]


def payload(message: OutboxMessage) -> dict[str, Any]:
    """The whole payload of ``message``: its data, and the view of its event if it has one."""
    if message.event is None:
        return message.data
    return {**message.data, "event": event_fields(message.event, int)}


#: The key under which a stored outbox row keeps its event as the timeline stores it
#: (``{"type": "Refunded", "data": {…}}``) until it is read (:func:`from_stored`).
STORED_EVENT = "stored_event"


def from_stored(data: dict[str, Any], load: Callable[[str, Any], e.Event]) -> dict[str, Any]:
    """The payload of a stored outbox row: as stored, or with its stored event, loaded with
    ``load`` (kind, data), turned into the event's view: the same view the API's timeline
    shows, since the timeline is read from the same stored events."""
    stored = data.get(STORED_EVENT)
    if stored is None:
        return data
    about = {key: value for key, value in data.items() if key != STORED_EVENT}
    return {**about, "event": event_fields(load(stored["type"], stored["data"]), int)}


# --- the event feed's cursor ----------------------------------------------------------------

#: A feed cursor: ``f_`` and each bucket's last position read, compressed (opaque to clients).
#: ``pos_N``, the cursor of the single feed before buckets (0011), starts from the beginning:
#: its positions were renumbered per bucket, and at least once beats never.
FEED_CURSOR_PATTERN = r"^(f_[A-Za-z0-9_-]{1,4094}|(pos_)?[0-9]{1,18})$"
MAX_FEED_CURSOR = 4096


def feed_cursor(positions: Mapping[int, int]) -> str:
    """The cursor after ``positions`` (each bucket's last position read)."""
    text = ",".join(f"{b}:{p}" for b, p in sorted(positions.items()) if p > 0)
    packed = base64.urlsafe_b64encode(zlib.compress(text.encode("ascii"), 9))
    return "f_" + packed.decode("ascii").rstrip("=")


def feed_positions(cursor: str) -> dict[int, int]:
    """Each bucket's last position read, from a cursor (``ValueError``: not a cursor)."""
    if not cursor.startswith("f_"):
        digits = cursor.removeprefix("pos_")
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(cursor)
        return {}  # a cursor of the single feed before buckets: from the beginning
    raw = cursor[2:]
    try:
        text = zlib.decompress(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        pairs = [item.split(":") for item in text.decode("ascii").split(",") if item]
        found = {int(b): int(p) for b, p in pairs}
    except (ValueError, zlib.error, UnicodeDecodeError, binascii.Error) as exc:
        raise ValueError(cursor) from exc
    if any(b < 0 or p < 0 or p >= 2**62 for b, p in found.items()):
        raise ValueError(cursor)
    return found
