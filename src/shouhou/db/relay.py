"""The relay's cursors on SQL: how far each bucket's feed has been published to each stream."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from shouhou.db import queries


class SqlRelayCursors:
    """``tables.relay_cursors``, on the unit of work's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def positions(self, stream: str) -> dict[int, int]:
        rows = self.conn.execute(queries.relay_cursors(stream))
        return {int(bucket): int(position) for bucket, position in rows}

    def advance(self, stream: str, bucket: int, to: int, at: datetime) -> None:
        self.conn.execute(queries.add_relay_cursor(bucket, stream, at))
        self.conn.execute(queries.move_relay_cursor(bucket, stream, to, at))
