"""PostgreSQL with several processes: the engine's transitions/s and fired/s with 1, 2, 4, 8
client processes, next to pgbench running the floor transaction with as many clients.

At each level the engine goes first — N processes, each with its own engine and connection
pool, taking its own orders through ``transitions.py``'s return (apply, agree, ship the goods
back, confirm receipt: one ``Engine.execute`` and one commit each) for ``--seconds`` — then
``pgbench -n -M prepared -f <floor transaction> -c N -j N -T <seconds>`` on the same schema.
The floor transaction (``floor.py``) is one transition at its smallest: read a case (locked),
update it with its version check, insert its event, upsert its deadline, with the snapshots
and events the engine writes for the same steps. Firing is the same with N worker processes
calling ``run_due`` against pgbench's one-deadline claim-and-fire, on a second schema where
every deadline is due; pgbench's transactions take from the same due deadlines as the
engine's workers, so both fire the same rows.

    .venv/bin/python benchmarks/pg_clients.py --url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/pg_clients.py --clients 1,2 --workers 1 --seconds 5

pgbench must be on the PATH or given with ``--pgbench``.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import _common
import firing
import floor
import sqlalchemy as sa

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.buckets import DEFAULT_BUCKETS, bucket_of, in_bucket
from shouhou.domain.model import Order
from shouhou.errors import Conflict
from shouhou.services import deadlines as service_deadlines

T0 = floor.T0
#: Cases the floor's pgbench transaction picks from at random.
FLOOR_CASES = 10_000

# --- the engine's orders, copied from one the engine placed --------------------------------

_ID = "lpad(CAST(s.n AS TEXT), 7, '0')"


def _renamed(column: str) -> str:
    out = f"CAST({column} AS TEXT)"
    for old, new in (("oTEMPLATE", "o"), ("bTEMPLATE", "b")):
        out = f"replace({out}, '{old}', '{new}' || {_ID})"
    return out


_COPY_ORDERS = [
    # each copy's bucket is in _nb (decision 0021; crc32 is not SQL)
    "INSERT INTO orders (bucket, id, shop, buyer, status, state, version, created_at,"
    f" updated_at) SELECT nb.bucket, 'o' || {_ID}, t.shop, 'b' || {_ID}, t.status,"
    f" CAST({_renamed('t.state')} AS JSON), t.version, t.created_at, t.updated_at"
    " FROM orders AS t, generate_series(1, :count) AS s(n) JOIN _nb AS nb ON nb.n = s.n"
    " WHERE t.id = 'oTEMPLATE'",
    "INSERT INTO deadlines (bucket, subject_type, subject_id, name, due_at, on_expiry, rule_id,"
    f" policy, status) SELECT nb.bucket, t.subject_type, 'o' || {_ID}, t.name, t.due_at,"
    " t.on_expiry, t.rule_id, t.policy, t.status FROM deadlines AS t,"
    " generate_series(1, :count) AS s(n) JOIN _nb AS nb ON nb.n = s.n"
    " WHERE t.subject_id = 'oTEMPLATE' AND t.status = 'pending'",
    "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data)"
    f" SELECT nb.bucket, t.stream, 'o' || {_ID}, t.seq, t.type, t.at, t.actor,"
    f" CAST({_renamed('t.data')} AS JSON) FROM events AS t, generate_series(1, :count) AS s(n)"
    " JOIN _nb AS nb ON nb.n = s.n WHERE t.stream_id = 'oTEMPLATE'",
    "DELETE FROM events WHERE stream_id = 'oTEMPLATE'",
    "DELETE FROM deadlines WHERE subject_id = 'oTEMPLATE'",
    "DELETE FROM outbox",
    "DELETE FROM orders WHERE id = 'oTEMPLATE'",
    "DROP TABLE _nb",
]


def place_orders(db: _common.Database, count: int) -> None:
    """``count`` delivered orders, ``o0000001`` on: one placed by the engine, copied."""
    sql = db.engine()
    try:
        engine = Engine(lambda: SqlUnitOfWork(sql), clock=VirtualClock(T0))
        engine.place_order(
            Order(
                id="oTEMPLATE",
                shop="s1",
                buyer="bTEMPLATE",
                total=29_900,
                created_at=T0 - timedelta(days=3),
                paid_at=T0 - timedelta(days=3),
                shipped_at=T0 - timedelta(days=2),
                delivered_at=T0 - timedelta(days=1),
            )
        )
        with sql.begin() as conn:
            _common.number_buckets(conn, count, lambda n: f"o{n:07d}")
            for statement in _COPY_ORDERS:
                conn.execute(sa.text(statement), {"count": count})
    finally:
        db_engine.dispose(sql)


# --- the engine's processes ----------------------------------------------------------------


def _transitions(url: str, first: int, count: int, seconds: float, go: Any, out: Any) -> None:
    """Take orders ``first`` to ``first + count - 1`` through the four steps until
    ``seconds`` have passed; put (transitions, seconds) on ``out``."""
    sql = db_engine.create(url)
    # One engine a step, each with its clock at its step's hour: a case takes its four steps
    # before the next case starts, and a virtual clock does not go back.
    engines = [
        Engine(lambda: SqlUnitOfWork(sql), clock=VirtualClock(T0 + timedelta(hours=n + 1)))
        for n in range(len(floor.STEPS))
    ]
    commands = []
    for i in range(first, first + count):
        # The case id the engine would make: it hashes to its order's bucket (decision 0021),
        # so the engine finds it without a route.
        order = f"o{i:07d}"
        case = in_bucket(f"c{i:07d}", bucket_of(order, DEFAULT_BUCKETS), DEFAULT_BUCKETS)
        for n, (action, role, params) in enumerate(floor.STEPS):
            commands.append(
                (
                    engines[n],
                    engines[n].build(
                        action,
                        actor=f"buyer:b{i:07d}" if role == "buyer" else "seller:s1",
                        target={"order_id": order, "case_id": case}
                        if action == "apply"
                        else {"case_id": case},
                        params=params,
                    ),
                )
            )
    with sql.connect() as conn:  # a connection in the pool before the clock starts
        conn.execute(sa.text("SELECT 1"))
    out.put(("ready", 0, 0.0, 0.0, ""))
    go.wait()
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    stop = started + seconds
    try:
        for engine, command in commands:
            if time.perf_counter() >= stop:
                break
            engine.execute(command)
            done += 1
        out.put(("done", done, time.perf_counter() - started, time.process_time() - cpu, ""))
    except Exception as exc:  # reported, not hidden: the parent prints it
        out.put(("failed", done, repr(exc), 0.0, ""))
    finally:
        db_engine.dispose(sql)


def _fire(url: str, now: Any, seconds: float, go: Any, out: Any) -> None:
    """Fire due deadlines with ``run_due`` until ``seconds`` have passed; put (fired,
    seconds) on ``out``."""
    sql = db_engine.create(url)
    engine = Engine(lambda: SqlUnitOfWork(sql), clock=VirtualClock(now))
    # Transactions and lost races, counted around each batch run_due fires.
    counts = {"batches": 0, "lost": 0}
    fire_due = service_deadlines.fire_due

    def counted(*args: Any) -> Any:
        counts["batches"] += 1
        try:
            return fire_due(*args)
        except Conflict:
            counts["lost"] += 1
            raise

    service_deadlines.fire_due = counted  # type: ignore[assignment]
    with sql.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    out.put(("ready", 0, 0.0, 0.0, ""))
    go.wait()
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    stop = started + seconds
    try:
        while time.perf_counter() < stop:
            fired = engine.run_due(now, limit=200)
            if not fired:
                out.put(("failed", done, "nothing left to fire", 0.0, ""))
                return
            done += len(fired)
        note = f"{counts['batches']} transactions, {counts['lost']} lost races"
        out.put(("done", done, time.perf_counter() - started, time.process_time() - cpu, note))
    except Exception as exc:
        out.put(("failed", done, repr(exc), 0.0, ""))
    finally:
        db_engine.dispose(sql)


def engine_rate(target: Any, args_of: list[tuple[Any, ...]]) -> tuple[float, str, float, str]:
    """Run ``target`` in one process per argument tuple, started together; the rate of all
    of them, what went wrong (empty: nothing), the processes' CPU seconds per item, and what
    each process said of its run."""
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, go, out)) for a in args_of]
    for p in procs:
        p.start()
    for _ in procs:
        kind, *_ = out.get(timeout=120)
        assert kind == "ready"
    go.set()
    total, longest, cpu, problems, notes = 0, 0.0, 0.0, [], []
    for _ in procs:
        kind, done, took, used, note = out.get(timeout=600)
        total += done
        cpu += used
        if note:
            notes.append(note)
        if kind == "done":
            longest = max(longest, took)
        else:
            problems.append(str(took))
    for p in procs:
        p.join()
    if problems:
        return 0.0, "; ".join(problems), 0.0, ""
    return total / longest, "", cpu / max(total, 1), "; ".join(notes)


# --- pgbench -------------------------------------------------------------------------------


def pgbench(
    binary: str, server: str, schema: str, script: str, clients: int, seconds: float
) -> tuple[float, str]:
    """Transactions per second of ``script`` with ``clients`` clients (and threads), and
    what went wrong (empty: nothing)."""
    url = sa.make_url(server)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    env = dict(os.environ, PGOPTIONS=f"-csearch_path={schema}")
    command = [
        binary,
        "-n",
        "-M",
        "prepared",
        "-f",
        path,
        "-c",
        str(clients),
        "-j",
        str(clients),
        "-T",
        str(int(seconds)),
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
        url.database or "postgres",
    ]
    try:
        run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    finally:
        Path(path).unlink()
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", run.stdout)
    problems = []
    if run.returncode != 0:
        problems.append(f"pgbench exited {run.returncode}: {run.stderr.strip()[-300:]}")
    failed = re.search(r"number of failed transactions: (\d+)", run.stdout)
    if failed and int(failed.group(1)):
        problems.append(f"{failed.group(1)} failed transactions")
    return (float(found.group(1)) if found else 0.0), "; ".join(problems)


def _schema(db: _common.Database) -> str:
    options = sa.make_url(db.url).query["options"]
    assert isinstance(options, str)
    return options.removeprefix("-csearch_path=")


def _line(label: str, ours: float, theirs: float, cpu: float, problems: str) -> None:
    ratio = ours / theirs if theirs else float("nan")
    note = f"   !! {problems}" if problems else ""
    print(
        f"{label:<11} ours {ours:>6.0f}/s ({cpu * 1e3:4.1f} ms CPU each)"
        f"   pgbench floor {theirs:>6.0f}/s   ours÷pgbench {ratio:5.2f}"
        f"   ({_common.load()}){note}"
    )


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,2,4,8", help="client processes, transitions")
    parser.add_argument("--workers", default="1,2,4", help="worker processes, firing")
    parser.add_argument("--seconds", type=float, default=8.0, help="each side, each level")
    parser.add_argument("--pending", type=int, default=100_000, help="firing: all due")
    parser.add_argument("--pgbench", default="pgbench")
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",") if n and int(n) > 0]
    workers = [int(n) for n in args.workers.split(",") if n and int(n) > 0]
    _common.header("several processes: the engine next to pgbench's floor", "postgresql")
    print(f"at the start: {_common.load()}; {args.seconds:.0f} s each side, each level")
    # Room for 500 cases (2,000 transitions) a second at each level.
    per_level = int(500 * args.seconds)
    with _common.fresh_database("postgresql", args.url, "clients") as db:
        steps = floor.template_steps(db)
        place_orders(db, per_level * len(clients))
        with db.connect_raw() as conn:
            floor.insert_cases(conn, "postgresql", floor.case_ids(FLOOR_CASES), steps[0].state)
        _common.analyze(db)
        script = floor.pgbench_transition(steps, FLOOR_CASES)
        print("transitions (the engine: apply, agree, ship back, confirm receipt, in turn)")
        for level, n in enumerate(clients):
            per = per_level // n
            base = 1 + level * per_level
            ours, problems, cpu, _ = engine_rate(
                _transitions,
                [(db.url, base + k * per, per, args.seconds) for k in range(n)],
            )
            theirs, trouble = pgbench(args.pgbench, args.url, _schema(db), script, n, args.seconds)
            _line(
                f"{n} client{'s' if n > 1 else ''}",
                ours,
                theirs,
                cpu,
                "; ".join(filter(None, [problems, trouble])),
            )
    if not workers:
        return
    with _common.fresh_database("postgresql", args.url, "workers") as db:
        firing.build(db, args.pending, args.pending)
        now = firing.TEMPLATE_DUE + timedelta(seconds=args.pending + 1)
        with db.connect_raw() as conn:
            data = floor.firing_event(conn, "postgresql")
        script = floor.pgbench_firing(data, now)
        print(f"firing ({args.pending:,} due; the engine's workers call run_due)")
        for n in workers:
            ours, problems, cpu, notes = engine_rate(
                _fire, [(db.url, now, args.seconds) for _ in range(n)]
            )
            theirs, trouble = pgbench(args.pgbench, args.url, _schema(db), script, n, args.seconds)
            _line(
                f"{n} worker{'s' if n > 1 else ''}",
                ours,
                theirs,
                cpu,
                "; ".join(filter(None, [problems, trouble])),
            )
            print(f"            the workers: {notes}")
    print(f"at the end: {_common.load()}")


if __name__ == "__main__":
    main()
