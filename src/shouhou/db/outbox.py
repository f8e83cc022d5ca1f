"""The outbox: webhook events written in the transaction of the change they report."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert

from shouhou.db import tables
from shouhou.services import outbox
from shouhou.services.ports import OutboxMessage


class SqlOutbox:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        self.conn.execute(
            insert(tables.outbox),
            [
                {
                    "type": m.type,
                    "subject_type": m.subject_type,
                    "subject_id": m.subject_id,
                    "occurred_at": m.occurred_at,
                    "data": outbox.payload(m),
                }
                for m in messages
            ],
        )
