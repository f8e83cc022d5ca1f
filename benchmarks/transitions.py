"""Transitions per second through the service layer, next to the same statements run raw.

Each of ``--cases`` shipped orders gets a return, step by step: the buyer applies, the seller
agrees, the buyer ships the goods back, the seller confirms receipt (refund). Every step is
one ``Engine.execute`` — one unit of work, one commit. The statements the engine sent are
recorded, then replayed through the bare driver, transaction by transaction, on a copy of
the database as it was before: the raw baseline.

    .venv/bin/python benchmarks/transitions.py --db sqlite
    .venv/bin/python benchmarks/transitions.py --db postgresql --cases 2000
"""

from __future__ import annotations

import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import _common
import sqlalchemy as sa

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db import tables
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.model import Order
from shouhou.services.ports import joined

T0 = datetime(2024, 3, 1, 2, tzinfo=UTC)
STEPS = [
    ("apply", "buyer", {"kind": "return_refund", "reason": "wrong_item", "amount": 29_900}),
    ("agree", "seller", {"return_address": "杭州市余杭区文一西路 1 号"}),
    ("ship_return", "buyer", {"carrier": "SF", "waybill": "SF1234567890", "method": "express"}),
    ("confirm_receipt", "seller", {}),
]


def place_orders(db: _common.Database, count: int) -> None:
    """``count`` delivered orders, built through the library in one transaction."""
    sql = db.engine()
    try:
        with SqlUnitOfWork(sql) as uow:
            engine = Engine(lambda: joined(uow), clock=VirtualClock(T0))
            for i in range(count):
                engine.place_order(
                    Order(
                        id=f"o{i:06d}",
                        shop=f"s{i % 50}",
                        buyer=f"b{i}",
                        total=29_900,
                        created_at=T0 - timedelta(days=3),
                        paid_at=T0 - timedelta(days=3),
                        shipped_at=T0 - timedelta(days=2),
                        delivered_at=T0 - timedelta(days=1),
                    )
                )
            uow.commit()
    finally:
        sql.dispose()
    _common.mark_outbox_delivered(db)
    _common.analyze(db)


def race(
    ours: _common.Database, raw: _common.Database, count: int
) -> list[tuple[str, _common.Race]]:
    """Each step for every case through the engine on ``ours``, block by block, each block
    replayed at once through the bare driver on ``raw``."""
    sql = db_engine.create(ours.url)
    clock = VirtualClock(T0)
    engine = Engine(lambda: SqlUnitOfWork(sql), clock=clock)
    results = []
    try:
        with closing(raw.connect_raw()) as conn:
            for n, (action, role, params) in enumerate(STEPS):
                clock.set(T0 + timedelta(hours=n + 1))
                commands = [
                    engine.build(
                        action,
                        actor=f"buyer:b{i}" if role == "buyer" else f"seller:s{i % 50}",
                        target={"order_id": f"o{i:06d}", "case_id": f"c{i:06d}"}
                        if action == "apply"
                        else {"case_id": f"c{i:06d}"},
                        params=params,
                    )
                    for i in range(count)
                ]
                result = _common.Race()
                for start in range(0, count, _common.BLOCK):
                    with _common.recording(sql) as rec:
                        started = time.perf_counter()
                        for cmd in commands[start : start + _common.BLOCK]:
                            engine.execute(cmd)
                        seconds = time.perf_counter() - started
                    result.add(seconds, _common.replay(conn, rec), rec)
                results.append((action, result))
        with sql.connect() as check:
            refunded = check.execute(
                sa.select(sa.func.count())
                .select_from(tables.cases)
                .where(tables.cases.c.status == "refunded")
            ).scalar_one()
        assert refunded == count, f"only {refunded} of {count} cases were refunded"
    finally:
        sql.dispose()
    return results


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases, each taken 4 steps")
    args = parser.parse_args()
    _common.header("transitions through the service layer", args.db)
    with (
        _common.fresh_database(args.db, args.url, "ours") as ours,
        _common.fresh_database(args.db, args.url, "raw") as raw,
    ):
        place_orders(ours, args.cases)
        place_orders(raw, args.cases)
        total = _common.Race()
        for action, result in race(ours, raw, args.cases):
            total.ours += result.ours
            total.raw += result.raw
            _common.row(
                f"{action} ({result.per_transaction():.1f} statements)",
                args.cases / result.ours,
                args.cases / result.raw,
            )
        steps = args.cases * len(STEPS)
        _common.row("all transitions", steps / total.ours, steps / total.raw)
    print(f"{args.cases} cases × {len(STEPS)} transitions, one commit each")


if __name__ == "__main__":
    main()
