"""Cases on SQL: the aggregate repository for the ``cases`` table, and its list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shouhou.db import queries, serial, tables
from shouhou.db.aggregates import Aggregates
from shouhou.db.deadlines import Slot, slot
from shouhou.domain.model import Case, CaseStatus


class SqlCases(Aggregates[Case]):
    """Cases, each loaded and saved with its version; listed by order, shop, buyer, status."""

    stream, table, has_deadlines, insert_checks = "case", tables.cases, True, True

    def _load(self, state: str, version: int) -> Case:
        return serial.load_case_json(state, version)

    def _columns(self, item: Case) -> dict[str, Any]:
        return {"status": item.status.value, "kind": item.kind.value}

    def _order_of(self, item: Case) -> str:
        return item.order_id

    def _born(self, item: Case) -> datetime:
        return item.opened_at

    def _created(self, item: Case) -> dict[str, Any]:
        return {
            "opened_at": self.cur.d.moment(item.opened_at),
            "order_id": item.order_id,
            "shop": item.shop,
            "buyer": item.buyer,
        }

    def _pending(self, item: Case) -> Slot | None:
        return slot(item.deadline)

    def list(
        self,
        *,
        shop: str | None = None,
        buyer: str | None = None,
        status: CaseStatus | None = None,
        limit: int = 100,
        order: str | None = None,
    ) -> list[Case]:
        query = queries.list_cases(
            bucket=None if order is None else self.homes.order(order),
            order=order,
            shop=shop,
            buyer=buyer,
            status=None if status is None else status.value,
            limit=limit,
        )
        return [serial.load_case(r.state, r.version) for r in self.conn.execute(query)]
