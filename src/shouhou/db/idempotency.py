"""SQL storage of ``Idempotency-Key`` claims and the first answers to the writes behind them.

A row is a request's claim while its ``status_code`` is ``PENDING_STATUS``, and its answer once
the request's own transaction stores it there. Claims are plain rows, not database locks, so
they work alike on SQLite and PostgreSQL and across any number of API processes
(docs/decisions/0016-idempotency-keys-claimed-before-the-write.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shouhou.db import tables
from shouhou.errors import Conflict
from shouhou.services.ports import PENDING_STATUS, StoredResponse

#: How often ``claim`` tries again when the row it saw vanished before it could read it.
CLAIM_TRIES = 3


class SqlIdempotency:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.t = tables.idempotency_keys

    def get(
        self, scope: str, key: str, since: datetime, *, bucket: int = 0
    ) -> StoredResponse | None:
        t = self.t
        row = self.conn.execute(
            select(t.c.request_hash, t.c.status_code, t.c.response).where(
                t.c.bucket == bucket, t.c.scope == scope, t.c.key == key, t.c.created_at >= since
            )
        ).first()
        if row is None:
            return None
        return StoredResponse(
            request_hash=row.request_hash, status_code=row.status_code, body=row.response
        )

    def claim(
        self,
        scope: str,
        key: str,
        request_hash: str,
        at: datetime,
        since: datetime,
        stale_before: datetime,
        *,
        bucket: int = 0,
    ) -> StoredResponse | None:
        t = self.t
        claimed = {
            "request_hash": request_hash,
            "status_code": PENDING_STATUS,
            "response": {},
            "created_at": at,
        }
        for _ in range(CLAIM_TRIES):
            # PostgreSQL re-checks the condition on the newest row after waiting for a
            # concurrent taker, so of two requests taking over one row only one succeeds.
            outdated = or_(
                t.c.created_at < since,
                and_(t.c.status_code == PENDING_STATUS, t.c.created_at < stale_before),
            )
            taken = self.conn.execute(
                update(t)
                .where(t.c.bucket == bucket, t.c.scope == scope, t.c.key == key, outdated)
                .values(**claimed)
            )
            if taken.rowcount == 1:
                return None
            try:
                # A concurrent insert of the same key waits for the first to commit, then
                # fails here: the savepoint keeps this transaction usable to read the winner.
                with self.conn.begin_nested():
                    self.conn.execute(
                        insert(t).values(bucket=bucket, scope=scope, key=key, **claimed)
                    )
                return None
            except IntegrityError:
                pass
            found = self.get(scope, key, since, bucket=bucket)
            if found is not None:
                return found
            # the holder released its claim between our insert and read: try again
        raise Conflict(
            f"Idempotency-Key {key!r} is changing hands too fast; send the request again",
            rule="shouhou/idempotency",
        )

    def finish(
        self,
        scope: str,
        key: str,
        response: StoredResponse,
        claimed_at: datetime,
        *,
        bucket: int = 0,
    ) -> None:
        t = self.t
        stored = self.conn.execute(
            update(t)
            .where(self._claimed(bucket, scope, key, claimed_at))
            .values(status_code=response.status_code, response=response.body)
        )
        if stored.rowcount != 1:
            raise Conflict(
                f"the request with Idempotency-Key {key!r} took so long that another one took "
                "the key over; nothing was changed, send it again to get that one's answer",
                rule="shouhou/idempotency",
            )

    def release(self, scope: str, key: str, claimed_at: datetime, *, bucket: int = 0) -> None:
        self.conn.execute(delete(self.t).where(self._claimed(bucket, scope, key, claimed_at)))

    def _claimed(
        self, bucket: int, scope: str, key: str, claimed_at: datetime
    ) -> ColumnElement[bool]:
        t = self.t
        return and_(
            t.c.bucket == bucket,
            t.c.scope == scope,
            t.c.key == key,
            t.c.status_code == PENDING_STATUS,
            t.c.created_at == claimed_at,
        )

    def forget_before(self, at: datetime) -> int:
        return self.conn.execute(delete(self.t).where(self.t.c.created_at < at)).rowcount
