"""Many processes on one database: every deadline fires exactly once, no refund is paid twice,
and of two actions racing on one case one wins while the other is refused, never both.

Each test runs on SQLite and on PostgreSQL (``$SHOUHOU_TEST_POSTGRES_URL``, default
``postgresql://127.0.0.1:5432/test``, each test in a schema of its own). The database holds
thousands of cases built through the library: a part whose ``seller_respond`` deadline is
long past (the workers fire them) and a part that is still running (writers act on them).
Four ``shouhou worker --once`` processes (the database chosen by ``SHOUHOU_DATABASE_URL``)
and several writer processes (this file run as a script: buyers and sellers acting on random
cases through the library) run at once; one variant SIGKILLs workers at random moments
(seeded) and starts them again.

What must hold afterwards, read from the tables: each fired deadline row has exactly one
``DeadlineFired`` event and each such event its fired row; nothing due is left pending; no
case was refunded twice and no order refunded more than it was paid; every action a writer
saw succeed is in the timeline exactly once, and every action it saw refused left nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db import tables
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.model import Item, Order
from shouhou.errors import ActionRefused, Conflict, NotAllowed
from shouhou.services.ports import joined

POSTGRES_URL = os.environ.get("SHOUHOU_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
#: Cases whose seller_respond deadline is long past when the test runs: the workers' work.
DUE_CASES = 1000
#: Cases opened an hour ago whose deadlines are days away: the writers' playground.
LIVE_CASES = 1000
WORKERS = 4
WRITERS = 2
#: Actions each writer tries, on cases picked at random from both groups.
ACTIONS_PER_WRITER = 150
#: Shops the orders belong to; a writer acts as the case's own seller or buyer.
SHOPS = 7
SEED = 20240307
#: Safety net so a hung process fails the test instead of hanging it, in seconds.
PROCESS_TIMEOUT_S = 120
#: Times the kill variant SIGKILLs some of the running workers (and starts them again).
KILL_ROUNDS = 2
#: Pause between two looks at the database while workers run, in seconds.
POLL_S = 0.01
#: How long a test lets the second party run into the first one's lock, in seconds.
CONTEND_S = 0.3

pytestmark = pytest.mark.slow


# --- databases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    backend: str
    url: str


def _unavailable(reason: str) -> None:
    """Skip with the reason on a developer's machine; in CI a missing server is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
    pytest.skip(reason)


def _in_schema(schema: str) -> str:
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def _postgres_admin() -> Iterator[sa.Engine]:
    admin = db_engine.create(POSTGRES_URL)
    try:
        try:
            with admin.connect():
                pass
        except sa.exc.OperationalError as exc:
            _unavailable(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc.orig}")
        yield admin
    finally:
        admin.dispose()


@contextmanager
def _postgres_schema(admin: sa.Engine, prefix: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards: runs never collide."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def _copy_schema(admin: sa.Engine, source: str, target: str, partitions: int = 0) -> None:
    """Every row of ``source`` into ``target`` (migrated alike), sequences moved on."""
    sql = db_engine.create(_in_schema(target))
    try:
        db_engine.upgrade(sql, partitions=partitions)
    finally:
        sql.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DELETE FROM "{target}".feeds'))  # the source's come instead
        for table in tables.metadata.sorted_tables:
            if table is tables.meta:
                continue
            conn.execute(
                sa.text(
                    f'INSERT INTO "{target}".{table.name} SELECT * FROM "{source}".{table.name}'
                )
            )
            if "id" in table.c and table.c.id.autoincrement is True:
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('\"{target}\".{table.name}', 'id'),"
                        f' coalesce((SELECT max(id) FROM "{target}".{table.name}), 0) + 1, false)'
                    )
                )


# --- the marketplace, built through the library ------------------------------------------


def shop(i: int) -> str:
    return f"s{i % SHOPS}"


def total(i: int) -> int:
    return 10_000 + i


def kind(i: int) -> str:
    """Every third case is a return, whose timeout agrees instead of refunding."""
    return "return_refund" if i % 3 == 0 else "refund_only"


def _open_cases(engine: Engine, clock: VirtualClock, numbers: range, opened_at: datetime) -> None:
    clock.set(opened_at)
    for i in numbers:
        engine.place_order(
            Order(
                id=f"o{i:05d}",
                shop=shop(i),
                buyer=f"b{i}",
                total=total(i),
                created_at=opened_at - timedelta(days=2),
                paid_at=opened_at - timedelta(days=2),
                shipped_at=opened_at - timedelta(days=1),
            )
        )
        apply = engine.build(
            "apply",
            actor=f"buyer:b{i}",
            target={"order_id": f"o{i:05d}", "case_id": f"c{i:05d}"},
            params={"kind": kind(i), "reason": "quality", "amount": total(i)},
        )
        engine.execute(apply)


def build_marketplace(url: str, now: datetime) -> None:
    """DUE_CASES cases opened ten days before ``now``, then LIVE_CASES opened an hour before."""
    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql)
        with SqlUnitOfWork(sql) as uow:
            clock = VirtualClock(now - timedelta(days=10))
            engine = Engine(lambda: joined(uow), clock=clock)
            _open_cases(engine, clock, range(DUE_CASES), now - timedelta(days=10))
            live = range(DUE_CASES, DUE_CASES + LIVE_CASES)
            _open_cases(engine, clock, live, now - timedelta(hours=1))
            outbox = tables.outbox  # what happened before the test was delivered long ago
            uow.conn.execute(sa.update(outbox).values(dispatched_at=now - timedelta(hours=1)))
            uow.commit()
    finally:
        sql.dispose()


@dataclass(frozen=True)
class Template:
    """The marketplace built once per backend, copied for each test that changes it."""

    backend: str
    now: datetime
    copy: Callable[[Path], Iterator[Database]]


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    """The marketplace, built once through the library in a SQLite file."""
    now = datetime.now(UTC)
    path = tmp_path_factory.mktemp("concurrency") / "template.db"
    build_marketplace(f"sqlite:///{path}", now)
    return path, now


def _copy_rows(source: str, target: str, partitions: int = 0) -> None:
    """Every row of every table from one database to another (migrated alike; the meta
    table's rows are the target's own)."""
    reader, writer = db_engine.create(source), db_engine.create(target)
    try:
        db_engine.upgrade(writer, partitions=partitions)
        with reader.connect() as src, writer.begin() as dst:
            dst.execute(sa.delete(tables.feeds))  # the source's feed rows come instead
            for table in tables.metadata.sorted_tables:
                if table is tables.meta:
                    continue
                rows = [dict(row) for row in src.execute(sa.select(table)).mappings()]
                if not rows:
                    continue
                dst.execute(sa.insert(table), rows)
                serial = "id" in table.c and table.c.id.autoincrement is True
                if dst.dialect.name == "postgresql" and serial:
                    dst.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                            f" (SELECT max(id) FROM {table.name}))"
                        )
                    )
    finally:
        reader.dispose()
        writer.dispose()


#: PostgreSQL with every bucketed table ``PARTITION BY HASH (bucket)`` (0021).
PARTITIONS = 8


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "partitioned"])
def template(
    request: pytest.FixtureRequest, sqlite_template: tuple[Path, datetime]
) -> Iterator[Template]:
    source, now = sqlite_template
    if request.param == "sqlite":

        def copy_file(tmp_path: Path) -> Iterator[Database]:
            path = tmp_path / "shop.db"
            with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(path)) as dst:
                src.backup(dst)
            yield Database("sqlite", f"sqlite:///{path}")

        yield Template("sqlite", now, copy_file)
        return
    partitions = PARTITIONS if request.param == "partitioned" else 0
    with _postgres_admin() as admin, _postgres_schema(admin, "concurrency_tpl") as schema:
        _copy_rows(f"sqlite:///{source}", _in_schema(schema), partitions)

        def copy_schema(tmp_path: Path) -> Iterator[Database]:
            with _postgres_schema(admin, "concurrency") as target:
                _copy_schema(admin, schema, target, partitions)
                yield Database("postgresql", _in_schema(target))

        yield Template("postgresql", now, copy_schema)


@pytest.fixture
def marketplace(template: Template, tmp_path: Path) -> Iterator[Database]:
    yield from template.copy(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp_path / 'shop.db'}")
        return
    with _postgres_admin() as admin, _postgres_schema(admin, "concurrency") as schema:
        yield Database("postgresql", _in_schema(schema))


# --- writer processes: this file run as a script -----------------------------------------

#: What each writer action leaves in the case's timeline when it succeeds.
EVENT_OF = {"agree": "Agreed", "refuse": "Refused", "withdraw": "Withdrawn", "modify": "Modified"}
PARAMS: dict[str, dict[str, Any]] = {
    "agree": {"return_address": "杭州市余杭区 退货仓"},
    "refuse": {"reason": "the goods were used"},
    "withdraw": {},
}


def _writer(url: str, seed: int, out: Path) -> None:
    """Try ACTIONS_PER_WRITER random actions; write one JSON line per outcome."""
    rng = random.Random(seed)
    engine = Engine.open(url, migrate=False)
    try:
        with out.open("w") as log:
            for _ in range(ACTIONS_PER_WRITER):
                i = rng.randrange(DUE_CASES + LIVE_CASES)
                action = rng.choice(list(EVENT_OF))
                seller = action in ("agree", "refuse")
                cmd = engine.build(
                    action,
                    actor=f"seller:{shop(i)}" if seller else f"buyer:b{i}",
                    target={"case_id": f"c{i:05d}"},
                    params=PARAMS.get(action, {"amount": total(i) - 100}),
                )
                try:
                    engine.execute(cmd)
                    outcome = "ok"
                except ActionRefused as exc:
                    outcome = exc.code
                line = {"case": f"c{i:05d}", "action": action, "outcome": outcome}
                log.write(json.dumps(line) + "\n")
    finally:
        engine.close()


def start_writer(url: str, seed: int, out: Path) -> subprocess.Popen[bytes]:
    with out.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, __file__, "writer", url, str(seed), str(out)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    """``shouhou worker --once`` on the database named the production way."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "shouhou", "worker", "--once"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SHOUHOU_DATABASE_URL": url},
        )


def _wait(process: subprocess.Popen[bytes], what: str, log: Path) -> int:
    try:
        return process.wait(timeout=PROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{what} hung\n{log.read_text() if log.exists() else ''}")


# --- reading what happened ---------------------------------------------------------------


@contextmanager
def reading(url: str) -> Iterator[sa.Connection]:
    sql = db_engine.create(url)
    try:
        with sql.connect() as conn:  # read-only: on SQLite, no write lock while it looks
            yield conn.execution_options(shouhou_readonly=True)
    finally:
        sql.dispose()


def fired_count(conn: sa.Connection) -> int:
    d = tables.deadlines
    query = sa.select(sa.func.count()).select_from(d).where(d.c.status == "fired")
    count = conn.execute(query).scalar_one()
    conn.rollback()  # a fresh snapshot for the next look
    return int(count)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def assert_each_deadline_fired_exactly_once(conn: sa.Connection, now: datetime) -> int:
    """Fired rows and DeadlineFired events match one to one; nothing due is still pending."""
    d, e = tables.deadlines, tables.events
    rows = conn.execute(
        sa.select(d.c.subject_type, d.c.subject_id, d.c.name, d.c.due_at).where(
            d.c.status == "fired"
        )
    ).all()
    fired_rows = Counter((r.subject_type, r.subject_id, r.name, r.due_at) for r in rows)
    events = conn.execute(
        sa.select(e.c.stream, e.c.stream_id, e.c.data).where(e.c.type == "DeadlineFired")
    ).all()
    fired_events = Counter(
        (r.stream, r.stream_id, r.data["name"], _moment(r.data["due_at"])) for r in events
    )
    assert [k for k, n in fired_rows.items() if n > 1] == []
    assert [k for k, n in fired_events.items() if n > 1] == []
    assert set(fired_events) == set(fired_rows)
    overdue = conn.execute(
        sa.select(d.c.subject_type, d.c.subject_id, d.c.name).where(
            d.c.status == "pending", d.c.due_at <= now
        )
    ).all()
    assert overdue == []
    return len(fired_rows)


def assert_no_refund_paid_twice(conn: sa.Connection) -> None:
    c, o, e = tables.cases, tables.orders, tables.events
    refunds = conn.execute(
        sa.select(e.c.stream_id, e.c.data).where(e.c.stream == "case", e.c.type == "Refunded")
    ).all()
    per_case = Counter(r.stream_id for r in refunds)
    assert [case for case, n in per_case.items() if n > 1] == []
    refunded = {r.stream_id: r.data["amount"] for r in refunds}
    cases = conn.execute(sa.select(c.c.id, c.c.order_id, c.c.status, c.c.state)).all()
    for case in cases:
        assert case.status == case.state["status"], case.id
        assert (case.status == "refunded") == (case.id in refunded), case.id
        if case.id in refunded:
            assert case.state["refund_amount"] == refunded[case.id], case.id
    order_of = {case.id: case.order_id for case in cases}
    paid_back: Counter[str] = Counter()
    for case_id, amount in refunded.items():
        paid_back[order_of[case_id]] += amount
    for order in conn.execute(sa.select(o.c.id, o.c.state)).all():
        assert order.state["refunded"] == paid_back[order.id], order.id
        assert order.state["refunded"] <= order.state["total"], order.id


def assert_writers_lost_nothing(conn: sa.Connection, logs: list[Path]) -> Counter[str]:
    """Each success is in the timeline once; a refusal left nothing. Outcomes by code."""
    outcomes: Counter[str] = Counter()
    succeeded: Counter[tuple[str, str]] = Counter()
    for log in logs:
        for line in log.read_text().splitlines():
            one = json.loads(line)
            outcomes[one["outcome"]] += 1
            if one["outcome"] == "ok":
                succeeded[(one["case"], EVENT_OF[one["action"]])] += 1
    e = tables.events
    rows = conn.execute(
        sa.select(e.c.stream_id, e.c.type).where(
            e.c.stream == "case", e.c.type.in_(EVENT_OF.values()), e.c.actor != "system"
        )
    ).all()
    assert Counter((r.stream_id, r.type) for r in rows) == succeeded
    assert set(outcomes) <= {"ok", "conflict", "not_allowed", "not_eligible"}, outcomes
    assert sum(outcomes.values()) == WRITERS * ACTIONS_PER_WRITER
    return outcomes


def finish_and_check(db: Database, logs: list[Path]) -> None:
    """A last worker pass in this process, then every promise checked."""
    engine = Engine.open(db.url, migrate=False)
    try:
        engine.run_due()
    finally:
        engine.close()
    with reading(db.url) as conn:
        fired = assert_each_deadline_fired_exactly_once(conn, datetime.now(UTC))
        assert_no_refund_paid_twice(conn)
        outcomes = assert_writers_lost_nothing(conn, logs)
    assert fired >= DUE_CASES
    assert outcomes["ok"] > 0


# --- many processes ----------------------------------------------------------------------


def _start_writers(
    db: Database, tmp_path: Path
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    logs = [tmp_path / f"writer{n}.jsonl" for n in range(WRITERS)]
    return [start_writer(db.url, SEED + n, log) for n, log in enumerate(logs)], logs


def _join_writers(writers: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    for writer, out in zip(writers, logs, strict=True):
        err = out.with_suffix(".err")
        assert _wait(writer, "a writer", err) == 0, err.read_text()


def test_four_workers_and_concurrent_writers_fire_each_deadline_exactly_once(
    marketplace: Database, tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    writers, logs = _start_writers(marketplace, tmp_path)
    workers = [start_worker(marketplace.url, log) for _ in range(WORKERS)]

    for worker in workers:
        assert _wait(worker, "a worker", log) == 0, log.read_text()
    _join_writers(writers, logs)

    finish_and_check(marketplace, logs)


def test_workers_killed_at_random_moments_and_restarted_still_fire_each_deadline_once(
    marketplace: Database, tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    rng = random.Random(SEED)
    writers, logs = _start_writers(marketplace, tmp_path)
    workers = [start_worker(marketplace.url, log) for _ in range(WORKERS)]
    kills = 0
    with reading(marketplace.url) as conn:
        for _ in range(KILL_ROUNDS):
            target = fired_count(conn) + rng.randint(50, 300)
            give_up = time.monotonic() + PROCESS_TIMEOUT_S
            while fired_count(conn) < target and time.monotonic() < give_up:
                if all(w.poll() is not None for w in workers):
                    break
                time.sleep(POLL_S)
            time.sleep(rng.uniform(0, 0.05))
            for n in rng.sample(range(WORKERS), rng.randint(1, WORKERS // 2)):
                if workers[n].poll() is None:
                    workers[n].send_signal(signal.SIGKILL)
                    workers[n].wait()
                    kills += 1
                workers[n] = start_worker(marketplace.url, log)

    for worker in workers:
        assert _wait(worker, "a worker", log) == 0, log.read_text()
    _join_writers(writers, logs)

    assert kills > 0, "no worker was still running when the kills came; the test proved nothing"
    finish_and_check(marketplace, logs)


# --- two parties racing on one case ------------------------------------------------------


class HeldCommit(SqlUnitOfWork):
    """A unit of work that, when told to commit, waits until the test lets it."""

    reached: threading.Event
    release: threading.Event

    def commit(self) -> None:
        self.reached.set()
        assert self.release.wait(PROCESS_TIMEOUT_S)
        super().commit()


def _held(engine: Engine) -> tuple[Engine, threading.Event, threading.Event]:
    """An engine on the same database whose commits wait for ``release``."""
    reached, release = threading.Event(), threading.Event()

    def factory() -> SqlUnitOfWork:
        uow = HeldCommit(engine.sql_engine)
        uow.reached, uow.release = reached, release
        return uow

    return Engine(factory, clock=engine.clock), reached, release


def _one_case(url: str, *, due: bool) -> Engine:
    """An engine on a case c00001 awaiting the seller, its deadline past or days away."""
    now = datetime.now(UTC)
    opened = now - timedelta(days=6 if due else 0, hours=1)
    clock = VirtualClock(opened)
    engine = Engine.open(url, clock=clock)
    _open_cases(engine, clock, range(1, 2), opened)
    engine.clock = VirtualClock(now)
    return engine


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``fn`` in a thread; the list gets its result or the exception it raised."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _race(first: Callable[[], Any], second: Callable[[], Any], held: Any) -> tuple[Any, Any]:
    """``first`` runs up to its commit and waits; ``second`` starts and runs into it."""
    _, reached, release = held
    one, first_result = _in_thread(first)
    assert reached.wait(PROCESS_TIMEOUT_S)
    two, second_result = _in_thread(second)
    time.sleep(CONTEND_S)
    release.set()
    one.join(PROCESS_TIMEOUT_S)
    two.join(PROCESS_TIMEOUT_S)
    return first_result[0], second_result[0]


def _event_types(engine: Engine, case_id: str) -> list[str]:
    return [type(stored.event).__name__ for stored in engine.timeline(case_id)]


def test_two_parties_acting_at_once_on_one_case_one_wins_the_other_is_refused(
    empty_db: Database,
) -> None:
    engine = _one_case(empty_db.url, due=False)
    try:
        held = _held(engine)
        agree = engine.build("agree", actor="seller:s1", target={"case_id": "c00001"})
        withdraw = engine.build("withdraw", actor="buyer:b1", target={"case_id": "c00001"})

        seller, buyer = _race(
            lambda: held[0].execute(agree), lambda: engine.execute(withdraw), held
        )

        assert seller.status.value == "refunded"
        if empty_db.backend == "postgresql":  # the buyer read the case before the seller won
            assert isinstance(buyer, Conflict), buyer
        else:  # BEGIN IMMEDIATE: the buyer read the case only after the seller won
            assert isinstance(buyer, NotAllowed), buyer
        types = _event_types(engine, "c00001")
        assert types.count("Agreed") == types.count("Refunded") == 1
        assert "Withdrawn" not in types
    finally:
        engine.close()


def test_a_worker_passes_over_a_deadline_that_a_seller_is_replacing(
    empty_db: Database,
) -> None:
    """The seller refuses just before the deadline while a worker looks just after it."""
    engine = _one_case(empty_db.url, due=False)
    try:
        before = engine.case("c00001").deadline
        assert before is not None
        held = _held(engine)
        refuse = engine.build(
            "refuse", actor="seller:s1", target={"case_id": "c00001"}, params={"reason": "no"}
        )

        seller, fired = _race(
            lambda: held[0].execute(refuse), lambda: engine.run_due(before.due_at), held
        )

        assert seller.status.value == "seller_refused"
        assert fired == []  # passed over (PostgreSQL) or waited, then found it replaced
        after = engine.case("c00001").deadline
        assert after is not None and after.name == "buyer_respond_after_refusal"
        assert "DeadlineFired" not in _event_types(engine, "c00001")
    finally:
        engine.close()


def test_a_seller_acting_while_a_worker_fires_the_case_is_refused_after_it(
    empty_db: Database,
) -> None:
    engine = _one_case(empty_db.url, due=True)
    try:
        held = _held(engine)
        agree = engine.build("agree", actor="seller:s1", target={"case_id": "c00001"})

        fired, seller = _race(lambda: held[0].run_due(), lambda: engine.execute(agree), held)

        assert [f.name for f in fired] == ["seller_respond"]
        assert isinstance(seller, Conflict | NotAllowed), seller
        types = _event_types(engine, "c00001")
        assert types.count("DeadlineFired") == types.count("Refunded") == 1
        assert [s for s in engine.timeline("c00001") if s.event.actor.startswith("seller")] == []
        with reading(empty_db.url) as conn:
            assert assert_each_deadline_fired_exactly_once(conn, datetime.now(UTC)) == 1
            assert_no_refund_paid_twice(conn)
    finally:
        engine.close()


if __name__ == "__main__":
    if sys.argv[1] == "writer":
        _writer(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))


def test_two_cases_on_two_lines_of_one_order_refunding_at_once_never_pay_more_than_it_cost(
    empty_db: Database,
) -> None:
    """Each case asks for its line and the shipping fee: whichever commits second finds the
    shipping refunded already and gets its line alone (SPEC §1, lines and money)."""
    now = datetime.now(UTC)
    engine = Engine.open(empty_db.url, clock=VirtualClock(now))
    try:
        engine.place_order(
            Order(
                id="o1",
                shop="s1",
                buyer="b1",
                total=3000 + 2000 + 1000,
                shipping_fee=1000,
                items=(
                    Item(line="A", sku="KETTLE", unit_price=3000),
                    Item(line="B", sku="MUG", unit_price=2000),
                ),
                created_at=now - timedelta(days=1),
                paid_at=now - timedelta(days=1),
            )
        )
        for case_id, line, price in (("c1", "A", 3000), ("c2", "B", 2000)):
            apply = engine.build(
                "apply",
                actor="buyer:b1",
                target={"order_id": "o1", "case_id": case_id},
                params={
                    "kind": "refund_only",
                    "reason": "out_of_stock",
                    "amount": price + 1000,
                    "lines": [{"line": line, "quantity": 1}],
                },
            )
            engine.execute(apply)
        held = _held(engine)
        agree_a = engine.build("agree", actor="seller:s1", target={"case_id": "c1"})
        agree_b = engine.build("agree", actor="seller:s1", target={"case_id": "c2"})

        first, second = _race(
            lambda: held[0].execute(agree_a), lambda: engine.execute(agree_b), held
        )

        assert (first.refund_amount, second.refund_amount) == (3000 + 1000, 2000), (first, second)
        order = engine.order("o1")
        assert order.refunded == order.total
        assert [(line.line, line.refunded) for line in order.lines] == [("A", 3000), ("B", 2000)]
        assert order.status.value == "closed"  # every line refunded in sale
    finally:
        engine.close()
