"""Orders on SQL: the aggregate repository for the ``orders`` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shouhou.db import serial, tables
from shouhou.db.aggregates import Aggregates
from shouhou.db.deadlines import Slot, slot
from shouhou.domain.model import Order


class SqlOrders(Aggregates[Order]):
    """Orders. In a writing unit of work on PostgreSQL, :meth:`get` locks the order row."""

    stream, table, has_deadlines = "order", tables.orders, True

    def _load(self, state: str, version: int) -> Order:
        return serial.load_order_json(state, version)

    def _columns(self, item: Order) -> dict[str, Any]:
        return {"status": item.status.value}

    def _order_of(self, item: Order) -> str:
        return item.id

    def _born(self, item: Order) -> datetime:
        return item.created_at

    def _created(self, item: Order) -> dict[str, Any]:
        return {
            "created_at": self.cur.d.moment(item.created_at),
            "shop": item.shop,
            "buyer": item.buyer,
        }

    def _pending(self, item: Order) -> Slot | None:
        return slot(item.deadline)
