"""The relay's cursors on SQL: how far each JetStream stream has been published."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from shouhou.db import queries


class SqlRelayCursors:
    """``tables.relay_cursors``, on the unit of work's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def position(self, stream: str) -> int:
        found = self.conn.execute(queries.relay_cursor(stream)).scalar_one_or_none()
        return 0 if found is None else int(found)

    def advance(self, stream: str, to: int, at: datetime) -> None:
        self.conn.execute(queries.add_relay_cursor(stream, at))
        self.conn.execute(queries.move_relay_cursor(stream, to, at))
