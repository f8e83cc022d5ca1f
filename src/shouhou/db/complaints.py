"""Complaints on SQL: the aggregate repository for the ``complaints`` table, one per order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shouhou.db import queries, serial, tables
from shouhou.db.aggregates import Aggregates
from shouhou.domain.events import Event
from shouhou.domain.model import Complaint
from shouhou.errors import Conflict


class SqlComplaints(Aggregates[Complaint]):
    """Complaints, saved like orders and cases; found by id or by their order, and listed."""

    stream, table = "complaint", tables.complaints

    def _load(self, state: str, version: int) -> Complaint:
        return serial.load_complaint_json(state, version)

    def _columns(self, item: Complaint) -> dict[str, Any]:
        return {"status": item.status.value}

    def _order_of(self, item: Complaint) -> str:
        return item.order_id

    def _born(self, item: Complaint) -> datetime:
        return item.filed_at

    def _created(self, item: Complaint) -> dict[str, Any]:
        return {
            "filed_at": self.cur.d.moment(item.filed_at),
            "order_id": item.order_id,
            "shop": item.shop,
            "buyer": item.buyer,
        }

    def add(self, item: Complaint, events: Sequence[Event]) -> None:
        try:
            super().add(item, events)
        except Conflict:
            raise Conflict(
                f"complaint {item.id} or one on order {item.order_id} already exists"
            ) from None

    def for_order(self, order_id: str) -> Complaint | None:
        bucket = self.homes.order(order_id)
        row = self.cur.one("complaint_for_order", {"bucket": bucket, "order_id": order_id})
        if row is None:
            return None
        self.homes.known[("complaint", row[2])] = bucket
        return self._load(row[0], row[1])

    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Complaint]:
        query = queries.list_complaints(
            shop=shop, buyer=buyer, status=status, after=after, limit=limit
        )
        return [serial.load_complaint(r.state, r.version) for r in self.conn.execute(query)]
