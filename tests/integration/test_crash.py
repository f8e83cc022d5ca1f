"""A worker killed mid-run loses nothing and doubles nothing: every deadline fires exactly once.

A SQLite file holds many refund-only cases whose ``seller_respond`` deadline is long past.
``shouhou worker --once`` is started on it and SIGKILLed while firing; a later run finishes
the job. Each case must end refunded exactly once, whatever moment the kills hit.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order

pytestmark = pytest.mark.slow

#: How many cases the file holds; the worker needs several seconds to fire them all.
CASES = 2000
#: How many deadlines must have fired before the first variant kills the worker.
KILL_AFTER = 200
#: When the cases were opened (virtual time); the real clock is long past their deadlines.
OPENED_AT = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
#: Pause between two looks at the database while a worker runs, in seconds.
POLL_S = 0.005
#: Safety net so a hung worker fails the test instead of hanging it, in seconds.
WORKER_TIMEOUT_S = 120
SEED = 20240301


def order_id(i: int) -> str:
    return f"o{i:05d}"


def case_id(i: int) -> str:
    return f"c{i:05d}"


def total(i: int) -> int:
    return 1_000 + i


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of CASES shipped orders, each with a refund-only case awaiting the seller."""
    path = tmp_path_factory.mktemp("crash") / "template.db"
    engine = Engine.open(f"sqlite:///{path}", clock=VirtualClock(OPENED_AT))
    try:
        for i in range(CASES):
            engine.place_order(
                Order(
                    id=order_id(i),
                    shop=f"s{i % 7}",
                    buyer=f"b{i}",
                    total=total(i),
                    created_at=OPENED_AT - timedelta(hours=3),
                    paid_at=OPENED_AT - timedelta(hours=2),
                    shipped_at=OPENED_AT - timedelta(hours=1),
                )
            )
            apply = engine.build(
                "apply",
                actor=f"buyer:b{i}",
                target={"order_id": order_id(i)},
                params={
                    "kind": "refund_only",
                    "reason": "not_received",
                    "amount": total(i),
                    "case_id": case_id(i),
                },
            )
            engine.execute(apply)
    finally:
        engine.close()
    with closing(sqlite3.connect(path)) as conn:
        pending = conn.execute(
            "SELECT count(*) FROM deadlines WHERE status = 'pending' AND subject_type = 'case'"
            " AND name = 'seller_respond'"
        ).fetchone()[0]
    assert pending == CASES
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template for one test."""
    path = tmp_path / "shop.db"
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return path


# --- running and killing the worker ------------------------------------------------------


def worker_command(db: Path) -> list[str]:
    # The deadlines are from 2024 and the worker's clock is real: keep the fired rows, which
    # these tests count, instead of forgetting them after the default 30 days.
    keep = ["--keep-days", "36500"]
    return [sys.executable, "-m", "shouhou", "worker", "--once", "--db", str(db), *keep]


def fired_count(db: Path) -> int:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        count: int = conn.execute(
            "SELECT count(*) FROM deadlines WHERE status = 'fired'"
        ).fetchone()[0]
        return count


def run_and_kill(db: Path, log: Path, *, at_least: int, jitter_s: float = 0.0) -> int:
    """Start a worker, SIGKILL it once ``at_least`` deadlines have fired; the count then.

    Fails loudly if the worker ends on its own first: the test would prove nothing.
    """
    with log.open("ab") as out:
        worker = subprocess.Popen(
            worker_command(db), stdout=out, stderr=subprocess.STDOUT, cwd=db.parent
        )
    try:
        give_up = time.monotonic() + WORKER_TIMEOUT_S
        while (fired := fired_count(db)) < at_least:
            if worker.poll() is not None:
                pytest.fail(
                    f"the worker ended (exit {worker.returncode}) after {fired} of {CASES} "
                    f"deadlines, before it could be killed; raise CASES\n{log.read_text()}"
                )
            if time.monotonic() > give_up:
                pytest.fail(f"the worker fired only {fired} deadlines\n{log.read_text()}")
            time.sleep(POLL_S)
        time.sleep(jitter_s)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        returncode = worker.wait()
    if returncode != -signal.SIGKILL:
        pytest.fail(
            f"the worker ended (exit {returncode}) before the kill; raise CASES\n{log.read_text()}"
        )
    return fired_count(db)


def run_to_completion(db: Path, log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            worker_command(db),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=db.parent,
            timeout=WORKER_TIMEOUT_S,
            check=False,
        )
    assert done.returncode == 0, log.read_text()


# --- what must hold ----------------------------------------------------------------------


def assert_a_killed_run_left_whole_transactions(db: Path) -> None:
    """Each fired deadline came with its refund, and nothing else was refunded."""
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        refunded = conn.execute("SELECT count(*) FROM cases WHERE status = 'refunded'").fetchone()
        fired = conn.execute("SELECT count(*) FROM deadlines WHERE status = 'fired'").fetchone()
        refunds = conn.execute(
            "SELECT count(*) FROM events WHERE stream = 'case' AND type = 'Refunded'"
        ).fetchone()
    assert refunded == fired == refunds


def assert_every_case_refunded_exactly_once(db: Path) -> None:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM cases GROUP BY status"))
        per_case = conn.execute(
            """
            SELECT c.id,
                   sum(e.type = 'DeadlineFired'),
                   sum(e.type = 'Refunded'),
                   sum(CASE WHEN e.type = 'Refunded' THEN json_extract(e.data, '$.amount') END)
            FROM cases AS c JOIN events AS e ON e.stream = 'case' AND e.stream_id = c.id
            GROUP BY c.id ORDER BY c.id
            """
        ).fetchall()
        pending = conn.execute("SELECT count(*) FROM deadlines WHERE status = 'pending'").fetchone()
        fired = conn.execute(
            "SELECT subject_type, subject_id, count(*) FROM deadlines WHERE status = 'fired'"
            " GROUP BY subject_type, subject_id ORDER BY subject_id"
        ).fetchall()
        per_order = conn.execute(
            """
            SELECT o.id,
                   json_extract(o.state, '$.total'),
                   json_extract(o.state, '$.refunded'),
                   (SELECT count(*) FROM events AS e
                    WHERE e.stream = 'order' AND e.stream_id = o.id
                      AND e.type = 'CaseEndedOnOrder')
            FROM orders AS o ORDER BY o.id
            """
        ).fetchall()

    assert statuses == {"refunded": CASES}
    assert per_case == [(case_id(i), 1, 1, total(i)) for i in range(CASES)]
    assert pending == (0,)
    assert fired == [("case", case_id(i), 1) for i in range(CASES)]
    assert per_order == [(order_id(i), total(i), total(i), 1) for i in range(CASES)]


# --- the tests ---------------------------------------------------------------------------


def test_a_worker_killed_mid_run_then_rerun_fires_every_deadline_exactly_once(
    db: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"

    fired = run_and_kill(db, log, at_least=KILL_AFTER)

    assert KILL_AFTER <= fired < CASES
    assert_a_killed_run_left_whole_transactions(db)
    run_to_completion(db, log)
    assert_every_case_refunded_exactly_once(db)


def test_a_worker_killed_at_random_moments_three_times_still_fires_each_deadline_once(
    db: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    rng = random.Random(SEED)
    progress = [0]

    for _ in range(3):
        target = progress[-1] + rng.randint(1, 400)
        progress.append(run_and_kill(db, log, at_least=target, jitter_s=rng.uniform(0, 0.05)))
        assert_a_killed_run_left_whole_transactions(db)

    assert progress == sorted(progress)
    assert 0 < progress[-1] < CASES
    run_to_completion(db, log)
    assert_every_case_refunded_exactly_once(db)
