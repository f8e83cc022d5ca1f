"""The command line as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Discounts, Item, Order

PACKS = Path(__file__).parents[2] / "src" / "shouhou" / "policy" / "packs"


def shouhou(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shouhou", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_policy_list_names_every_bundled_pack() -> None:
    result = shouhou("policy", "list")
    assert result.returncode == 0, result.stderr
    for name in ("tmall-standard", "cny-2020", "cny-2022"):
        assert name in result.stdout


def test_policy_show_prints_rules_with_their_source() -> None:
    result = shouhou("policy", "show", "tmall-standard")
    assert result.returncode == 0, result.stderr
    assert "tmall-standard/seller_respond" in result.stdout
    assert "seed Ⅳ" in result.stdout


def test_policy_validate_accepts_the_bundled_packs() -> None:
    result = shouhou("policy", "validate", *map(str, sorted(PACKS.glob("*.yaml"))))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("✓") == 4


def test_policy_validate_refuses_an_unknown_key_and_says_where(tmp_path: Path) -> None:
    text = (PACKS / "tmall-standard.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  seller_respond:\n", "  seller_respond:\n    colour: red\n"))
    result = shouhou("policy", "validate", str(bad))
    assert result.returncode == 1
    assert "deadlines.seller_respond.colour" in result.stderr


@pytest.mark.slow
def test_demo_builds_a_marketplace_and_case_show_explains_a_case(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = shouhou(
        "demo", "--db", str(db), "--days", "2", "--settle-days", "10", "--orders-per-day", "60"
    )
    assert result.returncode == 0, result.stderr
    assert "deadlines fired, by rule" in result.stdout
    assert "tmall-standard/seller_respond" in result.stdout
    with sqlite3.connect(db) as conn:
        refunded_by_timeout = conn.execute(
            "select case_id from (select stream_id as case_id, type from events "
            "where stream = 'case' and type = 'DeadlineFired') limit 1"
        ).fetchone()
    assert refunded_by_timeout is not None
    case_id = refunded_by_timeout[0]
    shown = shouhou("case", "show", case_id, "--db", str(db), "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["id"] == case_id
    assert any(ev["type"] == "DeadlineFired" for ev in view["timeline"])
    assert view["explanation"]["rules"], "a case a deadline moved names the rule behind it"
    again = shouhou("demo", "--db", str(db), "--days", "1")
    assert again.returncode == 1
    assert "--fresh" in again.stderr


def test_case_show_of_an_unknown_case_is_a_clear_error(tmp_path: Path) -> None:
    assert shouhou("db", "upgrade", "--db", str(tmp_path / "x.db")).returncode == 0
    result = shouhou("case", "show", "nope", "--db", str(tmp_path / "x.db"))
    assert result.returncode == 1
    assert "no case nope" in result.stderr


def paid_order(db: Path, paid: datetime) -> None:
    """A database at ``db`` with one order paid at ``paid``: its ``ship_by`` runs 72 h."""
    from shouhou.bootstrap import Engine
    from shouhou.domain.model import Order

    engine = Engine.open(f"sqlite:///{db}", attachments=None)
    try:
        engine.place_order(
            Order(id="o1", shop="s1", buyer="b1", total=100, created_at=paid, paid_at=paid)
        )
    finally:
        engine.close()


def test_a_worker_reports_a_failed_pass_and_carries_on(tmp_path: Path) -> None:
    """A pass that fails (here: the deadlines table is away) rolls back and is reported on
    stderr; the worker keeps polling and fires the deadline once the table is back."""
    import signal
    import time
    from datetime import timedelta

    from shouhou.domain.values import SHANGHAI

    db = tmp_path / "worker.db"
    paid = datetime(2024, 3, 1, 10, tzinfo=SHANGHAI)
    paid_order(db, paid)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE deadlines RENAME TO deadlines_away")
    worker = subprocess.Popen(
        [sys.executable, "-m", "shouhou", "worker", "--db", str(db), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SHOUHOU_ATTACHMENTS_DIR": str(tmp_path / "files")},
    )
    try:
        assert worker.stderr is not None and worker.stdout is not None
        failure = worker.stderr.readline()
        assert "worker pass failed" in failure and "deadlines" in failure, failure
        time.sleep(0.5)
        assert worker.poll() is None, "the worker stopped after a failed pass"
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE deadlines_away RENAME TO deadlines")
        fired = json.loads(worker.stdout.readline())
        assert (fired["fired"], fired["order"]) == ("ship_by", "o1")
        assert datetime.fromisoformat(fired["due_at"]) == paid + timedelta(hours=72)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=30)  # waits, and closes the pipes
    assert worker.returncode == 0


def test_a_worker_run_once_fails_loudly(tmp_path: Path) -> None:
    db = tmp_path / "once.db"
    assert shouhou("db", "upgrade", "--db", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE deadlines RENAME TO deadlines_away")
    result = shouhou("worker", "--once", "--db", str(db))
    assert result.returncode != 0
    assert "deadlines" in result.stderr


def test_a_worker_forgets_handled_deadlines_older_than_keep_days(tmp_path: Path) -> None:
    from datetime import UTC, timedelta

    db = tmp_path / "keep.db"
    paid_order(db, datetime.now(UTC) - timedelta(days=13))  # ship_by was due 10 days ago

    def fired() -> int:
        with sqlite3.connect(db) as conn:
            query = "SELECT count(*) FROM deadlines WHERE status = 'fired'"
            return int(conn.execute(query).fetchone()[0])

    first = shouhou("worker", "--once", "--db", str(db))
    after_first = fired()
    second = shouhou("worker", "--once", "--db", str(db), "--keep-days", "7")
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert json.loads(first.stdout)["fired"] == "ship_by"
    assert after_first == 1  # within the default 30 days: kept
    assert fired() == 0  # 10 days past due, kept 7: forgotten


ONE_TIME_FORMAT = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$"


@pytest.mark.parametrize(("zone", "offset"), [(None, "+08:00"), ("Asia/Kolkata", "+05:30")])
def test_the_command_line_prints_times_to_the_second_in_the_marketplaces_zone(
    tmp_path: Path, zone: str | None, offset: str
) -> None:
    import re

    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    if zone:
        env["SHOUHOU_TIMEZONE"] = zone
    scenario = Path(__file__).parents[2] / "examples/scenarios/52_evidence_submit_revise_seal.yaml"
    db = tmp_path / "w.db"
    paid_order(db, datetime.fromisoformat("2023-03-01T10:00:00.250+08:00"))
    runs = [
        subprocess.run(
            [sys.executable, "-m", "shouhou", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        for args in (("scenario", "run", str(scenario)), ("worker", "--once", "--db", str(db)))
    ]
    lines = [json.loads(line) for run in runs for line in run.stdout.splitlines() if "{" in line]
    times = [v for line in lines for k, v in line.items() if k in ("at", "due_at")]
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    assert len(times) > 10
    assert [t for t in times if not re.match(ONE_TIME_FORMAT, t) or t[-6:] != offset] == []
    fired = next(line for line in lines if line.get("fired") == "ship_by")
    expected = "2023-03-04T10:00:00+08:00" if offset == "+08:00" else "2023-03-04T07:30:00+05:30"
    assert fired["due_at"] == expected


def test_a_worker_logs_json_lines_and_serves_its_metrics(tmp_path: Path) -> None:
    """With --log-format json a failed pass is one JSON object on stderr; the worker's own
    /metrics (--metrics-port) counts the deadline it fires once the table is back; SIGTERM
    stops it cleanly."""
    import signal
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from shouhou.domain.values import SHANGHAI

    db = tmp_path / "worker.db"
    paid_order(db, datetime(2024, 3, 1, 10, tzinfo=SHANGHAI))
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE deadlines RENAME TO deadlines_away")
    with socket.socket() as probe:  # a free port for the worker's metrics
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = ["--interval", "0.2", "--log-format", "json", "--metrics-port", str(port)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "shouhou", "worker", "--db", str(db), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SHOUHOU_ATTACHMENTS_DIR": str(tmp_path / "files")},
    )
    try:
        assert worker.stderr is not None and worker.stdout is not None
        line = json.loads(worker.stderr.readline())
        assert (line["level"], line["logger"]) == ("ERROR", "shouhou.worker")
        assert "worker pass failed" in line["message"] and "deadlines" in line["message"]
        assert datetime.fromisoformat(line["time"]).tzinfo is not None
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE deadlines_away RENAME TO deadlines")
        fired = json.loads(worker.stdout.readline())
        assert fired["fired"] == "ship_by"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            scrape = answer.read().decode()
    finally:
        worker.send_signal(signal.SIGTERM)  # as systemd stops it: the pass finishes first
        worker.communicate(timeout=30)
    assert worker.returncode == 0
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
    }
    assert samples[("shouhou_deadlines_fired_total", (("deadline", "ship_by"),))] == 1
    assert samples[("shouhou_deadlines_due", ())] == 0


def test_a_worker_refuses_to_start_in_an_unknown_time_zone(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shouhou", "worker", "--once", "--db", str(tmp_path / "z.db")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "SHOUHOU_TIMEZONE": "Mars/Olympus"},
    )
    assert result.returncode == 1
    assert "SHOUHOU_TIMEZONE='Mars/Olympus' is not a time zone" in result.stderr
    assert not (tmp_path / "z.db").exists()


def test_case_show_prints_each_line_with_the_buyers_and_the_platforms_part(
    tmp_path: Path,
) -> None:
    db = tmp_path / "lines.db"
    now = datetime.fromisoformat("2023-11-11T12:00:00+08:00")
    engine = Engine.open(f"sqlite:///{db}", clock=VirtualClock(now))
    try:
        engine.place_order(
            Order(
                id="o1",
                shop="s1",
                buyer="b1",
                total=9000,
                items=(
                    Item(line="A", sku="KETTLE", title="kettle", unit_price=6000),
                    Item(line="B", sku="MUG", title="mug", unit_price=4000),
                ),
                discounts=Discounts(platform_subsidy=1000),
                created_at=now - timedelta(hours=1),
                paid_at=now - timedelta(hours=1),
            )
        )
        params = {"kind": "refund_only", "reason": "out_of_stock", "amount": 5400}
        params["lines"] = [{"line": "A"}]
        target = {"order_id": "o1", "case_id": "c1"}
        engine.execute(engine.build("apply", actor="buyer:b1", target=target, params=params))
        engine.execute(engine.build("agree", actor="seller:s1", target={"case_id": "c1"}))
    finally:
        engine.close()

    shown = shouhou("case", "show", "c1", "--db", str(db))

    assert shown.returncode == 0, shown.stderr
    assert "refunded ¥54.00 (+ ¥6.00 platform subsidy reclaimed from the seller)" in shown.stdout
    assert "line A KETTLE kettle × 1: ¥54.00 to the buyer, ¥6.00 to the platform" in shown.stdout
