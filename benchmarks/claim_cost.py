"""The cost of one claim as the number of pending deadlines grows: 10k → 100k → 1M.

For each size a fresh database holds that many orders, each with a pending ``ship_by``
deadline, all of them due (the worst case: a worker that was down for a while). A claim is
one unit of work through the engine's deadline store: ``next_due`` (on PostgreSQL the
``FOR NO KEY UPDATE … SKIP LOCKED`` claim that locks the deadline with its order), the
conditional ``fire`` update, commit. The raw baseline runs the same two statements and the
commit through the bare driver, on the same database, in blocks taking turns with ours.
Flat is the target: the cost at 1M should be the cost at 10k.

    .venv/bin/python benchmarks/claim_cost.py --db sqlite
    .venv/bin/python benchmarks/claim_cost.py --db postgresql --sizes 10000,100000,1000000
"""

from __future__ import annotations

import time
from contextlib import closing
from datetime import UTC, datetime

import _common
import sqlalchemy as sa

from shouhou.db.cursor import dialect as sql_dialect
from shouhou.db.deadlines import DUE_SCAN
from shouhou.db.uow import SqlUnitOfWork

DUE_FROM = datetime(2024, 3, 1, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
#: Claims taken in one block before the other side takes its turn.
BLOCK = 100


def build(db: _common.Database, size: int) -> None:
    """``size`` orders with a pending ship_by deadline each, due one second apart."""
    sql = db.engine()
    pg = db.kind == "postgresql"
    series = (
        "generate_series(1, :n) AS s(n)"
        if pg
        else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :n)"
        " SELECT n FROM s) AS s"
    )
    due = (
        "CAST(:start AS TIMESTAMPTZ) + s.n * INTERVAL '1 second'"
        if pg
        else "strftime('%Y-%m-%d %H:%M:%S', :start, '+' || s.n || ' seconds') || '.000000'"
    )
    start = DUE_FROM if pg else DUE_FROM.strftime("%Y-%m-%d %H:%M:%S")
    moment = "CAST(:start AS TIMESTAMPTZ)" if pg else ":start_text"
    try:
        with sql.begin() as conn:
            _common.number_buckets(conn, size, lambda n: f"o{n}")
            series = f"{series} JOIN _nb AS nb ON nb.n = s.n"
            conn.execute(
                sa.text(
                    "INSERT INTO orders (bucket, id, shop, buyer, status, state, version,"
                    " created_at, updated_at) SELECT nb.bucket, 'o' || s.n, 's1', 'b' || s.n,"
                    f" 'paid', '{{}}', 1, {moment}, {moment} FROM {series}"
                ),
                {"n": size, "start": start, "start_text": f"{start}.000000"},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO deadlines (bucket, subject_type, subject_id, name, due_at,"
                    " on_expiry, rule_id, policy, status) SELECT nb.bucket, 'order', 'o' || s.n,"
                    f" 'ship_by', {due}, 'mark_late', 'tmall-standard/ship_by',"
                    f" 'tmall-standard@1', 'pending' FROM {series}"
                ),
                {"n": size, "start": start},
            )
            conn.execute(sa.text("DROP TABLE _nb"))
    finally:
        sql.dispose()
    _common.analyze(db)


def ours(sql: sa.Engine) -> float:
    """One block of claims through SqlUnitOfWork; seconds per claim."""
    started = time.perf_counter()
    for _ in range(BLOCK):
        with SqlUnitOfWork(sql) as uow:
            due = uow.deadlines.next_due(NOW)
            assert due is not None
            uow.deadlines.fire(due.subject_type, due.subject_id, due.name, due.due_at, NOW)
            uow.commit()
    return (time.perf_counter() - started) / BLOCK


def raw(db: _common.Database, conn: object) -> tuple[float, float]:
    """One block of the same statements through the driver: seconds per claim, per SELECT."""
    dialect = sql_dialect(db.kind, readonly=False)
    claim, fire = dialect.sql["next_due"], dialect.sql["fire"]
    buckets = dialect.sql["due_buckets"]
    cursor = conn.cursor()  # type: ignore[attr-defined]
    now = dialect.moment(NOW)
    selecting = 0.0
    started = time.perf_counter()
    for _ in range(BLOCK):
        if db.kind == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        before = time.perf_counter()
        params = {"now": now, "limit": 1}
        if db.kind == "postgresql":  # as the engine claims there: the bucket first (0021)
            cursor.execute(buckets, {"now": now, "scan": DUE_SCAN})
            params["bucket"] = min(row[0] for row in cursor.fetchall())
        cursor.execute(claim, params)
        _, subject_type, subject_id, name, due_at, bucket = cursor.fetchone()
        selecting += time.perf_counter() - before
        cursor.execute(
            fire,
            {
                "bucket": bucket,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "name": name,
                "due_at": due_at,
                "fired_at": now,
            },
        )
        assert cursor.rowcount == 1
        conn.commit()  # type: ignore[attr-defined]
    return (time.perf_counter() - started) / BLOCK, selecting / BLOCK


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--claims", type=int, default=2000, help="claims per side and size")
    args = parser.parse_args()
    _common.header("cost of one claim as pending grows", args.db)
    costs = {}
    for size in map(int, args.sizes.split(",")):
        with _common.fresh_database(args.db, args.url, "claim") as db:
            started = time.perf_counter()
            build(db, size)
            built = time.perf_counter() - started
            sql = db.engine()
            ours_s = raw_s = select_s = 0.0
            blocks = max(1, args.claims // BLOCK)
            try:
                with closing(db.connect_raw()) as conn:
                    for _ in range(blocks):
                        ours_s += ours(sql)
                        one, selecting = raw(db, conn)
                        raw_s += one
                        select_s += selecting
            finally:
                sql.dispose()
            ours_us, raw_us = ours_s / blocks * 1e6, raw_s / blocks * 1e6
            costs[size] = ours_us
            print(
                f"{size:>9,} pending (built in {built:.0f} s): one claim ours {ours_us:7.0f} µs"
                f"   raw {raw_us:7.0f} µs (its SELECT {select_s / blocks * 1e6:5.0f} µs)"
                f"   ratio {raw_us / ours_us:5.2f}"
            )
    smallest, largest = min(costs), max(costs)
    print(
        f"claim cost at {largest:,} ÷ at {smallest:,} pending: "
        f"{costs[largest] / costs[smallest]:.2f} (1.00 is flat)"
    )


if __name__ == "__main__":
    main()
