"""The ledger on SQL: shops' penalty points and buyers' compensation, one line per source."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from shouhou.db import queries
from shouhou.db.buckets import Homes
from shouhou.errors import Conflict
from shouhou.services.ports import LedgerEntry

_COLUMNS = list(LedgerEntry.__dataclass_fields__)


class SqlLedger:
    """Ledger lines, written in the unit of work's transaction; never twice for one source."""

    def __init__(self, conn: Connection, homes: Homes) -> None:
        self.conn = conn
        self.homes = homes

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            bucket = self.homes.order(entry.order_id)
            try:
                self.conn.execute(queries.add_ledger_entry({**vars(entry), "bucket": bucket}))
            except IntegrityError:
                raise Conflict(
                    f"{entry.kind} for {entry.source} was already written to the ledger"
                ) from None

    def entries(self, account: str, kind: str | None = None) -> list[LedgerEntry]:
        rows = self.conn.execute(queries.ledger_entries(account, kind, _COLUMNS))
        return [LedgerEntry(**row._mapping) for row in rows]
