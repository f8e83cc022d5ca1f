"""Deadlines fired per second with a million pending, next to the same statements run raw.

The database holds ``--pending`` refund-only cases awaiting the seller, each with its order
and its pending ``seller_respond`` deadline, due one second apart; the first ``--due`` of
them are due. One case is built through the library; the rest are copies of it made by bulk
SQL, with their own ids and due times (in the rows and inside the JSON snapshots). The
engine's ``run_due`` fires the due ones, one unit of work each (claim, load, refund, order
released, events, outbox, commit); the recorded statements are then replayed through the
bare driver on a second database built the same way: the replay. A third and a fourth
database built the same way are fired by the floor (``floor.py``), the smallest
claim-and-fire transaction: one deadline a commit on the third, a batch of 100 a commit on
the fourth. The four take turns, block by block.
Statements per timeout: as in ``transitions.py``.

    .venv/bin/python benchmarks/firing.py --db sqlite
    .venv/bin/python benchmarks/firing.py --db postgresql --pending 1000000 --due 5000
"""

from __future__ import annotations

import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import _common
import floor
import sqlalchemy as sa

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.model import Order

OPENED = datetime(2024, 3, 1, 2, tzinfo=UTC)
#: The template case's deadline; copy n is due n seconds after it.
TEMPLATE_DUE = OPENED + timedelta(days=5)

# Copies of the template: n runs from 1; {series} yields n. Ids are fixed-width so that
# they sort like the numbers.
_SERIES = {
    "postgresql": "generate_series(1, :count) AS s(n)",
    "sqlite": "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :count)"
    " SELECT n FROM s) AS s",
}
_ID = "lpad(CAST(s.n AS TEXT), 8, '0')"
_ID_SQLITE = "substr('0000000' || s.n, -8, 8)"
#: The due time of copy n, as stored in the table and as written inside a JSON snapshot.
_DUE = {
    "postgresql": (
        "(CAST(:due AS TIMESTAMPTZ) + s.n * INTERVAL '1 second')",
        "to_char((CAST(:due AS TIMESTAMPTZ) + s.n * INTERVAL '1 second') AT TIME ZONE 'UTC',"
        ' \'YYYY-MM-DD"T"HH24\\:MI\\:SS"Z"\')',
    ),
    "sqlite": (
        "strftime('%Y-%m-%d %H:%M:%S', :due, '+' || s.n || ' seconds') || '.000000'",
        "strftime('%Y-%m-%dT%H:%M:%SZ', :due, '+' || s.n || ' seconds')",
    ),
}


def _copies(kind: str) -> list[str]:
    """The bulk statements that copy the template order, case, deadline and events."""
    series, (due, due_json) = _SERIES[kind], _DUE[kind]
    ident = _ID if kind == "postgresql" else _ID_SQLITE
    text = "CAST({} AS TEXT)" if kind == "postgresql" else "{}"
    json = "CAST({} AS JSON)" if kind == "postgresql" else "{}"

    def renamed(column: str) -> str:
        out = text.format(column)
        out = f"replace({out}, 'cTEMPLATE', nb.case_id)"  # before oTEMPLATE: no overlap
        for old, new in (("oTEMPLATE", "o"), ("bTEMPLATE", "b")):
            out = f"replace({out}, '{old}', '{new}' || {ident})"
        return out

    # each copy's bucket, and a case id in it (decision 0021)
    series = f"{series} JOIN _nb AS nb ON nb.n = s.n"

    state_with_due = f"replace({renamed('t.state')}, :due_json, '\"' || {due_json} || '\"')"
    return [
        "INSERT INTO orders (bucket, id, shop, buyer, status, state, version, created_at,"
        f" updated_at) SELECT nb.bucket, 'o' || {ident}, t.shop, 'b' || {ident}, t.status,"
        f" {json.format(renamed('t.state'))},"
        f" t.version, t.created_at, t.updated_at FROM orders AS t, {series}"
        " WHERE t.id = 'oTEMPLATE'",
        "INSERT INTO cases (bucket, id, order_id, shop, buyer, kind, status, state, version,"
        f" opened_at, updated_at) SELECT nb.bucket, nb.case_id, 'o' || {ident}, t.shop,"
        f" 'b' || {ident}, t.kind,"
        f" t.status, {json.format(state_with_due)}, t.version, t.opened_at, t.updated_at"
        f" FROM cases AS t, {series} WHERE t.id = 'cTEMPLATE'",
        "INSERT INTO deadlines (bucket, subject_type, subject_id, name, due_at, on_expiry,"
        f" rule_id, policy, status) SELECT nb.bucket, t.subject_type, nb.case_id, t.name,"
        f" {due}, t.on_expiry, t.rule_id, t.policy, t.status FROM deadlines AS t, {series}"
        " WHERE t.subject_id = 'cTEMPLATE' AND t.status = 'pending'",
        # Timelines for the cases that will fire (the others are never read).
        "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data)"
        f" SELECT nb.bucket, t.stream, {renamed('t.stream_id')}, t.seq, t.type, t.at, t.actor,"
        f" {json.format(renamed('t.data'))} FROM events AS t, {series}"
        " WHERE t.stream_id IN ('oTEMPLATE', 'cTEMPLATE') AND s.n <= :due_count",
    ]


_CLEANUP = [
    "DELETE FROM events WHERE stream_id IN ('oTEMPLATE', 'cTEMPLATE')",
    "DELETE FROM routes WHERE id = 'cTEMPLATE'",
    "DELETE FROM deadlines WHERE subject_id IN ('oTEMPLATE', 'cTEMPLATE')",
    "DELETE FROM outbox",
    "DELETE FROM cases WHERE id = 'cTEMPLATE'",
    "DELETE FROM orders WHERE id = 'oTEMPLATE'",
]


def build(db: _common.Database, pending: int, due: int) -> None:
    """``pending`` cases with a pending deadline, the first ``due`` of them due."""
    sql = db.engine()
    clock = VirtualClock(OPENED)
    engine = Engine(lambda: SqlUnitOfWork(sql), clock=clock)
    try:
        engine.place_order(
            Order(
                id="oTEMPLATE",
                shop="s1",
                buyer="bTEMPLATE",
                total=19_900,
                created_at=OPENED - timedelta(days=2),
                paid_at=OPENED - timedelta(days=2),
                shipped_at=OPENED - timedelta(days=1),
            )
        )
        engine.execute(
            engine.build(
                "apply",
                actor="buyer:bTEMPLATE",
                target={"order_id": "oTEMPLATE", "case_id": "cTEMPLATE"},
                params={"kind": "refund_only", "reason": "not_received", "amount": 19_900},
            )
        )
        due_json = f'"{TEMPLATE_DUE.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
        params = {
            "count": pending,
            "due_count": due,
            "due": TEMPLATE_DUE.strftime("%Y-%m-%d %H:%M:%S")
            if db.kind == "sqlite"
            else TEMPLATE_DUE,
            "due_json": due_json,
        }
        with sql.begin() as conn:
            _common.number_buckets(
                conn, pending, lambda n: f"o{n:08d}", lambda n: f"c{n:08d}", matched=due
            )
            for statement in _copies(db.kind):
                conn.execute(sa.text(statement), params)
            for statement in _CLEANUP:
                conn.execute(sa.text(statement))
            conn.execute(sa.text("DROP TABLE _nb"))
    finally:
        sql.dispose()
    _common.analyze(db)


#: Deadlines the floor's batched transaction claims and fires per commit (the engine's
#: batches are sized by time, up to as many).
FLOOR_BATCH = 100


def race(
    ours: _common.Database,
    raw: _common.Database,
    bare: _common.Database,
    batch_db: _common.Database,
    due: int,
) -> tuple[_common.Race, float]:
    """Fire the due deadlines on ``ours`` block by block, each block replayed at once
    through the bare driver on ``raw``, then fired by the floor on ``bare`` one a commit (the
    race's floor) and on ``batch_db`` batched (the second number, seconds). Each floor has a
    database of its own: on one, SQLite's checkpoints, which the commit that fills the WAL
    pays for, fell on the batched commits for pages the other way had written, and the
    batched floor measured slower than one a commit (2026-12-02)."""
    sql = db_engine.create(ours.url)
    now = TEMPLATE_DUE + timedelta(seconds=due)
    engine = Engine(lambda: SqlUnitOfWork(sql), clock=VirtualClock(now))
    result = _common.Race()
    batched = 0.0
    fired: list[str] = []
    try:
        with (
            closing(raw.connect_raw()) as conn,
            closing(bare.connect_raw()) as bare_conn,
            closing(batch_db.connect_raw()) as batch_conn,
        ):
            fire = floor.Firing(bare_conn, bare.kind, floor.firing_event(bare_conn, bare.kind), now)
            fire_batches = floor.Firing(
                batch_conn, bare.kind, floor.firing_event(batch_conn, bare.kind), now
            )
            while len(fired) < due:
                with _common.recording(sql) as rec:
                    started = time.perf_counter()
                    block = engine.run_due(now, limit=_common.BLOCK)
                    seconds = time.perf_counter() - started
                assert block, f"fired {len(fired)}, expected {due}"
                fired += [f.status for f in block]
                replayed = _common.replay(conn, rec)
                result.add(seconds, replayed, rec, fire.run(len(block), 1))
                batched += fire_batches.run(len(block), FLOOR_BATCH)
        assert set(fired) == {"refunded"} and len(fired) == due
    finally:
        sql.dispose()
    return result, batched


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=5_000, help="how many of them are fired")
    args = parser.parse_args()
    _common.header(f"deadlines fired with {args.pending:,} pending", args.db)
    print(f"at the start: {_common.load()}")
    with (
        _common.fresh_database(args.db, args.url, "ours") as ours,
        _common.fresh_database(args.db, args.url, "raw") as raw,
        _common.fresh_database(args.db, args.url, "floor") as bare,
        _common.fresh_database(args.db, args.url, "floor_batched") as batch_db,
    ):
        for db in (ours, raw, bare, batch_db):
            started = time.perf_counter()
            build(db, args.pending, args.due)
            print(f"built {args.pending:,} pending in {time.perf_counter() - started:.0f} s")
        print(f"racing: {_common.load()}")
        result, batched = race(ours, raw, bare, batch_db, args.due)
        label = (
            f"fired ({result.executed_per(args.due):.1f} st, "
            f"{result.calls_per(args.due):.1f} calls)"
        )
        _common.row3(
            f"{label}, floor 1/commit",
            args.due / result.ours,
            args.due / result.raw,
            args.due / result.floor,
        )
        _common.row3(
            f"{label}, floor {FLOOR_BATCH}/commit",
            args.due / result.ours,
            args.due / result.raw,
            args.due / batched,
        )
        print(
            f"{result.transactions} transactions of ours; st: SQL statements run per timeout,"
            " calls: driver calls (an executemany is one), BEGIN and COMMIT left out; the"
            " floor runs 4 a timeout"
        )
    print(f"at the end: {_common.load()}")


if __name__ == "__main__":
    main()
