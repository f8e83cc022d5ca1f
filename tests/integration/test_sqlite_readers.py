"""On SQLite, reading a case never waits for a writer (views run in read-only transactions)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order
from shouhou.domain.values import SHANGHAI

T0 = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)


def test_a_case_view_is_read_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    engine = Engine.open(f"sqlite:///{path}", clock=VirtualClock(T0))
    try:
        engine.place_order(
            Order(id="o1", shop="s1", buyer="b1", total=100, created_at=T0, paid_at=T0)
        )
        apply = engine.build(
            "apply",
            actor="buyer:b1",
            target={"case_id": "c1"},
            params={"order": "o1", "kind": "refund_only", "reason": "other", "amount": 100},
        )
        engine.execute(apply)
        writer = sqlite3.connect(path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE orders SET status = status")
            assert engine.view("c1")["status"] == "awaiting_seller"
            assert engine.order("o1").open_case == "c1"
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    finally:
        engine.close()
