"""SQL for forgetting what nothing reads any more: old deadlines, delivered events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from shouhou.db import queries


class SqlRetention:
    def __init__(self, conn: Connection, before_deadlines: Callable[[], None]) -> None:
        self.conn = conn
        self.before_deadlines = before_deadlines

    def _ids(self, query: Any) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(query)]

    def forget_deadlines(self, before: datetime, limit: int) -> int:
        self.before_deadlines()
        ids = self._ids(queries.old_deadlines(before, limit))
        if not ids:
            return 0
        notices, deadlines = queries.forget_deadlines(ids)
        self.conn.execute(notices)
        return int(self.conn.execute(deadlines).rowcount)

    def forget_events(self, before: datetime, limit: int) -> int:
        ids = self._ids(queries.old_events(before, limit))
        if not ids:
            return 0
        attempts, deliveries, events = queries.forget_events(ids)
        self.conn.execute(attempts)
        self.conn.execute(deliveries)
        return int(self.conn.execute(events).rowcount)
