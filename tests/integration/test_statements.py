"""How many statements a transition sends (issue 19): the four steps of a return, counted the
way ``benchmarks/transitions.py`` counts them, on SQLite and on PostgreSQL.

Every call on the unit of work's driver cursor and every statement SQLAlchemy executes is
counted; ``BEGIN`` and ``COMMIT`` are not. The counts are exact, so that a statement added to
the hot path fails here and is either merged away or written into docs/performance.md with
the new count. PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL`` (skipped where no server
runs, a failure in CI).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pgscratch import scratch_schema
from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import cursor as db_cursor
from shouhou.db import engine as db_engine
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.buckets import DEFAULT_BUCKETS, bucket_of, in_bucket
from shouhou.domain.model import Order

T0 = datetime(2024, 3, 1, 2, tzinfo=UTC)
STEPS = [
    ("apply", "buyer:b1", {"kind": "return_refund", "reason": "wrong_item", "amount": 29_900}),
    ("agree", "seller:s1", {"return_address": "杭州市余杭区文一西路 1 号"}),
    ("ship_return", "buyer:b1", {"carrier": "SF", "waybill": "SF1", "method": "express"}),
    ("confirm_receipt", "seller:s1", {}),
]

#: What each step sends, by database: see docs/performance.md (issue 19).
EXPECTED = {
    # apply: order read · case insert · case deadline · order update · order deadline cancelled
    # · events · outbox; the others: case and order read together · case update · deadline
    # cancelled · deadline scheduled (confirm_receipt: order update instead) · events · outbox
    "sqlite": {"apply": 7, "agree": 6, "ship_return": 6, "confirm_receipt": 6},
    # the deadline cancelled and scheduled in one statement, events and outbox in one
    "postgresql": {"apply": 6, "agree": 4, "ship_return": 4, "confirm_receipt": 5},
}


class Counting:
    """The driver's cursor, counting each call."""

    def __init__(self, cursor: Any, sent: list[str]) -> None:
        self._cursor = cursor
        self._sent = sent

    def execute(self, sql: str, params: Any = None) -> Any:
        self._sent.append(sql)
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        self._sent.append(sql)
        return self._cursor.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements every unit of work's cursor sends from now on (the test's end undoes
    it)."""
    sent: list[str] = []
    made = db_cursor.Cursor.__init__

    def counting(self: db_cursor.Cursor, conn: Any, dialect: Any) -> None:
        made(self, conn, dialect)
        self.cursor = Counting(self.cursor, sent)

    monkeypatch.setattr(db_cursor.Cursor, "__init__", counting)
    return sent


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'statements.db'}"
    else:
        with scratch_schema("statements") as fresh:
            yield fresh


def test_a_return_takes_the_documented_statements_per_step(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql)
        clock = VirtualClock(T0)
        engine = Engine(lambda: SqlUnitOfWork(sql), clock=clock)
        engine.place_order(
            Order(
                id="o1",
                shop="s1",
                buyer="b1",
                total=29_900,
                created_at=T0 - timedelta(days=3),
                paid_at=T0 - timedelta(days=3),
                shipped_at=T0 - timedelta(days=2),
                delivered_at=T0 - timedelta(days=1),
            )
        )
        case_id = in_bucket("c1", bucket_of("o1", DEFAULT_BUCKETS), DEFAULT_BUCKETS)
        sent = counted(monkeypatch)
        sa.event.listen(sql, "before_cursor_execute", lambda *args: sent.append(args[2]))
        counts = {}
        for n, (action, actor, params) in enumerate(STEPS):
            clock.set(T0 + timedelta(hours=n + 1))
            target = {"order_id": "o1", "case_id": case_id} if action == "apply" else {}
            cmd = engine.build(
                action, actor=actor, target=target or {"case_id": case_id}, params=params
            )
            sent.clear()
            engine.execute(cmd)
            counts[action] = len([s for s in sent if s.split()[0].upper() != "BEGIN"])
        dialect = sql.dialect.name
        assert counts == EXPECTED[dialect], sent
        assert engine.case(case_id).status.value == "refunded"
        if dialect == "postgresql":  # issue 19: at most 5 on average over the four steps
            assert sum(counts.values()) / len(counts) <= 5
    finally:
        db_engine.dispose(sql)


def test_held_events_are_numbered_on_without_gaps_across_statements(url: str) -> None:
    """More events than one SQLite statement takes (``HELD_CHUNK``), in two streams of two
    buckets taking turns, with a read of the timeline in between (which writes what is held
    first): every stream numbered 1, 2, 3 … in the order its events were appended; outbox
    ids rise in the order the messages were added."""
    from shouhou.db.aggregates import append_events, timeline
    from shouhou.domain.events import StatusChanged
    from shouhou.services.ports import OutboxMessage

    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql)
        total = db_cursor.HELD_CHUNK + 57  # after the read, more than one statement takes
        with SqlUnitOfWork(sql) as uow:
            cur = uow._cursor
            for n in range(total):
                change = StatusChanged(
                    at=T0 + timedelta(seconds=n),
                    actor="system",
                    action=f"a{n}",
                    source="x",
                    target="y",
                )
                if n % 2 == 0:
                    append_events(cur, 7, "case", "even", [change])
                else:  # another bucket, in the same statements (SQLite) or its own
                    append_events(cur, 9, "case", "odd", [change])
                if n == 20:  # read early: written, then numbered on from them
                    assert len(timeline(cur, 7, "case", "even")) == 11
            uow.outbox.add(
                [
                    OutboxMessage(
                        type="order.placed",
                        subject_type="order",
                        subject_id="o1",
                        occurred_at=T0 + timedelta(seconds=n),
                        data={"n": n},
                    )
                    for n in range(total)
                ]
            )
            uow.commit()
        with SqlUnitOfWork(sql, readonly=True) as uow:
            even = timeline(uow._cursor, 7, "case", "even")
            odd = timeline(uow._cursor, 9, "case", "odd")
            rows = uow.conn.execute(sa.text("SELECT id, data FROM outbox ORDER BY id")).all()
        assert [s.seq for s in even] == list(range(1, len(even) + 1))
        assert [s.seq for s in odd] == list(range(1, len(odd) + 1))
        assert [s.event.action for s in even] == [f"a{n}" for n in range(0, total, 2)]
        assert [s.event.action for s in odd] == [f"a{n}" for n in range(1, total, 2)]
        assert len(rows) == total
        numbers = [r.data if isinstance(r.data, dict) else json.loads(r.data) for r in rows]
        assert [d["n"] for d in numbers] == list(range(total))
    finally:
        db_engine.dispose(sql)


def test_a_claimed_batch_reads_its_cases_and_orders_in_one_statement(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five refund-only cases whose sellers never answered, in one bucket, fired in one
    batch: the batch's cases and their orders are read by one statement, none by itself, and
    every case is refunded as if read one by one."""
    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql)
        clock = VirtualClock(T0)
        engine = Engine(lambda: SqlUnitOfWork(sql), clock=clock)
        orders = [in_bucket(f"o{n}", 5, DEFAULT_BUCKETS) for n in range(5)]
        cases = []
        for n, order_id in enumerate(orders):
            engine.place_order(
                Order(
                    id=order_id,
                    shop="s1",
                    buyer=f"b{n}",
                    total=19_900,
                    created_at=T0 - timedelta(days=2),
                    paid_at=T0 - timedelta(days=2),
                    shipped_at=T0 - timedelta(days=1),
                )
            )
            case_id = in_bucket(f"c{n}", 5, DEFAULT_BUCKETS)
            engine.execute(
                engine.build(
                    "apply",
                    actor=f"buyer:b{n}",
                    target={"order_id": order_id, "case_id": case_id},
                    params={"kind": "refund_only", "reason": "not_received", "amount": 19_900},
                )
            )
            cases.append(case_id)
        sent = counted(monkeypatch)
        later = T0 + timedelta(days=30)
        fired = engine.run_due(later, limit=10)
        assert len(fired) == 5 and {f.status for f in fired} == {"refunded"}
        reads = [" ".join(s.split()) for s in sent if s.lstrip().upper().startswith("SELECT")]
        together = [s for s in reads if s.startswith("SELECT c.id,")]
        one_by_one = [s for s in reads if "FROM cases AS c" in s and s not in together]
        assert one_by_one == [] and len(together) == 1, reads
        assert all(engine.case(c).status.value == "refunded" for c in cases)
    finally:
        db_engine.dispose(sql)
