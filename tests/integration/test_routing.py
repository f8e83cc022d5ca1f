"""Every statement of every writing use case touches one partition (decision 0021).

On PostgreSQL with every bucketed table ``PARTITION BY HASH (bucket)`` (8 partitions), the
writing use cases run through the REST API and the worker: orders placed and acted on, cases
applied for and acted on (with an ``Idempotency-Key``), complaints filed and ruled, deadlines
fired, ``deadline.approaching`` announced, events numbered in the feed, fanned out, delivered
and replayed. Every statement sent to the server is captured: the ones SQLAlchemy sends
(``before_cursor_execute``) and the hot path's, sent on the driver's cursor. Each is
EXPLAINed with its parameters, and the partitions in its plan are counted: at most one per
statement, and one for all the statements of a transaction. A short allow-list names the reads
that may read every bucket (they lock nothing and write nothing). No statement takes an
advisory lock or inserts a ``VALUES`` subquery. The relay's passes (reading the feed after its
cursors, marking each bucket's cursor) are among them.

PostgreSQL runs at ``$SHOUHOU_TEST_POSTGRES_URL``; skipped where no server runs, a failure in
CI.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from pgscratch import scratch_schema
from shouhou.api.app import create_app
from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import cursor as db_cursor
from shouhou.db import engine as db_engine
from shouhou.db import tables
from shouhou.services import relay
from shouhou.services.keys import create_key
from shouhou.settings import Settings
from shouhou.worker.runner import Worker, WorkerSettings

PARTITIONS = 8
T0 = datetime(2024, 3, 1, 2, tzinfo=UTC)

#: The reads that may read every bucket, each with why; they must lock nothing.
FAN_OUT_READS = {
    "the buckets of the oldest due deadlines (a worker's scan before it claims)": re.compile(
        r"^SELECT DISTINCT bucket FROM \(SELECT bucket FROM deadlines WHERE status = 'pending'"
    ),
    "which buckets have events to number or fan out (a worker's scan)": re.compile(
        r"^SELECT DISTINCT outbox\.bucket\s+FROM outbox"
    ),
    "which buckets have deliveries due (a worker's scan)": re.compile(
        r"^SELECT DISTINCT webhook_deliveries\.bucket\s+FROM webhook_deliveries"
    ),
    "deadlines about to be due, not announced yet (a worker's scan)": re.compile(
        r"FROM deadlines LEFT OUTER JOIN deadline_notices"
    ),
    "a page of the event feed (every bucket's, after the cursor's positions)": re.compile(
        r"FROM outbox\s+WHERE outbox\.position > (CASE|%\(position_1\)s)"
    ),
    "a relay's cursors of every bucket (before it reads the feed after them)": re.compile(
        r"^SELECT relay_cursors\.bucket, relay_cursors\.position\s+FROM relay_cursors"
    ),
}
#: A statement of a partitioned table's partition: ``orders_p3``.
PARTITION = re.compile(r"^(?P<table>\w+)_p(?P<number>\d+)$")
BUCKET_PARAMETER = re.compile(r"^bucket(_\d+)?$")
VALUES_SUBQUERY = re.compile(r"VALUES\s*\(\s*\(?\s*SELECT", re.IGNORECASE)


@dataclass
class Sent:
    """A statement sent to the server: in which use case and transaction, with what."""

    case: str
    transaction: int
    sql: str
    params: Any


@dataclass
class Capture:
    case: str = "setup"
    transaction: int = 0
    sent: list[Sent] = field(default_factory=list)

    def add(self, sql: str, params: Any, many: bool = False) -> None:
        for one in params if many else [params]:
            self.sent.append(Sent(self.case, self.transaction, sql, one))

    def ended(self, *_: Any) -> None:
        self.transaction += 1


class Recording:
    """The driver's cursor, telling ``capture`` each statement before running it."""

    def __init__(self, cursor: Any, capture: Capture) -> None:
        self._cursor = cursor
        self._capture = capture

    def execute(self, sql: str, params: Any = None) -> Any:
        self._capture.add(sql, params)
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        self._capture.add(sql, rows, many=True)
        return self._cursor.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, dropped afterwards."""
    with scratch_schema("routing") as fresh:
        yield fresh


def _run_use_cases(url: str, capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    sql = db_engine.create(url)
    db_engine.upgrade(sql, partitions=PARTITIONS)
    db_engine.dispose(sql)
    clock = VirtualClock(T0)
    engine = Engine.open(url, clock=clock, migrate=False)
    assert engine.sql_engine is not None
    tokens = {
        who: create_key(engine.uow_factory(), who, who, T0)[1]
        for who in ("platform", "buyer:b1", "buyer:b2", "seller:s1", "agent:a1")
    }

    recorded = db_cursor.Cursor.__init__

    def recording(self: db_cursor.Cursor, conn: Any, dialect: Any) -> None:
        recorded(self, conn, dialect)
        self.cursor = Recording(self.cursor, capture)

    monkeypatch.setattr(db_cursor.Cursor, "__init__", recording)
    sa.event.listen(
        engine.sql_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, params, _ctx, many: capture.add(statement, params, many),
    )
    for ending in ("commit", "rollback"):
        sa.event.listen(engine.sql_engine, ending, capture.ended)

    app = create_app(engine, settings=Settings.from_env())

    def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def call(case: str, who: str, method: str, path: str, **kwargs: Any) -> Any:
        capture.case = case
        headers = {"Authorization": f"Bearer {tokens[who]}", **kwargs.pop("headers", {})}
        answer = request(method, path, headers=headers, **kwargs)
        assert answer.status_code < 300, (case, answer.text)
        return answer.json() if answer.content else None

    def order(order_id: str, **times: str) -> None:
        body = {"id": order_id, "shop": "s1", "buyer": "b1", "total": 19900, **times}
        call("place an order", "platform", "POST", "/v1/orders", json=body)

    paid, shipped = (T0 - timedelta(days=2)).isoformat(), (T0 - timedelta(days=1)).isoformat()
    call(
        "add a webhook endpoint (a reference table)",
        "platform",
        "POST",
        "/v1/webhooks/endpoints",
        json={"url": "https://hooks.example.com/in", "events": ["*"]},
    )
    for n in range(1, 7):
        order(f"o{n}", paid_at=paid, shipped_at=shipped)
    order("o7", paid_at=paid)
    apply = {"order": "o1", "kind": "refund_only", "reason": "quality", "amount": 19900}
    first = call(
        "apply for a refund (with an Idempotency-Key)",
        "buyer:b1",
        "POST",
        "/v1/cases",
        json=apply,
        headers={"Idempotency-Key": "apply-o1"},
    )
    call(
        "the same request again: its answer replayed",
        "buyer:b1",
        "POST",
        "/v1/cases",
        json=apply,
        headers={"Idempotency-Key": "apply-o1"},
    )
    call(
        "a seller agrees (with an Idempotency-Key)",
        "seller:s1",
        "POST",
        f"/v1/cases/{first['id']}/actions/agree",
        json={},
        headers={"Idempotency-Key": "agree-1"},
    )
    returned = call(
        "apply for a return",
        "buyer:b1",
        "POST",
        "/v1/cases",
        json={**apply, "order": "o2", "kind": "return_refund"},
    )
    call(
        "a seller refuses",
        "seller:s1",
        "POST",
        f"/v1/cases/{returned['id']}/actions/refuse",
        json={"reason": "the goods were used"},
    )
    withdrawn = call(
        "apply, to withdraw",
        "buyer:b1",
        "POST",
        "/v1/cases",
        json={**apply, "order": "o3"},
    )
    call(
        "a buyer withdraws",
        "buyer:b1",
        "POST",
        f"/v1/cases/{withdrawn['id']}/actions/withdraw",
        json={},
    )
    call("apply, left to time out", "buyer:b1", "POST", "/v1/cases", json={**apply, "order": "o4"})
    call(
        "the platform records an order shipped",
        "platform",
        "POST",
        "/v1/orders/o7/actions/ship",
        json={"carrier": "SF", "waybill": "SF1"},
    )
    filed = call(
        "file a complaint",
        "buyer:b1",
        "POST",
        "/v1/complaints",
        json={"order": "o5", "type": "breach_of_promise", "subtype": "promise_unfulfilled"},
        headers={"Idempotency-Key": "complaint-o5"},
    )
    call(
        "an agent upholds it (penalty points to the ledger)",
        "agent:a1",
        "POST",
        f"/v1/complaints/{filed['id']}/actions/rule_complaint",
        json={"decision": "upheld", "reason": "the gift was missing"},
    )
    call(
        "set a shop's return address (a reference table)",
        "seller:s1",
        "PUT",
        "/v1/shops/s1/return-address",
        json={"return_address": "杭州市余杭区 退货仓"},
    )

    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    http = httpx.Client(transport=httpx.MockTransport(receive))
    worker = Worker(engine, WorkerSettings(allow_hosts=("hooks.example.com",)), http=http)
    later = T0 + timedelta(days=6)
    clock.set(later)
    capture.case = "announce approaching deadlines (worker)"
    worker.announce(T0)
    capture.case = "fire due deadlines (worker)"
    assert engine.run_due(later)
    capture.case = "number and fan out events (worker)"
    assert worker.dispatch(later) > 0
    capture.case = "deliver webhooks (worker)"
    delivered, _ = worker.deliver(later)
    assert delivered > 0 and sent
    feed = call(
        "read the event feed (numbers events first)", "platform", "GET", "/v1/webhooks/events"
    )
    event_id = feed["items"][0]["id"]
    call(
        "replay an event (with an Idempotency-Key)",
        "platform",
        "POST",
        f"/v1/webhooks/events/{event_id}/replay",
        headers={"Idempotency-Key": "replay-1"},
    )
    capture.case = "the relay reads the feed and marks each bucket's cursor"
    for _ in range(2):  # the second pass reads after the cursors the first one moved
        after, events = relay.pending(engine.uow_factory, "STREAM", 100)
        relay.mark(engine.uow_factory, "STREAM", relay.reached(events), later)
    assert events == [] and len(after) > 1
    capture.case = "done"
    engine.close()


def _plan_relations(plan: Any) -> list[str]:
    found = []
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.append(plan["Relation Name"])
        for value in plan.values():
            found += _plan_relations(value)
    elif isinstance(plan, list):
        for value in plan:
            found += _plan_relations(value)
    return found


def _statement(sql: str) -> bool:
    return sql.lstrip().split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE"}


def test_every_statement_of_every_writing_use_case_touches_one_partition(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = Capture()
    _run_use_cases(url, capture, monkeypatch)
    statements = [s for s in capture.sent if s.case not in ("setup", "done")]

    assert not [s.sql for s in statements if "advisory" in s.sql.lower()]
    assert not [s.sql for s in statements if VALUES_SUBQUERY.search(s.sql)]

    conninfo = sa.make_url(url).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False)) as explain:
        verdicts: Counter[str] = Counter()
        problems: list[str] = []
        per_transaction: dict[int, set[int]] = {}
        buckets_per_transaction: dict[int, set[int]] = {}
        fan_out_used: Counter[str] = Counter()
        for s in statements:
            if not _statement(s.sql):
                continue
            allowed = [why for why, pattern in FAN_OUT_READS.items() if pattern.search(s.sql)]
            if allowed:
                assert s.sql.lstrip().upper().startswith("SELECT"), s.sql
                assert "FOR UPDATE" not in s.sql.upper(), s.sql
                fan_out_used[allowed[0]] += 1
                verdicts["fan-out read (allowed)"] += 1
                continue
            (plan,) = explain.execute("EXPLAIN (FORMAT JSON) " + s.sql, s.params).fetchone()
            plan = plan if isinstance(plan, list) else json.loads(plan)
            partitions: set[int] = set()
            for name in _plan_relations(plan):
                match = PARTITION.match(name)
                if match and match["table"] in tables.BUCKETED:
                    partitions.add(int(match["number"]))
            params = s.params if isinstance(s.params, dict) else {}
            buckets = {v for k, v in params.items() if BUCKET_PARAMETER.match(k)}
            touches_bucketed = bool(partitions) or bool(
                re.search(rf"\b({'|'.join(tables.BUCKETED)})\b", s.sql)
            )
            if len(partitions) > 1 or len(buckets) > 1:
                problems.append(f"{s.case}: {len(partitions)} partitions: {s.sql} {s.params}")
                continue
            per_transaction.setdefault(s.transaction, set()).update(partitions)
            buckets_per_transaction.setdefault(s.transaction, set()).update(buckets)
            if touches_bucketed:
                verdicts["one partition"] += 1
            else:
                verdicts["reference tables only"] += 1
        for transaction, found in per_transaction.items():
            cases = {s.case for s in statements if s.transaction == transaction}
            if len(found) > 1 or len(buckets_per_transaction[transaction]) > 1:
                problems.append(f"transaction of {cases} touches partitions {sorted(found)}")

    print(f"\nrouting: {dict(verdicts)}; fan-out reads: {dict(fan_out_used)}")
    print(f"routing: {len(per_transaction)} transactions, each in one bucket")
    assert problems == []
    assert verdicts["one partition"] > 100
    assert set(fan_out_used) == set(FAN_OUT_READS)  # the allow-list holds nothing unused
