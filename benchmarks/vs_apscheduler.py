"""The same one-off deadlines through shouhou's deadline store and through APScheduler 3.

Both schedule ``--jobs`` deadlines, one transaction each (as an application does when each
comes from its own change), all already due, then fire every one exactly once, calling the
same trivial job. shouhou: ``DeadlineStore.sync`` in a unit of work to schedule; the loop of
the worker to fire: ``claim_due`` takes a batch (``SKIP LOCKED`` with the orders' locks on
PostgreSQL; sized by ``BatchSize`` as ``run_due`` sizes it), then the conditional ``fire`` of
each, one commit per batch. APScheduler 3:
``add_job`` with a ``date`` trigger into its ``SQLAlchemyJobStore``, then a
``BackgroundScheduler`` (thread pool) runs them (misfire grace unlimited, so none is
skipped). Both run on the same database settings
(SQLite in WAL mode, or PostgreSQL), each in a fresh database; ``--aps-engine default`` gives
APScheduler SQLAlchemy's defaults instead (on SQLite: no WAL). Needs the ``bench`` extra.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/vs_apscheduler.py --db sqlite
    .venv/bin/python benchmarks/vs_apscheduler.py --db postgresql --jobs 100000
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import _common
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from shouhou.db.cursor import dialect as sql_dialect
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.buckets import bucket_of
from shouhou.domain.model import Deadline
from shouhou.services.deadlines import BatchSize

DUE_FROM = datetime(2024, 3, 1, tzinfo=UTC)


class Counter:
    """The job both run: count, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def __call__(self, n: int) -> None:
        with self.lock:
            self.count += 1


COUNTER = Counter()


def job(n: int) -> None:
    COUNTER(n)


def due_at(n: int) -> datetime:
    return DUE_FROM + timedelta(milliseconds=n)


def shouhou_run(db: _common.Database, jobs: int) -> tuple[float, float]:
    """Seconds to schedule and to fire ``jobs`` deadlines with the engine's deadline store."""
    sql = db.engine()
    try:
        with sql.begin() as conn:  # the orders the deadlines belong to (not timed)
            conn.execute(
                sa.text(
                    "INSERT INTO orders (bucket, id, shop, buyer, status, state, version,"
                    " created_at, updated_at) VALUES (:bucket, 'o' || :n, 's1', 'b', 'paid',"
                    " '{}', 1, :at, :at)"
                ),
                [
                    {"bucket": bucket_of(f"o{n}"), "n": n, "at": _at(db, DUE_FROM)}
                    for n in range(jobs)
                ],
            )
        started = time.perf_counter()
        for n in range(jobs):
            with SqlUnitOfWork(sql) as uow:
                uow.deadlines.sync("order", f"o{n}", _deadline(n))
                uow.commit()
        scheduled = time.perf_counter()
        _common.analyze(db)  # not timed: as autovacuum would after a burst, both sides
        COUNTER.count = 0
        now = datetime.now(UTC)
        firing = time.perf_counter()
        sizing = BatchSize()
        while True:  # the worker's loop: a batch claimed at once, sized as run_due sizes it
            size, began = sizing.size, time.perf_counter()
            with SqlUnitOfWork(sql) as uow:
                claimed = uow.deadlines.claim_due(now, size)
                for due in claimed:
                    uow.deadlines.fire(due.subject_type, due.subject_id, due.name, due.due_at, now)
                    job(int(due.subject_id[1:]))
                uow.commit()
            sizing.took(len(claimed), time.perf_counter() - began)
            if not claimed:  # a claim takes one bucket's (0021): only none says none is left
                break
        fired = time.perf_counter()
        assert COUNTER.count == jobs, COUNTER.count
    finally:
        sql.dispose()
    return scheduled - started, fired - firing


def floor_run(db: _common.Database, jobs: int) -> float:
    """Seconds for the bare driver to insert ``jobs`` deadline rows, one commit each: the
    least any scheduler that commits each deadline must pay on this database."""
    dialect = sql_dialect(db.kind, readonly=False)
    conn = db.connect_raw()
    try:
        cursor = conn.cursor()
        started = time.perf_counter()
        for n in range(jobs):
            deadline = _deadline(n)
            if db.kind == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(
                dialect.sql["schedule"],
                {
                    "bucket": bucket_of(f"o{n}"),
                    "subject_type": "order",
                    "subject_id": f"o{n}",
                    "name": deadline.name,
                    "due_at": dialect.moment(deadline.due_at),
                    "on_expiry": deadline.on_expiry,
                    "rule_id": deadline.rule_id,
                    "policy": deadline.policy,
                },
            )
            conn.commit()
        return time.perf_counter() - started
    finally:
        conn.close()


def _at(db: _common.Database, moment: datetime) -> object:
    return moment if db.kind == "postgresql" else moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _deadline(n: int) -> Deadline:
    return Deadline(
        name="ship_by",
        due_at=due_at(n),
        on_expiry="mark_late",
        rule_id="tmall-standard/ship_by",
        policy="tmall-standard@1",
        started_at=due_at(n) - timedelta(hours=72),
        duration=timedelta(hours=72),
    )


def apscheduler_run(db: _common.Database, jobs: int, engine: str) -> tuple[float, float]:
    """Seconds for APScheduler 3 to add and to run ``jobs`` one-off jobs, on shouhou's
    database settings (``same``) or on SQLAlchemy's defaults (``default``: on SQLite, the
    rollback journal instead of WAL)."""
    if engine == "same":
        sql = db.engine()
    else:
        url = sa.make_url(db.url)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        sql = sa.create_engine(url)
    done = threading.Event()
    COUNTER.count = 0

    failures: list[JobEvent] = []

    def listener(event: JobEvent) -> None:
        if event.code != EVENT_JOB_EXECUTED:
            failures.append(event)
        if COUNTER.count >= jobs or failures:
            done.set()

    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=sql)},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone=UTC,
    )
    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    try:
        scheduler.start(paused=True)
        started = time.perf_counter()
        for n in range(jobs):
            scheduler.add_job(job, "date", run_date=due_at(n), args=[n], id=f"j{n}")
        scheduled = time.perf_counter()
        _common.analyze(db)
        firing = time.perf_counter()
        scheduler.resume()
        if not done.wait(timeout=24 * 3600):
            raise SystemExit("APScheduler did not finish")
        fired = time.perf_counter()
        if failures:
            raise SystemExit(f"APScheduler did not run every job: {failures[:3]}")
    finally:
        scheduler.shutdown()
        sql.dispose()
    assert COUNTER.count == jobs, COUNTER.count
    return scheduled - started, fired - firing


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument(
        "--aps-engine",
        choices=["same", "default"],
        default="same",
        help="APScheduler on shouhou's database settings, or on SQLAlchemy's defaults",
    )
    args = parser.parse_args()
    title = f"{args.jobs:,} one-off deadlines: shouhou vs APScheduler 3 ({args.aps_engine} engine)"
    _common.header(title, args.db)
    with _common.fresh_database(args.db, args.url, "ours") as ours:
        ours_schedule, ours_fire = shouhou_run(ours, args.jobs)
    with _common.fresh_database(args.db, args.url, "aps") as aps:
        aps_schedule, aps_fire = apscheduler_run(aps, args.jobs, args.aps_engine)
    with _common.fresh_database(args.db, args.url, "floor") as floor:
        floor_schedule = floor_run(floor, args.jobs)
    n = args.jobs
    for label, mine, theirs in (
        ("schedule (one transaction each)", ours_schedule, aps_schedule),
        ("fire (exactly once each)", ours_fire, aps_fire),
        ("schedule + fire", ours_schedule + ours_fire, aps_schedule + aps_fire),
    ):
        print(
            f"{label:<34} shouhou {n / mine:>8.0f}/s   APScheduler {n / theirs:>8.0f}/s"
            f"   shouhou ÷ APScheduler {theirs / mine:6.2f}"
        )
    floor = n / floor_schedule
    tenfold = 10 * n / aps_schedule
    print(
        f"{'floor: bare INSERT + COMMIT each':<34} driver  {floor:>8.0f}/s"
        f"   10× APScheduler's scheduling would be {tenfold:.0f}/s"
        f" ({'above' if tenfold > floor else 'below'} the floor)"
    )


if __name__ == "__main__":
    main()
