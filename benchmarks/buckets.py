"""Deadline firing on PostgreSQL, plain tables against 8 hash partitions by bucket (0021).

For each layout (plain, ``PARTITION BY HASH (bucket)`` in 8 partitions) and each number of
workers (1, 4), a fresh schema gets ``--orders`` orders placed through the library, paid long
ago and never shipped, so each has its ``ship_by`` deadline due. Then that many worker
processes fire everything due (``Engine.run_due``: claims one bucket per statement and per
transaction, walking the buckets from each process's own start). Measured, in the same run
for both layouts:

- firings per second (all fired ÷ the wall time from start to the last worker's end);
- the p99 latency of one claim (``claim_due``, the claiming statements, on the worker's
  connection);
- the largest lag of a bucket's oldest due deadline: how long after the start the first claim
  in that bucket came, the largest over the buckets (every deadline is due at the start).

The ratio partitioned ÷ plain is printed for each figure.

    .venv/bin/python benchmarks/buckets.py --url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db.deadlines import SqlDeadlines
from shouhou.domain.model import Order

PAID = datetime(2024, 3, 1, tzinfo=UTC)
NOW = PAID + timedelta(days=30)


@contextmanager
def schema(server: str, partitions: int) -> Iterator[str]:
    """A fresh schema migrated with ``partitions``; its URL. Dropped afterwards."""
    name = f"bench_buckets_{uuid.uuid4().hex[:8]}"
    admin = db_engine.create(server)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        url = sa.make_url(server).update_query_dict({"options": f"-csearch_path={name}"})
        rendered = url.render_as_string(hide_password=False)
        sql = db_engine.create(rendered)
        db_engine.upgrade(sql, partitions=partitions)
        db_engine.dispose(sql)
        try:
            yield rendered
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        admin.dispose()


def build(url: str, orders: int) -> None:
    engine = Engine.open(url, clock=VirtualClock(PAID), migrate=False)
    try:
        for n in range(orders):
            engine.place_order(
                Order(
                    id=f"o{n:06d}",
                    shop=f"s{n % 50}",
                    buyer=f"b{n}",
                    total=10_000,
                    created_at=PAID,
                    paid_at=PAID,
                )
            )
    finally:
        engine.close()
    sql = db_engine.create(url)
    with sql.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()
    db_engine.dispose(sql)


def work(url: str, start: Any, results: Any) -> None:
    """One worker process: fire everything due; report firings and each claim's timing."""
    claims: list[tuple[float, float, int]] = []  # (wall time at start, seconds, bucket)
    plain = SqlDeadlines.claim_due

    def timed(self: SqlDeadlines, now: datetime, limit: int) -> Any:
        began, t0 = time.time(), time.perf_counter()
        found = plain(self, now, limit)
        elapsed = time.perf_counter() - t0
        if found:
            first = found[0]
            claims.append((began, elapsed, self.homes.of(first.subject_type, first.subject_id)))
        else:
            claims.append((began, elapsed, -1))
        return found

    SqlDeadlines.claim_due = timed  # type: ignore[method-assign]
    engine = Engine.open(url, clock=VirtualClock(NOW), migrate=False)
    fired = 0
    start.wait()
    idle = 0
    while idle < 3:  # a claim finds nothing when the others hold what is left
        done = len(engine.run_due(NOW))
        fired += done
        idle = idle + 1 if done == 0 else 0
    engine.close()
    results.put((fired, claims, time.time()))


def run(url: str, workers: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=work, args=(url, start, results)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # every worker imported and connected
    began = time.time()
    start.set()
    outs = [results.get() for _ in procs]
    for p in procs:
        p.join()
    ended = max(out[2] for out in outs)
    fired = sum(out[0] for out in outs)
    claims = [c for out in outs for c in out[1]]
    durations = sorted(c[1] for c in claims)
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    first: dict[int, float] = {}
    for at, _, bucket in sorted(claims):
        if bucket >= 0:
            first.setdefault(bucket, at - began)
    return {
        "fired": fired,
        "per_s": fired / (ended - began),
        "p99_ms": p99 * 1000,
        "median_ms": statistics.median(durations) * 1000,
        "lag_s": max(first.values()),
        "buckets": len(first),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--workers", default="1,4")
    args = parser.parse_args()
    print(f"firing {args.orders} due deadlines; PostgreSQL, 256 buckets")
    header = "layout        workers  fired  firings/s  p99 claim ms  median ms  max bucket lag s"
    print(header)
    figures: dict[tuple[str, int], dict[str, float]] = {}
    for workers in (int(w) for w in args.workers.split(",")):
        for label, partitions in (("plain", 0), ("8 partitions", 8)):
            with schema(args.url, partitions) as url:
                build(url, args.orders)
                got = figures[(label, workers)] = run(url, workers)
            print(
                f"{label:<13} {workers:>7} {got['fired']:>6.0f} {got['per_s']:>10.0f}"
                f" {got['p99_ms']:>13.2f} {got['median_ms']:>10.2f} {got['lag_s']:>17.2f}"
            )
        plain, parted = figures[("plain", workers)], figures[("8 partitions", workers)]
        print(
            f"  {workers} worker(s), partitioned ÷ plain: firings/s"
            f" {parted['per_s'] / plain['per_s']:.2f}, p99 claim"
            f" {parted['p99_ms'] / plain['p99_ms']:.2f}, max bucket lag"
            f" {parted['lag_s'] / plain['lag_s']:.2f}"
        )


if __name__ == "__main__":
    main()
