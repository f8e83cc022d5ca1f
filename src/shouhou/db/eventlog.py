"""The event log on SQL: every event of a shop's orders, cases and complaints, read by time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from shouhou.db import queries, serial
from shouhou.services.ports import LoggedEvent


class SqlEventLog:
    """The ``events`` table read across streams, for a shop's metrics and report."""

    def __init__(self, conn: Connection, write_through: Callable[[], None]) -> None:
        self.conn = conn
        #: Writes what the unit of work holds back (its events) before the table is read.
        self.write_through = write_through

    def for_shop(self, shop: str, since: datetime, until: datetime) -> list[LoggedEvent]:
        self.write_through()  # the unit of work's own events count too
        rows = self.conn.execute(queries.shop_events(shop, since, until))
        return [
            LoggedEvent(
                stream=r.stream, stream_id=r.stream_id, event=serial.load_event(r.type, r.data)
            )
            for r in rows
        ]
