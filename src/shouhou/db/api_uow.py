"""The SQL unit of work of the API and the worker: the core repositories of
:class:`~shouhou.db.uow.SqlUnitOfWork` with keys, idempotency records, lists, webhooks,
retention, the upload quota and the relay's cursors on the same transaction."""

from __future__ import annotations

from sqlalchemy import Engine

from shouhou.db.idempotency import SqlIdempotency
from shouhou.db.keys import SqlKeys
from shouhou.db.lists import SqlQueries
from shouhou.db.relay import SqlRelayCursors
from shouhou.db.retention import SqlRetention
from shouhou.db.uow import SqlUnitOfWork
from shouhou.db.uploads import SqlUploads
from shouhou.db.webhooks import SqlWebhooks


class SqlApiUnitOfWork(SqlUnitOfWork):
    """The SQL unit of work with the API and worker tables on the same transaction."""

    def __init__(self, engine: Engine, *, readonly: bool = False) -> None:
        super().__init__(engine, readonly=readonly)

    def __enter__(self) -> SqlApiUnitOfWork:
        super().__enter__()
        assert self.conn is not None
        self.keys = SqlKeys(self.conn)
        self.idempotency = SqlIdempotency(self.conn)
        self.queries = SqlQueries(self.conn, self.write_through, self.layout.buckets)
        self.webhooks = SqlWebhooks(self.conn, self.write_through, self.layout.buckets)
        self.retention = SqlRetention(self.conn, self.write_through)
        self.uploads = SqlUploads(self.conn)
        self.relay = SqlRelayCursors(self.conn)
        return self
