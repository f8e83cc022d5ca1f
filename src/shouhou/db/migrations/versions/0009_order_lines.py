"""Order lines: every stored order gets one implicit line (SPEC §1 "Lines and money").

Orders are stored as JSON snapshots. Before this revision an order had one ``open_case`` and
its refunds were counted for the order as a whole; now it has ``lines`` (each with its paid
share and what it has had back) and ``open_cases``. A stored order becomes one line worth its
goods (total less shipping fee), holding its open case and its refunds (goods first, the rest
having been shipping), so what it may still refund is unchanged. Items already listed on a
stored order are kept as they were, not turned into lines: their prices were never checked
against the total.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The line id of the one line an order stored before lines has (shouhou.domain.lines).
IMPLICIT_LINE = "1"

_orders = sa.table("orders", sa.column("id", sa.String), sa.column("state", sa.JSON))


def with_lines(state: dict[str, Any]) -> dict[str, Any]:
    """An order snapshot of before 0009 with its one implicit line and ``open_cases``."""
    if "lines" in state and "open_cases" in state:
        return state
    new = {key: value for key, value in state.items() if key != "open_case"}
    open_case = state.get("open_case")
    goods = int(state["total"]) - int(state.get("shipping_fee", 0))
    refunded = min(int(state.get("refunded", 0)), goods)
    new["open_cases"] = [open_case] if open_case else []
    new["lines"] = [
        {
            "line": IMPLICIT_LINE,
            "sku": "",
            "title": "",
            "quantity": 1,
            "price": goods,
            "own_discount": 0,
            "shop_coupon": 0,
            "cross_store": 0,
            "platform_subsidy": 0,
            "paid": goods,
            "refunded": refunded,
            "reclaimed": 0,
            "returned": 1 if refunded >= goods else 0,
            "open_case": open_case,
            "cases": int(state.get("case_count", 0)),
            "no_reapply_rule": state.get("no_reapply_rule"),
        }
    ]
    return new


def without_lines(state: dict[str, Any]) -> dict[str, Any]:
    """The snapshot as before 0009: the first open case, no lines."""
    new = {k: v for k, v in state.items() if k not in ("lines", "open_cases", "discounts")}
    open_cases = state.get("open_cases") or []
    new["open_case"] = open_cases[0] if open_cases else None
    return new


def _rewrite(change: Any) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_orders.c.id, _orders.c.state)).all()
    for order_id, state in rows:
        conn.execute(
            _orders.update().where(_orders.c.id == order_id).values(state=change(dict(state)))
        )


def upgrade() -> None:
    _rewrite(with_lines)


def downgrade() -> None:
    _rewrite(without_lines)
