"""Transitions per second through the service layer, next to the same statements run raw
and next to the floor.

Each of ``--cases`` shipped orders gets a return, step by step: the buyer applies, the seller
agrees, the buyer ships the goods back, the seller confirms receipt (refund). Every step is
one ``Engine.execute`` — one unit of work, one commit. The statements the engine sent are
recorded, then replayed through the bare driver, transaction by transaction, on a copy of
the database as it was before: the replay. The floor (``floor.py``) is the smallest
transaction that makes the same step — read the case, update it with its version check,
insert its event, upsert its deadline — through the bare driver on a third database, with
the snapshots and events the engine writes. The three take turns, block by block.

Statements are those the database ran per transition, ``BEGIN`` and ``COMMIT`` left out
(every one the unit of work sent to its cursor, and every one SQLAlchemy executed, through
its ``before_cursor_execute`` event; an ``executemany`` of n rows counts n).

    .venv/bin/python benchmarks/transitions.py --db sqlite
    .venv/bin/python benchmarks/transitions.py --db postgresql --cases 2000
"""

from __future__ import annotations

import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import _common
import floor
import sqlalchemy as sa

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db import serial, tables
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.buckets import DEFAULT_BUCKETS, bucket_of, in_bucket
from shouhou.domain.model import Order
from shouhou.services.ports import joined

T0 = datetime(2024, 3, 1, 2, tzinfo=UTC)
STEPS = [
    ("apply", "buyer", {"kind": "return_refund", "reason": "wrong_item", "amount": 29_900}),
    ("agree", "seller", {"return_address": "杭州市余杭区文一西路 1 号"}),
    ("ship_return", "buyer", {"carrier": "SF", "waybill": "SF1234567890", "method": "express"}),
    ("confirm_receipt", "seller", {}),
]


def case_id(i: int) -> str:
    """The case id of order ``o`` and ``i``: ``c`` and ``i`` with the hex tail that puts it in
    its order's bucket, as the engine makes case ids (decision 0021), so that it is found
    without a route."""
    return in_bucket(f"c{i:06d}", bucket_of(f"o{i:06d}", DEFAULT_BUCKETS), DEFAULT_BUCKETS)


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
    ours: _common.Database,
    raw: _common.Database,
    bare: floor.Transitions,
    count: int,
    encoders: dict[str, Any] | None = None,
) -> list[tuple[str, _common.Race]]:
    """Each step for every case through the engine on ``ours``, block by block, each block
    replayed at once through the bare driver on ``raw``, then made by the floor's
    transaction on ``bare``. With ``encoders`` (name: ``dump_json``) the blocks take turns
    with them, and each one's blocks are added up in ``encoders``' results too (the step
    named after it)."""
    sql = db_engine.create(ours.url)
    clock = VirtualClock(T0)
    engine = Engine(lambda: SqlUnitOfWork(sql), clock=clock)
    results = []
    by_encoder: dict[str, _common.Race] = {}
    cases = [case_id(i) for i in range(count)]
    try:
        with closing(raw.connect_raw()) as conn:
            for n, (action, role, params) in enumerate(STEPS):
                clock.set(T0 + timedelta(hours=n + 1))
                commands = [
                    engine.build(
                        action,
                        actor=f"buyer:b{i}" if role == "buyer" else f"seller:s{i % 50}",
                        target={"order_id": f"o{i:06d}", "case_id": cases[i]}
                        if action == "apply"
                        else {"case_id": cases[i]},
                        params=params,
                    )
                    for i in range(count)
                ]
                result = _common.Race()
                for start in range(0, count, _common.BLOCK):
                    encoder = None
                    if encoders:
                        names = sorted(encoders)
                        encoder = names[(start // _common.BLOCK + n) % len(names)]
                        serial.dump_json = encoders[encoder]
                    with _common.recording(sql) as rec:
                        started = time.perf_counter()
                        for cmd in commands[start : start + _common.BLOCK]:
                            engine.execute(cmd)
                        seconds = time.perf_counter() - started
                    replayed = _common.replay(conn, rec)
                    stop = start + _common.BLOCK
                    floor_seconds = bare.run(n, start, min(stop, count))
                    result.add(seconds, replayed, rec, floor_seconds)
                    if encoder is not None:
                        by_encoder.setdefault(encoder, _common.Race()).add(
                            seconds, replayed, rec, floor_seconds
                        )
                results.append((action, result))
            results += sorted(by_encoder.items())
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


def show(db: _common.Database) -> None:
    """Take one more case through the steps and print what the engine sent for each."""
    sql = db.engine()
    clock = VirtualClock(T0)
    engine = Engine(lambda: SqlUnitOfWork(sql), clock=clock)
    try:
        engine.place_order(
            Order(
                id="o999999",
                shop="s1",
                buyer="b999999",
                total=29_900,
                created_at=T0 - timedelta(days=3),
                paid_at=T0 - timedelta(days=3),
                shipped_at=T0 - timedelta(days=2),
                delivered_at=T0 - timedelta(days=1),
            )
        )
        for n, (action, role, params) in enumerate(STEPS):
            clock.set(T0 + timedelta(hours=n + 1))
            with _common.recording(sql) as rec:
                engine.execute(
                    engine.build(
                        action,
                        actor="buyer:b999999" if role == "buyer" else "seller:s1",
                        target={"order_id": "o999999", "case_id": case_id(999999)}
                        if action == "apply"
                        else {"case_id": case_id(999999)},
                        params=params,
                    )
                )
            print(f"-- {action}")
            for transaction in rec.transactions:
                for text, params_sent, many in transaction:
                    rows = f" × {len(params_sent)} rows" if many else ""
                    print(f"   {' '.join(text.split())[:150]}{rows}")
    finally:
        db_engine.dispose(sql)


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases, each taken 4 steps")
    parser.add_argument(
        "--show", action="store_true", help="print the statements of one more case's steps"
    )
    parser.add_argument(
        "--encoder",
        choices=["orjson", "pydantic-core", "alternate"],
        default="orjson",
        help="the storage layer's JSON encoder (pydantic-core: the one before orjson;"
        " alternate: the blocks take turns with the two, each added up apart)",
    )
    args = parser.parse_args()
    turns = None
    if args.encoder != "orjson":
        import encoders

        turns = {"orjson": serial.dump_json, "pydantic-core": encoders.pydantic_core}
        if args.encoder == "pydantic-core":
            serial.dump_json = encoders.pydantic_core  # type: ignore[assignment]
            turns = None
    _common.header(f"transitions through the service layer, {args.encoder}", args.db)
    print(f"at the start: {_common.load()}")
    with (
        _common.fresh_database(args.db, args.url, "ours") as ours,
        _common.fresh_database(args.db, args.url, "raw") as raw,
        _common.fresh_database(args.db, args.url, "floor") as bare_db,
    ):
        place_orders(ours, args.cases)
        place_orders(raw, args.cases)
        steps = floor.template_steps(bare_db)
        with closing(bare_db.connect_raw()) as bare_conn:
            floor.insert_cases(bare_conn, args.db, floor.case_ids(args.cases), steps[0].state)
            _common.analyze(bare_db)
            bare = floor.Transitions(bare_conn, args.db, steps, floor.case_ids(args.cases))
            results = race(ours, raw, bare, args.cases, turns)
        total = _common.Race()
        for action, result in results[: len(STEPS)]:
            total.ours += result.ours
            total.raw += result.raw
            total.floor += result.floor
            total.executed += result.executed
            total.statements += result.statements
            total.transactions += result.transactions
            total.begins = result.begins
            _common.row3(
                f"{action} ({result.executed_per(args.cases):.1f} st, "
                f"{result.calls_per(args.cases):.1f} calls)",
                args.cases / result.ours,
                args.cases / result.raw,
                args.cases / result.floor,
            )
        transitions = args.cases * len(STEPS)
        _common.row3(
            f"all ({total.executed_per(transitions):.2f} st, "
            f"{total.calls_per(transitions):.2f} calls)",
            transitions / total.ours,
            transitions / total.raw,
            transitions / total.floor,
        )
        for name, result in results[len(STEPS) :]:
            done = result.transactions
            _common.row3(
                f"{name} blocks ({done} transitions)",
                done / result.ours,
                done / result.raw,
                done / result.floor,
            )
        if args.show:
            show(ours)
    print(
        f"{args.cases} cases × {len(STEPS)} transitions, one commit each; st: SQL statements"
        " run per transition, calls: driver calls (an executemany is one), BEGIN and COMMIT"
        " left out; the floor runs 4 a transition (3 for the last step, which has no deadline)"
    )

    print(f"at the end: {_common.load()}")


if __name__ == "__main__":
    main()
