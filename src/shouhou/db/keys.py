"""SQL storage of API keys (only the SHA-256 of each secret)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from shouhou.db import tables
from shouhou.domain.model import Role
from shouhou.services.ports import ApiKey


class SqlKeys:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.t = tables.api_keys

    @staticmethod
    def _key(row: Any) -> ApiKey:
        return ApiKey(
            id=row.id,
            prefix=row.prefix,
            role=Role(row.role),
            subject=row.subject,
            name=row.name,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )

    def add(self, key: ApiKey, token_hash: str) -> None:
        self.conn.execute(
            insert(self.t).values(
                id=key.id,
                hash=token_hash,
                prefix=key.prefix,
                role=key.role.value,
                subject=key.subject,
                name=key.name,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )

    def by_hash(self, token_hash: str) -> ApiKey | None:
        row = self.conn.execute(select(self.t).where(self.t.c.hash == token_hash)).first()
        return None if row is None else self._key(row)

    def all(self) -> list[ApiKey]:
        rows = self.conn.execute(select(self.t).order_by(self.t.c.created_at, self.t.c.id))
        return [self._key(r) for r in rows]

    def revoke(self, key_id: str, at: datetime) -> bool:
        result = self.conn.execute(
            update(self.t)
            .where(self.t.c.id == key_id, self.t.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return result.rowcount == 1
