"""SQL storage of API keys (only the SHA-256 of each secret)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from shouhou.db import queries, serial
from shouhou.domain.model import Role
from shouhou.services.ports import ApiKey


class SqlKeys:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @staticmethod
    def _key(row: Any) -> ApiKey:
        return serial.from_row(ApiKey, row, role=Role(row.role))

    def add(self, key: ApiKey, token_hash: str) -> None:
        values = serial.row_values(key, role=key.role.value, hash=token_hash)
        self.conn.execute(queries.add_key(values))

    def by_hash(self, token_hash: str) -> ApiKey | None:
        row = self.conn.execute(queries.key_by_hash(token_hash)).first()
        return None if row is None else self._key(row)

    def all(self) -> list[ApiKey]:
        return [self._key(r) for r in self.conn.execute(queries.all_keys())]

    def revoke(self, key_id: str, at: datetime) -> bool:
        return self.conn.execute(queries.revoke_key(key_id, at)).rowcount == 1
