"""The outbox on SQL: the webhook messages each change writes, in its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import to_json

from shouhou.db.buckets import Homes
from shouhou.db.cursor import Cursor
from shouhou.services.outbox import STORED_EVENT
from shouhou.services.ports import OutboxMessage


class SqlOutbox:
    """The outbox table (``tables.outbox``), written through the unit of work's cursor: every
    transition writes to it, so it is on the hot path."""

    def __init__(self, cur: Cursor, homes: Homes) -> None:
        self.cur = cur
        self.homes = homes
        #: The data last serialized, and its text: the messages of one change share it.
        self._last: tuple[dict[str, Any], str] | None = None

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        moment, homes, held = self.cur.d.moment, self.homes, self.cur.held
        for m in messages:  # held, and written with the unit of work's events
            held.message(
                homes.of(m.subject_type, m.subject_id),
                (m.type, m.subject_type, m.subject_id, moment(m.occurred_at), self._data(m)),
            )

    def _data(self, message: OutboxMessage) -> str:
        """The row's JSON: the data, and the event as the timeline stores it (the payload's
        view of it is rendered when the row is read, by ``services.outbox.from_stored``)."""
        data = message.data
        last = self._last
        if last is not None and last[0] is data:
            text = last[1]
        else:
            text = to_json(data).decode()
            self._last = (data, text)
        if message.event is None:
            return text
        stored = (
            f'"{STORED_EVENT}":{{"type":"{type(message.event).__name__}",'
            f'"data":{self.cur.event_json(message.event)}}}'
        )
        return f"{text[:-1]},{stored}}}" if text != "{}" else f"{{{stored}}}"
