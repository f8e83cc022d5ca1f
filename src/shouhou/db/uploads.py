"""The evidence upload quota on SQL: the ``upload_quota`` table, counted atomically."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection

from shouhou.db import queries


class SqlUploads:
    """Daily upload counts per actor, taken in the unit of work's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def take(self, actor: str, day: date, size: int, max_files: int, max_bytes: int) -> bool:
        """Count one file of ``size`` bytes for ``actor`` on ``day``; False, counting nothing,
        when that would pass ``max_files`` or ``max_bytes``."""
        self.conn.execute(queries.add_upload_day(actor, day))
        # A conditional update, its row count checked: on PostgreSQL a second upload waits for
        # the first's row lock and then tests the counts the first left; SQLite has one writer.
        taken = self.conn.execute(queries.take_upload(actor, day, size, max_files, max_bytes))
        return taken.rowcount == 1

    def counted(self, actor: str, day: date) -> tuple[int, int]:
        """The files and bytes counted for ``actor`` on ``day``."""
        row = self.conn.execute(queries.upload_counts(actor, day)).one_or_none()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))
