"""The first run, as a new user meets it: ``demo``, ``db upgrade``, the read commands on a
database that is not there, ``worker --once``, ``scenario run``, and ``serve`` with a port in
use or a rulebook of one's own. Real processes, real files; PostgreSQL where it runs."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from apiserver import free_socket

from pgscratch import POSTGRES_URL, scratch_schema
from shouhou.bootstrap import Engine
from shouhou.db import engine as db_engine

ROOT = Path(__file__).parents[2]
PACKS = ROOT / "src" / "shouhou" / "policy" / "packs"
SCENARIOS = sorted((ROOT / "examples" / "scenarios").glob("*.yaml"))

#: How long ``shouhou serve`` may take to answer /health, in seconds.
SERVE_STARTUP_S = 60
#: A demo small enough for a test that still fills every queue (seed 7, the default).
SMALL_DEMO = ("--days", "3", "--settle-days", "14", "--orders-per-day", "80")


def shouhou(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shouhou", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", **env},
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections work in a fresh schema, dropped afterwards."""
    with scratch_schema("first_run") as url:
        yield url


def _case_count(url: str) -> int:
    engine = Engine.open(url, migrate=False)
    try:
        with engine.reader() as uow:
            return len(uow.cases.list(limit=10_000))
    finally:
        engine.close()


# --- demo: where it writes, and what --fresh may touch -------------------------------------


TINY_DEMO = ("--days", "1", "--settle-days", "1", "--orders-per-day", "24")


@pytest.mark.slow
def test_demo_writes_to_a_postgresql_url_given_to_db_and_fresh_starts_it_over(
    pg_url: str, tmp_path: Path
) -> None:
    first = shouhou("demo", "--db", pg_url, *TINY_DEMO, cwd=tmp_path)
    again = shouhou("demo", "--db", pg_url, *TINY_DEMO, cwd=tmp_path)
    cases = _case_count(pg_url)
    fresh = shouhou("demo", "--db", pg_url, *TINY_DEMO, "--seed", "8", "--fresh", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the URL
    assert cases > 0
    assert again.returncode == 1 and "pass --fresh" in again.stderr
    assert fresh.returncode == 0, fresh.stderr
    assert db_engine.look(pg_url).revision == db_engine.head_revision()


@pytest.mark.slow
def test_demo_honours_shouhou_database_url(pg_url: str, tmp_path: Path) -> None:
    result = shouhou("demo", *TINY_DEMO, cwd=tmp_path, SHOUHOU_DATABASE_URL=pg_url)

    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []  # not var/demo.db
    assert _case_count(pg_url) > 0


def test_demo_fresh_refuses_a_postgresql_database_holding_other_tables(pg_url: str) -> None:
    sql = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with sql.begin() as conn:
        conn.execute(sa.text("CREATE TABLE payroll (id int)"))
        conn.execute(sa.text("INSERT INTO payroll VALUES (1)"))

    result = shouhou("demo", "--db", pg_url, *TINY_DEMO, "--fresh")

    with sql.connect() as conn:
        kept = conn.execute(sa.text("SELECT count(*) FROM payroll")).scalar()
        tables = sa.inspect(conn).get_table_names()
    sql.dispose()
    assert result.returncode == 1
    assert "not shouhou's" in result.stderr and "payroll" in result.stderr
    assert kept == 1 and tables == ["payroll"]


@pytest.mark.slow
def test_demo_fresh_drops_shouhou_tables_only_and_keeps_the_others(pg_url: str) -> None:
    assert shouhou("db", "upgrade", "--db", pg_url).returncode == 0
    sql = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with sql.begin() as conn:
        conn.execute(sa.text("CREATE TABLE payroll (id int)"))
        conn.execute(sa.text("INSERT INTO payroll VALUES (1)"))

    result = shouhou("demo", "--db", pg_url, *TINY_DEMO, "--fresh")

    with sql.connect() as conn:
        kept = conn.execute(sa.text("SELECT count(*) FROM payroll")).scalar()
    sql.dispose()
    assert result.returncode == 0, result.stderr
    assert kept == 1
    assert _case_count(pg_url) > 0


def test_demo_fresh_refuses_a_sqlite_file_that_is_not_shouhou_s(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "notes.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text)")
    result = shouhou("demo", "--db", str(other), *TINY_DEMO, "--fresh")

    assert result.returncode == 1
    assert "not shouhou's" in result.stderr
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]


def test_demo_fresh_on_sqlite_starts_over(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert shouhou("demo", "--db", str(db), *TINY_DEMO).returncode == 0
    refused = shouhou("demo", "--db", str(db), *TINY_DEMO)
    fresh = shouhou("demo", "--db", str(db), *TINY_DEMO, "--fresh")

    assert refused.returncode == 1 and "pass --fresh" in refused.stderr
    assert fresh.returncode == 0, fresh.stderr


# --- read commands on a database that is not there ----------------------------------------


READS = [
    ("case", "show", "c1"),
    ("case", "explain", "c1"),
    ("case", "replies", "c1"),
    ("queue", "interventions"),
    ("shop", "metrics", "s1"),
    ("shop", "report", "s1"),
    ("keys", "list"),
    ("keys", "revoke", "k1"),
]


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_a_read_command_on_a_missing_sqlite_file_says_so_and_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    db = tmp_path / "nowhere" / "shop.db"
    result = shouhou(*command, "--db", str(db), cwd=tmp_path)

    assert result.returncode == 1
    assert f"no database at {db}" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no file, no folder, no reports


def test_a_read_command_on_a_missing_postgresql_database_says_so() -> None:
    url = sa.make_url(POSTGRES_URL).set(database=f"nowhere_{uuid.uuid4().hex[:8]}")
    try:
        db_engine.look(POSTGRES_URL)
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}")
    result = shouhou("queue", "interventions", "--db", url.render_as_string())

    assert result.returncode == 1
    assert f"no database at {url.render_as_string(hide_password=True)}" in result.stderr


def test_a_read_command_on_a_database_without_the_schema_creates_no_table(pg_url: str) -> None:
    result = shouhou("keys", "list", "--db", pg_url)

    assert result.returncode == 1
    assert "has no shouhou schema" in result.stderr
    assert db_engine.look(pg_url).tables == ()


# --- what db upgrade, worker --once and scenario run say ----------------------------------


def test_db_upgrade_says_it_created_the_schema_then_that_it_is_current(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    head = db_engine.head_revision()

    created = shouhou("db", "upgrade", "--db", str(db))
    current = shouhou("db", "upgrade", "--db", str(db))

    assert created.returncode == 0 and current.returncode == 0
    assert created.stdout.strip() == f"created the schema in {db}: revision {head}"
    assert current.stdout.strip() == f"the schema in {db} is current: revision {head}"


def test_db_upgrade_says_from_which_revision_it_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old = db_engine.create(f"sqlite:///{db}")
    db_engine.upgrade(old, "0007")
    db_engine.dispose(old)

    result = shouhou("db", "upgrade", "--db", str(db))

    assert result.returncode == 0, result.stderr
    assert f"revision 0007 → {db_engine.head_revision()}" in result.stdout


def test_worker_once_says_what_it_did_on_stderr(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from shouhou.domain.model import Order

    db = tmp_path / "worker.db"
    paid = datetime.now(UTC) - timedelta(days=5)  # ship_by (72h) passed two days ago
    engine = Engine.open(f"sqlite:///{db}", attachments=None)
    try:
        for n in (1, 2):
            engine.place_order(
                Order(id=f"o{n}", shop="s1", buyer="b1", total=100, created_at=paid, paid_at=paid)
            )
    finally:
        engine.close()

    first = shouhou("worker", "--once", "--db", str(db))
    second = shouhou("worker", "--once", "--db", str(db))

    assert first.returncode == 0, first.stderr
    assert [json.loads(line)["fired"] for line in first.stdout.splitlines()] == ["ship_by"] * 2
    assert "2 deadline(s) fired, 0 set aside, 0 delivery(ies) sent, 0 failed" in first.stderr
    assert "0 deadline(s) fired" in second.stderr and second.stdout == ""


def test_scenario_run_ends_with_the_tally_and_keeps_stdout_json(tmp_path: Path) -> None:
    failing = tmp_path / "wrong.yaml"
    text = SCENARIOS[0].read_text(encoding="utf-8")
    expected = re.search(r"status: (\w+)", text)
    assert expected is not None
    failing.write_text(text.replace(expected.group(0), "status: closed_nowhere", 1), "utf-8")

    result = shouhou("scenario", "run", str(SCENARIOS[0]), str(SCENARIOS[1]), str(failing))

    assert result.returncode == 1
    assert all(json.loads(line) for line in result.stdout.splitlines())
    assert result.stderr.strip().splitlines()[-1] == "2 passed, 1 failed"


# --- the demo fills every queue and report ------------------------------------------------


@pytest.mark.slow
def test_the_demo_leaves_every_queue_and_report_non_empty(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    made = shouhou("demo", "--db", str(db), *SMALL_DEMO)
    assert made.returncode == 0, made.stderr

    queue = shouhou("queue", "interventions", "--db", str(db), "--json")
    waiting = [json.loads(line) for line in queue.stdout.splitlines()]
    reports = {
        shop: shouhou("shop", "report", shop, "--db", str(db), "--out", str(tmp_path / "r"))
        for shop in ("s1", "s2", "s3", "s4", "s5")
    }
    engine = Engine.open(f"sqlite:///{db}", migrate=False)
    try:
        complaints = engine.complaint_queue()
    finally:
        engine.close()

    assert any(case["stage"] == "review" for case in waiting), waiting
    assert complaints and all(k.status.value == "filed" for k in complaints)
    for shop, report in reports.items():
        assert report.returncode == 0, report.stderr
        data = json.loads((tmp_path / "r" / f"shop-{shop}-report.json").read_text("utf-8"))
        assert data["classified"] > 0, shop
        assert all(line["sku"] and line["title"] for line in data["by_product"]), shop
        assert data["metrics"]["paid_orders"] > 0, shop  # the default period covers the demo


# --- serve: the port, the rulebook --------------------------------------------------------


def test_serve_reports_a_port_in_use_before_printing_anything(tmp_path: Path) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        result = shouhou(
            "serve", "--db", str(tmp_path / "serve.db"), "--port", str(port), "--demo-keys"
        )
    finally:
        holder.close()

    assert result.returncode == 1
    assert result.stdout == ""  # no URL, no key
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
    assert not (tmp_path / "serve.db").exists()


def test_serve_refuses_an_invalid_pack_naming_its_file_and_line(tmp_path: Path) -> None:
    text = (PACKS / "tmall-standard.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  seller_respond:\n", "  seller_respond:\n    colour: red\n"))
    line = bad.read_text(encoding="utf-8").splitlines().index("    colour: red") + 1

    by_file = shouhou("serve", "--db", str(tmp_path / "a.db"), "--policy", str(bad))
    by_folder = shouhou("serve", "--db", str(tmp_path / "a.db"), SHOUHOU_POLICY_DIR=str(tmp_path))

    for result in (by_file, by_folder):
        assert result.returncode == 2
        assert f"{bad}:{line}:" in result.stderr
        assert "deadlines.seller_respond.colour" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "a.db").exists()


def test_the_policy_option_selects_packs_by_name_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shouhou.cli.options import rulebooks

    mine = tmp_path / "packs" / "myshop.yaml"
    mine.parent.mkdir()
    mine.write_text(
        (PACKS / "taobao.yaml").read_text("utf-8").replace("name: taobao", "name: myshop"),
        encoding="utf-8",
    )
    monkeypatch.delenv("SHOUHOU_POLICY_DIR", raising=False)
    _, default = rulebooks(None)
    _, taobao = rulebooks(["taobao"])
    _, by_file = rulebooks([str(mine), "cny-2022"])
    monkeypatch.setenv("SHOUHOU_POLICY_DIR", str(mine.parent))
    registry, by_name = rulebooks(["myshop"])

    assert default is None  # the engine's own default
    assert taobao == ["taobao", "cny-2020", "cny-2022"]
    assert by_file == ["myshop", "cny-2022"]
    assert by_name == ["myshop", "cny-2020", "cny-2022"]
    assert registry.versions("myshop")[-1].origin == str(mine)


@pytest.mark.slow
def test_serve_runs_on_the_pack_chosen_from_the_policy_folder(tmp_path: Path) -> None:
    folder = tmp_path / "packs"
    folder.mkdir()
    (folder / "myshop.yaml").write_text(
        (PACKS / "taobao.yaml").read_text("utf-8").replace("name: taobao", "name: myshop"),
        encoding="utf-8",
    )
    db = str(tmp_path / "s.db")
    created = shouhou("keys", "create", "platform", "--db", db)
    token = created.stdout.splitlines()[-1]
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    args = ["serve", "--db", db, "--port", str(port), "--policy", "myshop"]
    process = subprocess.Popen(
        [sys.executable, "-m", "shouhou", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "SHOUHOU_POLICY_DIR": str(folder)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_STARTUP_S
        while True:
            assert process.poll() is None, "shouhou serve exited"
            assert time.monotonic() < deadline, "shouhou serve did not answer /health"
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        listed = httpx.get(f"{url}/v1/policies", headers={"Authorization": f"Bearer {token}"})
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert created.returncode == 0, created.stderr
    selected = {p["name"] for p in listed.json() if p["selected"]}
    assert selected == {"myshop", "cny-2020", "cny-2022"}
    assert "rulebook: myshop + cny-2020 + cny-2022" in output
    assert process.returncode == 0, output
