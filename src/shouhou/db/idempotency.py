"""SQL storage of the first answers to writes sent with an ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from shouhou.db import tables
from shouhou.errors import Conflict
from shouhou.services.ports import StoredResponse


class SqlIdempotency:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.t = tables.idempotency_keys

    def get(self, scope: str, key: str, since: datetime) -> StoredResponse | None:
        row = self.conn.execute(
            select(self.t.c.request_hash, self.t.c.status_code, self.t.c.response).where(
                self.t.c.scope == scope, self.t.c.key == key, self.t.c.created_at >= since
            )
        ).first()
        if row is None:
            return None
        return StoredResponse(
            request_hash=row.request_hash, status_code=row.status_code, body=row.response
        )

    def put(
        self, scope: str, key: str, response: StoredResponse, at: datetime, since: datetime
    ) -> None:
        t = self.t
        self.conn.execute(  # an expired answer the worker has not forgotten yet
            delete(t).where(t.c.scope == scope, t.c.key == key, t.c.created_at < since)
        )
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(self.t).values(
                        scope=scope,
                        key=key,
                        request_hash=response.request_hash,
                        status_code=response.status_code,
                        response=response.body,
                        created_at=at,
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"another request with Idempotency-Key {key!r} finished first; send it again "
                "to get its answer",
                rule="shouhou/idempotency",
            ) from None

    def forget_before(self, at: datetime) -> int:
        return self.conn.execute(delete(self.t).where(self.t.c.created_at < at)).rowcount
