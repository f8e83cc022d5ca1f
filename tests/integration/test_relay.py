"""``shouhou relay`` SIGKILLed 100 times between publishing and marking: afterwards every event
is in the stream exactly once, and each order's events in feed order.

Real processes on a real nats-server (127.0.0.1:4222, or ``$SHOUHOU_TEST_NATS_URL``) and a
real database: a SQLite file, and a PostgreSQL schema of its own
(``$SHOUHOU_TEST_POSTGRES_URL``), plain and with every bucketed table partitioned by bucket.
The feed is per bucket (decision 0021): the relay keeps a cursor per bucket, and an order's
events are on one subject, in its bucket's position order. Each relay runs with the test hook
``SHOUHOU_RELAY_HOLD=stdin``: it says ``{"ready"}`` once connected and ``{"held"}`` after
each wave the stream acknowledged (before the next wave, or marking the batch), then waits
for a line. At each hold the test lets it go on, or SIGKILLs it (seeded, one time in two):
every kill lands after the stream took part of a batch and before the batch was marked,
which the test checks (the stream acknowledged messages of the pass; the database's cursor
is still where the pass started, in every bucket). The next relay is started while one runs,
so a kill costs no start-up. Meanwhile the test keeps committing events: new orders and
notes on old ones, so that orders span relays whose memory of the stream is empty.

The stream's duplicate window is one second: a batch published again soon after a kill is
dropped by its ``Nats-Msg-Id``; one published again later is refused by its expected last
subject sequence and found in the stream on the re-read. Which of the two happens depends on
the machine's speed, so the test counts both; the tests after it show each on its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from pgscratch import scratch_schema, unavailable
from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.domain.buckets import bucket_of
from shouhou.domain.model import NoteStep, Order
from shouhou.services.ports import ApiUnitOfWork, OutboxEvent
from shouhou.services.relay import order_of, subject
from shouhou.services.relay import reached as relay_reached
from shouhou.worker.relay import POSITION

pytestmark = pytest.mark.slow

NATS_URL = os.environ.get("SHOUHOU_TEST_NATS_URL", "nats://127.0.0.1:4222")
KILLS = 100
#: Orders placed (each with a case: ten events) before the first relay starts.
FIRST_ORDERS = 30
#: Feed events per pass: small, so that a kill leaves part of the feed behind it.
BATCH = 6
#: The chance that the test kills a relay at a hold rather than letting it go on.
KILL_CHANCE = 1 / 2
#: Relays started ahead, waiting for their turn.
SPARES = 3
#: The stream's duplicate window, in seconds (see the module's docstring).
DUPLICATE_WINDOW_S = 1.0
#: How long a relay may take to say anything before the test adds events (it has caught
#: up) or, much longer, gives up on it.
QUIET_S = 1.5
GIVE_UP_S = 60.0
#: Silences in a row after which a relay is taken to be stuck.
MAX_QUIET = 8
SEED = 20261202
T0 = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)


# --- the database ------------------------------------------------------------------------


@contextmanager
def _postgres() -> Iterator[str]:
    """A fresh schema, dropped afterwards: runs never collide."""
    with scratch_schema("relay") as url:
        yield url


#: The partitions of the partitioned PostgreSQL layout (``shouhou db upgrade --partitions``).
PARTITIONS = 8


@pytest.fixture(params=["sqlite", "postgresql", "partitioned"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    with _postgres() as url:
        if request.param == "partitioned":
            sql = db_engine.create(url)
            try:
                db_engine.upgrade(sql, partitions=PARTITIONS)
            finally:
                sql.dispose()
        yield url


class Marketplace:
    """Orders and cases written through the library, a few at a time."""

    def __init__(self, url: str, rng: random.Random) -> None:
        self.clock = VirtualClock(T0)
        self.engine = Engine.open(url, clock=self.clock)
        self.rng = rng
        self.orders: list[str] = []

    def close(self) -> None:
        self.engine.close()

    def place(self, count: int) -> None:
        """``count`` shipped orders, each with a refund case (ten events an order)."""
        for _ in range(count):
            n = len(self.orders)
            order = f"o.{n}" if n % 5 == 0 else f"o_{n}"  # ids whose subject tokens differ
            self.engine.place_order(
                Order(
                    id=order,
                    shop=f"s{n % 3}",
                    buyer=f"b{n}",
                    total=1_000 + n,
                    created_at=self.clock.now() - timedelta(hours=3),
                    paid_at=self.clock.now() - timedelta(hours=2),
                    shipped_at=self.clock.now() - timedelta(hours=1),
                )
            )
            apply = self.engine.build(
                "apply",
                actor=f"buyer:b{n}",
                target={"order_id": order},
                params={
                    "kind": "refund_only",
                    "reason": "not_received",
                    "amount": 1_000 + n,
                    "case_id": f"c{n}",
                },
            )
            self.engine.execute(apply)
            self.orders.append(order)
            self.clock.advance(timedelta(seconds=1))

    def note(self, count: int) -> None:
        """``count`` service-log notes, one event each, on orders picked at random."""
        for _ in range(count):
            n = self.rng.randrange(len(self.orders))
            note = self.engine.build(
                "note",
                actor=f"seller:s{n % 3}",
                target={"case_id": f"c{n}"},
                params={"step": NoteStep.CONTACTED.value, "text": "called the buyer"},
            )
            self.engine.execute(note)

    def more(self) -> None:
        self.place(2)
        self.note(12)

    def feed(self, prefix: str) -> list[tuple[int, int, str]]:
        """Every event of the feed: (id, position in its bucket, subject), in each bucket's
        position order. Each is in its order's bucket."""
        uow: ApiUnitOfWork
        while True:  # one bucket's positions per transaction
            with self.engine.uow_factory() as uow:
                given = uow.webhooks.sequence(1000)
                uow.commit()
            if not given:
                break
        found: list[OutboxEvent] = []
        after: dict[int, int] = {}
        with self.engine.uow_factory() as uow:
            while batch := uow.webhooks.events(after=after, limit=1000):
                for e in batch:
                    assert e.bucket == bucket_of(order_of(e), self.engine.buckets), e
                    assert e.position == after.get(e.bucket, 0) + 1, e  # no gap, no repeat
                    after[e.bucket] = e.position
                found += batch
        return [(e.id, e.position or 0, subject(prefix, e)) for e in found]

    def heads(self) -> dict[int, int]:
        """Each bucket's last feed position (buckets with events only)."""
        with self.engine.uow_factory() as uow:
            return relay_reached(uow.webhooks.events(after={}, limit=1_000_000))

    def cursor(self, stream: str) -> dict[int, int]:
        with self.engine.uow_factory() as uow:
            return uow.relay.positions(stream)


# --- the stream --------------------------------------------------------------------------

PREFIX = "relaytest"


@dataclass
class Stored:
    seq: int
    subject: str
    msg_id: str
    position: int
    body_id: str


def _nats(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _connect() -> Any:
    import nats

    try:
        return await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
    except Exception as exc:
        unavailable(f"NATS at {NATS_URL} is unreachable: {exc!r}")


async def _create(stream: str, window_s: float = DUPLICATE_WINDOW_S) -> None:
    from nats.js.api import StreamConfig

    nc = await _connect()
    try:
        config = StreamConfig(
            name=stream, subjects=[f"{PREFIX}.{stream}.>"], duplicate_window=window_s
        )
        await nc.jetstream().add_stream(config)
    finally:
        await nc.close()


async def _delete(stream: str) -> None:
    nc = await _connect()
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


async def _read_all(stream: str) -> list[Stored]:
    nc = await _connect()
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            headers = msg.headers or {}
            found.append(
                Stored(
                    seq=seq,
                    subject=msg.subject or "",
                    msg_id=headers.get("Nats-Msg-Id", ""),
                    position=int(headers.get(POSITION, 0)),
                    body_id=json.loads(msg.data or b"{}")["id"],
                )
            )
        return found
    finally:
        await nc.close()


@contextmanager
def a_stream(window_s: float) -> Iterator[str]:
    """A stream of its own (subjects ``relaytest.<stream>.>``), deleted afterwards."""
    name = f"RELAYTEST_{uuid.uuid4().hex[:10].upper()}"
    _nats(_create(name, window_s))
    try:
        yield name
    finally:
        _nats(_delete(name))


@pytest.fixture
def stream() -> Iterator[str]:
    with a_stream(DUPLICATE_WINDOW_S) as name:
        yield name


# --- relay processes ---------------------------------------------------------------------
# A relay process takes a second to start on a busy machine, nearly all of it importing
# Python modules; a hundred kills on two databases would spend minutes on that. So the
# relays are forked from one process that has imported shouhou once (this file run as a
# script, below): each is a process of its own running ``shouhou.cli.main()`` with the
# relay's arguments, its stdin and stdout on named pipes, SIGKILLed like any other.


def relay_argv(url: str, stream: str, *more: str) -> list[str]:
    return [
        "relay",
        "--db",
        url,
        "--nats",
        NATS_URL,
        "--stream",
        stream,
        "--prefix",
        f"{PREFIX}.{stream}",
        *more,
    ]


def zygote() -> None:
    """Read one JSON command a line; fork a relay for each, answer its pid."""
    import shouhou.cli
    import shouhou.db.api_uow
    import shouhou.worker.relay  # imported once, here, for every child

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the system
    commands = os.fdopen(0, "rb", buffering=0)
    while line := commands.readline():
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.dup2(os.open(command["stdin"], os.O_RDONLY), 0)
                os.dup2(os.open(command["stdout"], os.O_WRONLY), 1)
                os.dup2(os.open(command["stderr"], os.O_WRONLY | os.O_APPEND), 2)
                sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                os.environ.update(command["env"])
                sys.argv = ["shouhou", *command["argv"]]
                try:
                    shouhou.cli.main()
                    status = 0
                except SystemExit as exc:
                    status = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
                os._exit(status)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


class Zygote:
    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("ab") as errors:
            # run as a script, this file imports pgscratch from the tests folder
            tests = str(Path(__file__).resolve().parent.parent)
            path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)
            self.process = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env={**os.environ, "PYTHONPATH": path},
            )

    def fork(self, argv: list[str], fifos: Path) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        command = {
            "argv": argv,
            "env": {"SHOUHOU_RELAY_HOLD": "stdin"},
            "stdin": str(fifos / "in"),
            "stdout": str(fifos / "out"),
            "stderr": str(self.log),
        }
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


class RelayProcess:
    """``shouhou relay`` with the hold hook, forked by the zygote; its stdout read line by
    line."""

    def __init__(self, zygote: Zygote, argv: list[str], fifos: Path) -> None:
        fifos.mkdir()
        os.mkfifo(fifos / "in")
        os.mkfifo(fifos / "out")
        self.pid = zygote.fork(argv, fifos)
        # the order the child opens them in: its stdin, then its stdout
        self.stdin = (fifos / "in").open("wb", buffering=0)
        self.stdout = (fifos / "out").open("rb")
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.killed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)  # the process ended

    def said(self, timeout: float) -> dict[str, Any]:
        """The next line, or ``{}`` after ``timeout`` seconds of silence; fails if the relay
        ended by itself."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return {}
        if line is None:
            pytest.fail("a relay ended by itself (see relay.log)")
        return line

    def go_on(self) -> None:
        self.stdin.write(b"\n")

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.lines.get(timeout=GIVE_UP_S) is None  # its stdout closed: it is gone
        self.close()

    def close(self) -> None:
        if not self.killed:
            self.killed = True
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.stdin.close()
            self.stdout.close()

    def wait_ready(self) -> None:
        line = self.said(GIVE_UP_S)
        assert line and "ready" in line, line


@dataclass
class Tally:
    kills: int = 0
    #: Kills after the stream acknowledged messages of a pass whose batch was not marked.
    in_window: int = 0
    holds: int = 0
    published: int = 0
    duplicates: int = 0
    already: int = 0
    refused: int = 0
    quiet: int = 0
    passes: list[dict[str, int]] = field(default_factory=list)

    def count(self, done: dict[str, int]) -> None:
        for key in ("published", "duplicates", "already", "refused"):
            setattr(self, key, getattr(self, key) + done[key])


def run_one_relay(
    relay: RelayProcess, shop: Marketplace, stream: str, rng: random.Random, tally: Tally
) -> None:
    """Let ``relay`` work until the test kills it at a hold."""
    relay.go_on()
    quiet = 0
    while True:
        line = relay.said(QUIET_S)
        if line is None or line == {}:  # caught up: give it more to do
            tally.quiet += 1
            quiet += 1
            assert quiet < MAX_QUIET, "the relay makes no progress (see relay.log)"
            shop.more()
            continue
        quiet = 0
        if "held" not in line:  # a pass ended: counted, and more events if it caught up
            tally.count(line)
            tally.passes.append(line)
            if line["read"] < BATCH:
                shop.more()
            continue
        tally.holds += 1
        held = line["held"]
        if rng.random() >= KILL_CHANCE:
            relay.go_on()
            continue
        relay.kill()
        tally.kills += 1
        tally.count(held)
        # cursors only move on: the same sum is the same cursor in every bucket
        unmarked = sum(shop.cursor(stream).values()) == held["position"]
        if unmarked and held["published"] + held["duplicates"] + held["already"] > 0:
            tally.in_window += 1
        return


def finish(url: str, stream: str, log: IO[bytes]) -> str:
    """Run ``shouhou relay --once`` as a process started the ordinary way, to the end."""
    done = subprocess.run(
        [sys.executable, "-m", "shouhou", *relay_argv(url, stream, "--once")],
        stdout=subprocess.PIPE,
        stderr=log,
        timeout=GIVE_UP_S,
        check=False,
    )
    assert done.returncode == 0, done
    return done.stdout.decode()


def test_a_relay_killed_100_times_between_publishing_and_marking_leaves_each_event_once_in_order(
    db_url: str, stream: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    shop = Marketplace(db_url, rng)
    tally = Tally()
    try:
        shop.place(FIRST_ORDERS)
        log = tmp_path / "relay.log"
        forks = Zygote(log)
        argv = relay_argv(db_url, stream, "--batch", str(BATCH), "--interval", "0.05")
        started = 0

        def start() -> RelayProcess:
            nonlocal started
            started += 1
            return RelayProcess(forks, argv, tmp_path / f"relay{started}")

        spares = [start() for _ in range(SPARES)]
        try:
            while tally.kills < KILLS:
                relay = spares.pop(0)
                spares.append(start())
                relay.wait_ready()
                run_one_relay(relay, shop, stream, rng, tally)
        finally:
            for spare in spares:
                spare.close()
            forks.close()
        shop.more()  # and some the last relay has never seen
        with log.open("ab") as out:
            last = [json.loads(line) for line in finish(db_url, stream, out).splitlines()]
        feed = shop.feed(f"{PREFIX}.{stream}")
        heads = shop.heads()
        cursor = shop.cursor(stream)
    finally:
        shop.close()
    for done in last:
        tally.count(done)
    stored = _nats(_read_all(stream))
    print(
        f"{tally.kills} kills, {tally.in_window} between publishing and marking, "
        f"{tally.holds} holds; {len(feed)} events, {len(stored)} messages; "
        f"{tally.published} published, {tally.duplicates} dropped as duplicates, "
        f"{tally.already} found in the stream on a re-read, {tally.refused} refused; "
        f"{tally.quiet} silences"
    )

    assert tally.kills == KILLS
    assert tally.in_window == KILLS  # every kill hit the window
    assert cursor == heads and sum(heads.values()) == len(feed) and len(heads) > 1
    # every event exactly once, as itself
    assert [m.msg_id for m in stored if m.msg_id != m.body_id] == []
    assert sorted(m.msg_id for m in stored) == sorted(f"evt_{i}" for i, _, _ in feed)
    # on its order's subject, in feed order: each subject holds its order's events in order
    by_subject: dict[str, list[int]] = {}
    for m in stored:
        by_subject.setdefault(m.subject, []).append(m.position)
    wanted: dict[str, list[int]] = {}
    for _, position, to in feed:
        wanted.setdefault(to, []).append(position)
    assert by_subject == wanted
    # each kill left published events unmarked: the relays after it met them again, and
    # the stream dropped them or the relay found them there; none was stored twice
    assert tally.published == len(feed)
    assert tally.duplicates + tally.already >= KILLS


# --- the two ways a batch published again is kept out -------------------------------------


def _relay_twice(tmp_path: Path, stream: str, pause_s: float) -> list[dict[str, Any]]:
    """Publish 10 orders' events, move the cursor back to 0 (as a relay killed before it
    marked anything leaves it), wait ``pause_s``, publish again: the second run's passes."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    shop = Marketplace(url, random.Random(SEED))
    try:
        shop.place(10)
        with (tmp_path / "relay.log").open("ab") as log:
            first = [json.loads(line) for line in finish(url, stream, log).splitlines()]
            assert sum(p["published"] for p in first) == 100
            with closing(sqlite3.connect(tmp_path / "shop.db")) as conn, conn:
                conn.execute("UPDATE relay_cursors SET position = 0")
            time.sleep(pause_s)
            again = [json.loads(line) for line in finish(url, stream, log).splitlines()]
        feed = shop.feed(f"{PREFIX}.{stream}")
    finally:
        shop.close()
    stored = _nats(_read_all(stream))
    assert sorted(m.msg_id for m in stored) == sorted(f"evt_{i}" for i, _, _ in feed)
    return again


def test_a_batch_published_again_within_the_duplicate_window_is_dropped_by_its_msg_id(
    tmp_path: Path,
) -> None:
    with a_stream(120.0) as stream:
        again = _relay_twice(tmp_path, stream, 0)
    assert sum(p["duplicates"] for p in again) == 100
    assert sum(p["published"] + p["already"] + p["refused"] for p in again) == 0


def test_a_batch_published_again_after_the_window_is_refused_and_found_in_the_stream(
    tmp_path: Path,
) -> None:
    with a_stream(0.1) as stream:  # the shortest window JetStream takes
        again = _relay_twice(tmp_path, stream, 0.5)
    # the first event of each order is refused (the relay, new, expects none on the
    # subject); the subject's last message is read, and every event up to it is skipped
    assert sum(p["refused"] for p in again) == 10
    assert sum(p["already"] for p in again) == 100
    assert sum(p["published"] + p["duplicates"] for p in again) == 0


# --- the command in each language -------------------------------------------------------


def test_the_relays_help_and_its_refusals_read_in_the_language_asked_for(tmp_path: Path) -> None:
    def shouhou(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shouhou", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "200", **env},
            check=False,
        )

    hant = shouhou("--lang", "zh-Hant", "relay", "--help")
    assert hant.returncode == 0, hant.stderr
    assert "每個訂單一個主題" in hant.stdout and "每一輪發布並標記的事件數" in hant.stdout
    hans = shouhou("--lang", "zh", "relay", "--help")
    assert "每个订单一个主题" in hans.stdout and "发布当前已提交的事件" in hans.stdout
    assert "one subject per order" in shouhou("--lang", "en", "relay", "--help").stdout
    # the list of commands is shown before --lang is read: in $SHOUHOU_LANG's language
    listed = shouhou("--help", SHOUHOU_LANG="zh-Hant")
    assert "把每個已提交的事件發布到 NATS JetStream" in listed.stdout
    # a database of an older schema: refused, in the language asked for, nothing migrated
    url = f"sqlite:///{tmp_path / 'old.db'}"
    sql = db_engine.create(url)
    try:
        db_engine.upgrade(sql, "0010")
    finally:
        sql.dispose()
    old = shouhou("--lang", "zh-Hant", "relay", "--db", url, "--once")
    assert old.returncode == 1
    assert "的資料庫結構版本是 0010, 不是" in old.stderr, old.stderr
    assert "shouhou db upgrade" in old.stderr
    # no database at all: the same refusal as every reading command, translated, nothing created
    missing = tmp_path / "missing.db"
    nothing = shouhou("--lang", "zh-Hant", "relay", "--db", f"sqlite:///{missing}", "--once")
    assert nothing.returncode == 1
    assert "沒有數據庫" in nothing.stderr, nothing.stderr
    assert not missing.exists()


if __name__ == "__main__":
    zygote()
