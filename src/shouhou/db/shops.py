"""Shops' settings on SQL: the ``shops`` table (a row once a shop sets something)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from shouhou.db import queries
from shouhou.errors import Conflict


class SqlShops:
    """Shops' settings, read and written in the unit of work's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def return_address(self, shop: str) -> str | None:
        found = self.conn.execute(queries.shop_return_address(shop)).scalar_one_or_none()
        return None if found is None else str(found)

    def set_return_address(self, shop: str, address: str | None, at: datetime) -> None:
        changed = self.conn.execute(queries.set_shop_return_address(shop, address, at))
        if changed.rowcount == 0:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(queries.add_shop(shop, address, at))
            except IntegrityError:
                raise Conflict(f"shop {shop} was changed at the same time; try again") from None
