"""Webhooks delivered by the worker to a real HTTP receiver on 127.0.0.1.

The receivers are on the loopback, which webhooks may not reach: these tests allow-list
127.0.0.1 on the server and the worker, as a developer would (SHOUHOU_WEBHOOK_ALLOW_HOSTS).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from apiserver import ApiServer, serving

from shouhou import webhooks
from shouhou.domain.model import Deadline
from shouhou.services.ports import Attempt
from shouhou.settings import Settings
from shouhou.worker import Worker, WorkerSettings

#: What these tests allow-list: the receivers' address.
LOCAL = ("127.0.0.1",)
#: What a failing receiver answers with.
SECRET = b"Traceback: db password is hunter2"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers ``fail_next`` of them with 500 first."""

    url: str
    got: list[Received] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.got]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with state.lock:
                failing = state.fail_next > 0
                state.fail_next -= 1 if failing else 0
                state.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            if failing:  # what a receiver says is its own: it must not show in our API
                self.send_response(500)
                self.send_header("content-length", str(len(SECRET)))
                self.end_headers()
                self.wfile.write(SECRET)
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def api(tmp_path: Path, migrated_db: Path) -> Iterator[ApiServer]:
    """A server that accepts webhooks to the allow-listed loopback."""
    with serving(tmp_path / "api.db", migrated_db, Settings(webhook_allow_hosts=LOCAL)) as server:
        yield server


@pytest.fixture
def worker(api: ApiServer) -> Iterator[Worker]:
    runner = Worker(api.engine, WorkerSettings(approaching=timedelta(hours=24), allow_hosts=LOCAL))
    try:
        yield runner
    finally:
        runner.close()


def subscribe(api: ApiServer, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    response = api.client("platform").post("/v1/webhooks/endpoints", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_case_events_arrive_signed_and_verifiable(
    api: ApiServer, receiver: Receiver, worker: Worker
) -> None:
    endpoint = subscribe(api, receiver.url)
    api.order("o1")
    case_id = api.case("o1")["id"]

    tick = worker.run_once(api.clock.now())

    assert tick.delivered == len(receiver.got) > 0
    assert "case.applied" in receiver.types()
    assert "deadline.scheduled" in receiver.types()
    assert "order.placed" in receiver.types()
    applied = next(r for r in receiver.got if r.event["type"] == "case.applied")
    assert applied.event["data"]["case"] == case_id
    assert applied.event["data"]["status"] == "awaiting_seller"
    assert applied.event["data"]["event"]["amount"] == 19900
    assert applied.headers["webhook-id"] == applied.event["id"]
    now = int(api.clock.now().timestamp())
    for one in receiver.got:
        webhooks.verify(endpoint["secret"], one.headers, one.body, now=now)
    with pytest.raises(webhooks.WebhookVerificationError):
        webhooks.verify(endpoint["secret"], applied.headers, applied.body + b" ", now=now)


def test_an_endpoint_gets_only_the_events_it_subscribed_to(
    api: ApiServer, receiver: Receiver, worker: Worker
) -> None:
    subscribe(api, receiver.url, ["case.*"])
    api.order("o1")
    api.case("o1")

    worker.run_once(api.clock.now())

    assert receiver.types()
    assert all(t.startswith("case.") for t in receiver.types())


def test_a_failing_receiver_is_retried_with_exponential_backoff_and_every_attempt_logged(
    api: ApiServer, receiver: Receiver, worker: Worker
) -> None:
    subscribe(api, receiver.url, ["order.placed"])
    receiver.fail_next = 2
    api.order("o1")
    start = api.clock.now()
    platform = api.client("platform")

    worker.run_once(start)
    worker.run_once(start + timedelta(seconds=29))  # too early for the first retry
    first = platform.get("/v1/webhooks/deliveries").json()["items"][0]
    worker.run_once(start + timedelta(seconds=30))
    worker.run_once(start + timedelta(seconds=30 + 59))  # too early for the second
    worker.run_once(start + timedelta(seconds=30 + 60))

    assert first["status"] == "pending"
    assert datetime.fromisoformat(first["next_attempt_at"]) == start + timedelta(seconds=30)
    assert len(receiver.got) == 3
    detail = platform.get(f"/v1/webhooks/deliveries/{first['id']}").json()
    assert detail["status"] == "delivered"
    assert [(a["number"], a["status_code"]) for a in detail["attempt_log"]] == [
        (1, 500),
        (2, 500),
        (3, 204),
    ]
    assert [a["error"] for a in detail["attempt_log"]] == ["HTTP 500", "HTTP 500", None]
    assert "hunter2" not in platform.get("/v1/webhooks/deliveries").text
    assert first["last_error"] == "HTTP 500"
    # the same event id on every retry lets the receiver drop duplicates
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 1


def test_a_delivery_that_keeps_failing_is_marked_failed_then_replayed_by_event_id(
    api: ApiServer, receiver: Receiver
) -> None:
    worker = Worker(api.engine, WorkerSettings(max_attempts=2, allow_hosts=LOCAL))
    subscribe(api, receiver.url, ["order.placed"])
    receiver.fail_next = 5
    api.order("o1")
    start = api.clock.now()
    platform = api.client("platform")
    try:
        worker.run_once(start)
        worker.run_once(start + timedelta(hours=1))
        failed = platform.get("/v1/webhooks/deliveries", params={"status": "failed"}).json()
        receiver.fail_next = 0
        event_id = failed["items"][0]["event"]
        replay = platform.post(f"/v1/webhooks/events/{event_id}/replay")
        worker.run_once(start + timedelta(hours=1))
    finally:
        worker.close()

    assert len(failed["items"]) == 1
    assert replay.status_code == 202
    delivered = platform.get("/v1/webhooks/deliveries", params={"status": "delivered"}).json()
    assert [d["event"] for d in delivered["items"]] == [event_id]
    assert receiver.got[-1].event["id"] == event_id
    assert len(receiver.got) == 3


def test_a_receiver_that_is_down_counts_as_a_failed_attempt(api: ApiServer, worker: Worker) -> None:
    subscribe(api, "http://127.0.0.1:9/nothing-listens-here", ["order.placed"])
    api.order("o1")

    tick = worker.run_once(api.clock.now())

    assert tick.failed_attempts == 1
    item = api.client("platform").get("/v1/webhooks/deliveries").json()["items"][0]
    assert item["status"] == "pending"
    assert item["last_status_code"] is None
    assert "Connect" in item["last_error"]


def test_deadline_approaching_is_sent_once_a_day_before_and_fired_when_due(
    api: ApiServer, receiver: Receiver, worker: Worker
) -> None:
    subscribe(api, receiver.url, ["deadline.*"])
    api.order("o1")
    case = api.case("o1")
    due_at = case["deadline"]["due_at"]
    due = api.clock.now() + timedelta(days=5)  # seller_respond is 5 days

    worker.run_once(due - timedelta(hours=25))
    before = receiver.types().count("deadline.approaching")
    worker.run_once(due - timedelta(hours=24))
    worker.run_once(due - timedelta(hours=2))
    api.clock.set(due)
    worker.run_once(due)

    approaching = [r.event for r in receiver.got if r.event["type"] == "deadline.approaching"]
    assert before == 0
    case_notices = [a for a in approaching if a["subject"]["type"] == "case"]
    assert len(case_notices) == 1
    assert case_notices[0]["data"]["deadline"]["name"] == "seller_respond"
    notice_due = case_notices[0]["data"]["deadline"]["due_at"]
    assert datetime.fromisoformat(notice_due) == datetime.fromisoformat(due_at)
    assert case_notices[0]["data"]["buyer"] == "b1"
    fired = [r.event for r in receiver.got if r.event["type"] == "deadline.fired"]
    assert any(f["data"]["event"]["name"] == "seller_respond" for f in fired)


def test_a_deadline_another_worker_announced_meanwhile_is_announced_once(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shouhou.db.webhooks import SqlWebhooks
    from shouhou.services.webhooks import announce_approaching

    api.order("o1")
    api.case("o1")
    soon = api.clock.now() + timedelta(days=4, hours=1)  # a day before seller_respond
    with api.engine.uow_factory() as uow:  # what a second worker read before the first wrote
        stale = uow.webhooks.approaching(soon, soon + timedelta(hours=24), 10)
    first = announce_approaching(api.engine.uow_factory(), soon, timedelta(hours=24), 10)
    monkeypatch.setattr(SqlWebhooks, "approaching", lambda *args: stale)
    second = announce_approaching(api.engine.uow_factory(), soon, timedelta(hours=24), 10)
    monkeypatch.undo()

    events = api.client("platform").get("/v1/webhooks/events", params={"limit": 200}).json()
    notices = [e for e in events["items"] if e["type"] == "deadline.approaching"]
    assert len(stale) == first == len(notices) > 0
    assert second == 0


def test_a_refused_action_writes_nothing_to_the_outbox(api: ApiServer) -> None:
    api.order("o1")
    case_id = api.case("o1")["id"]
    platform = api.client("platform")
    before = platform.get("/v1/webhooks/events", params={"limit": 200}).json()["items"]

    refused = api.client("buyer:b1").post(f"/v1/cases/{case_id}/actions/confirm_received")

    after = platform.get("/v1/webhooks/events", params={"limit": 200}).json()["items"]
    assert refused.status_code in (403, 409)
    assert after == before
    assert [e["type"] for e in after][:1] == ["order.placed"]


def test_the_outbox_pages_and_events_read_by_id(api: ApiServer) -> None:
    api.order("o1")
    platform = api.client("platform")

    first = platform.get("/v1/webhooks/events", params={"limit": 2}).json()
    second = platform.get("/v1/webhooks/events", params={"cursor": first["next_cursor"]}).json()
    one = platform.get(f"/v1/webhooks/events/{first['items'][0]['id']}").json()

    assert len(first["items"]) == 2
    assert second["items"][0]["id"] != first["items"][-1]["id"]
    assert one == first["items"][0]
    assert platform.get("/v1/webhooks/events/evt_999999").status_code == 404


@pytest.mark.parametrize(
    ("path", "parameter"),
    [("/v1/webhooks/events", "cursor"), ("/v1/webhooks/deliveries", "event")],
)
def test_an_event_parameter_that_is_no_event_id_is_invalid(
    api: ApiServer, path: str, parameter: str
) -> None:
    response = api.client("platform").get(path, params={parameter: "garbage"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"


def test_a_deadline_that_cannot_fire_is_set_aside_and_the_pass_goes_on(
    api: ApiServer, receiver: Receiver, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    subscribe(api, receiver.url, ["order.placed"])
    now = api.clock.now()
    ghost = Deadline(
        name="seller_respond",
        due_at=now - timedelta(days=1),
        on_expiry="refund",
        rule_id="tmall-standard/seller_respond",
        policy="tmall-standard@1",
        started_at=now - timedelta(days=6),
        duration=timedelta(days=5),
    )
    with api.engine.uow_factory() as uow:  # a pending deadline whose case does not exist
        uow.deadlines.sync("case", "ghost", ghost)
        uow.commit()
    api.order("o1")

    first = worker.run_once(now)
    second = worker.run_once(now)

    assert [f.due.subject_id for f in first.set_aside + second.set_aside] == ["ghost"]
    assert "ghost" in caplog.text and "set aside" in caplog.text
    assert receiver.types() == ["order.placed"]
    with api.engine.sql_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, error FROM deadlines WHERE subject_id = 'ghost'")
        ).one()
    assert row.status == "failed" and "NotFound" in row.error


def test_an_unexpected_error_sending_one_delivery_is_its_failed_attempt(api: ApiServer) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the TLS library fell over")

    runner = Worker(api.engine, http=httpx.Client(transport=httpx.MockTransport(broken)))
    subscribe(api, "http://receiver.example/hooks", ["order.placed"])
    api.order("o1")
    try:
        tick = runner.run_once(api.clock.now())
    finally:
        runner.close()

    assert (tick.delivered, tick.failed_attempts) == (0, 1)
    (pending,) = api.client("platform").get("/v1/webhooks/deliveries").json()["items"]
    assert pending["status"] == "pending" and "RuntimeError" in pending["last_error"]


def test_a_delivery_whose_event_cannot_be_read_fails_and_the_others_go_out(
    api: ApiServer, receiver: Receiver, worker: Worker
) -> None:
    subscribe(api, receiver.url, ["order.placed"])
    api.order("o1")
    api.order("o2")
    worker.dispatch(api.clock.now())
    with api.engine.sql_engine.begin() as conn:  # as if its event class were renamed since
        first = conn.execute(sa.text("SELECT id, data FROM outbox ORDER BY id")).first()
        assert first is not None
        data = first.data if isinstance(first.data, dict) else json.loads(first.data)
        data["stored_event"]["type"] = "RenamedSince"
        conn.execute(
            sa.text("UPDATE outbox SET data = :data WHERE id = :id"),
            {"data": json.dumps(data), "id": first.id},
        )

    worker.run_once(api.clock.now())

    assert [r.headers["webhook-id"] for r in receiver.got] != [f"evt_{first.id}"]
    assert len(receiver.got) == 1
    failed = api.client("platform").get("/v1/webhooks/deliveries", params={"status": "failed"})
    assert [d["last_error"][:25] for d in failed.json()["items"]] == ["the event cannot be read:"]


def test_an_endpoint_url_nothing_can_be_sent_to_fails_its_deliveries_at_once(
    api: ApiServer, worker: Worker
) -> None:
    refused = api.client("platform").post(
        "/v1/webhooks/endpoints", json={"url": "http://[::1/hooks"}
    )
    endpoint = subscribe(api, "http://example.invalid/hooks", ["order.placed"])
    with api.engine.sql_engine.begin() as conn:  # stored before URLs were checked
        conn.execute(
            sa.text("UPDATE webhook_endpoints SET url = 'http://[::1/hooks' WHERE id = :id"),
            {"id": endpoint["id"]},
        )
    api.order("o1")

    tick = worker.run_once(api.clock.now())

    assert refused.status_code == 422
    assert tick.failed_attempts == 1
    failed = api.client("platform").get("/v1/webhooks/deliveries", params={"status": "failed"})
    assert [d["attempts"] for d in failed.json()["items"]] == [1]


def test_a_worker_whose_lease_ran_out_records_nothing_over_the_next_one(
    api: ApiServer, receiver: Receiver
) -> None:
    subscribe(api, receiver.url, ["order.placed"])
    api.order("o1")
    lease = timedelta(minutes=2)
    t0 = api.clock.now()
    with api.engine.uow_factory() as uow:
        uow.webhooks.dispatch(t0, 10)
        (slow,) = uow.webhooks.claim(t0, lease, 10)
        uow.commit()
    later = t0 + lease + timedelta(seconds=1)
    with api.engine.uow_factory() as uow:
        (fast,) = uow.webhooks.claim(later, lease, 10)
        done = Attempt(number=1, at=later, status_code=204, error=None, duration_ms=5)
        assert uow.webhooks.record(
            fast.delivery.id,
            done,
            status="delivered",
            next_attempt_at=later,
            held_until=fast.lease_until,
        )
        uow.commit()
    with api.engine.uow_factory() as uow:
        timed_out = Attempt(number=1, at=t0, status_code=None, error="ReadTimeout", duration_ms=1)
        recorded = uow.webhooks.record(
            slow.delivery.id,
            timed_out,
            status="pending",
            next_attempt_at=later,
            held_until=slow.lease_until,
        )
        uow.commit()
        delivery = uow.webhooks.delivery(slow.delivery.id)

    assert fast.delivery.id == slow.delivery.id
    assert not recorded
    assert delivery is not None and delivery.status == "delivered"


def test_a_message_is_signed_at_the_time_it_is_sent(
    api: ApiServer, receiver: Receiver, worker: Worker
) -> None:
    endpoint = subscribe(api, receiver.url, ["order.placed"])
    api.order("o1")
    started = api.clock.now()
    worker.dispatch(started)
    api.clock.advance(timedelta(minutes=10))  # the pass spent a while on deadlines

    worker.deliver(started)

    (sent,) = receiver.got
    assert int(sent.headers["webhook-timestamp"]) == int(api.clock.now().timestamp())
    webhooks.verify(
        endpoint["secret"], sent.headers, sent.body, now=int(api.clock.now().timestamp())
    )


def test_a_disabled_endpoint_gets_nothing_new(
    api: ApiServer, receiver: Receiver, worker: Worker
) -> None:
    endpoint = subscribe(api, receiver.url)
    platform = api.client("platform")

    disabled = platform.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
    api.order("o1")
    worker.run_once(api.clock.now())

    assert disabled.status_code == 200
    assert disabled.json()["disabled_at"] is not None
    assert receiver.got == []


def test_the_worker_forgets_old_rows_in_chunks_and_keeps_what_a_replay_needs(
    api: ApiServer, receiver: Receiver
) -> None:
    settings = WorkerSettings(max_attempts=1, purge_batch=2, purge_chunks=1, allow_hosts=LOCAL)
    worker = Worker(api.engine, settings)
    subscribe(api, receiver.url, ["order.placed"])
    receiver.fail_next = 1  # o1's order.placed fails, and with one attempt allowed, for good
    api.order("o1")
    api.order("o2")
    case_id = api.case("o2", kind="refund_only")["id"]
    start = api.clock.now()
    platform = api.client("platform")
    due = start + timedelta(days=5)  # the seller never answers: refunded when this passes
    try:
        worker.run_once(start)
        api.clock.set(due)
        worker.run_once(due)
        events = platform.get("/v1/webhooks/events", params={"limit": 200}).json()["items"]
        deliveries = platform.get("/v1/webhooks/deliveries", params={"limit": 200}).json()
        worker.purge(start + timedelta(days=29))  # no event is 30 days old yet
        kept = platform.get("/v1/webhooks/events", params={"limit": 200}).json()["items"]

        later = due + timedelta(days=31)
        passes = []
        while (forgotten := worker.purge(later)) and len(passes) < 50:
            passes.append(forgotten)
        throttled = worker.purge(later + timedelta(minutes=59))
    finally:
        worker.close()

    assert len(events) > 6 and kept == events
    assert len(passes) > 2 and all(n <= 4 for n in passes)  # two kinds, two rows a chunk
    assert throttled == 0  # done: the next purge waits an hour
    left = platform.get("/v1/webhooks/events", params={"limit": 200}).json()["items"]
    failed = platform.get("/v1/webhooks/deliveries", params={"status": "failed"}).json()
    # kept: the event whose delivery failed (o1's or o2's, whichever reached the receiver
    # first), the order.placed that holds the newest delivery (o1's or o2's: events are fanned
    # out a bucket at a time), and the newest event: SQLite must never give their ids out again
    (failed_event,) = [d["event"] for d in failed["items"]]
    newest_delivery = max(deliveries["items"], key=lambda d: d["id"])["event"]
    newest = max(events, key=lambda e: int(e["id"][4:]))["id"]
    assert sorted(e["id"] for e in left) == sorted({failed_event, newest_delivery, newest})
    timeline = api.client("platform").get(f"/v1/cases/{case_id}/events").json()
    assert "DeadlineFired" in [e["type"] for e in timeline]  # history stays in the timeline


def test_a_url_that_resolves_to_the_loopback_is_refused_at_registration(
    tmp_path: Path, migrated_db: Path
) -> None:
    with serving(tmp_path / "api.db", migrated_db, Settings()) as api:  # no allow-list
        platform = api.client("platform")
        answers = {
            url: platform.post("/v1/webhooks/endpoints", json={"url": url})
            for url in (
                "http://localhost:8080/hooks",
                "http://2130706433/hooks",
                "http://[::ffff:127.0.0.1]/hooks",
                "http://169.254.169.254/latest/meta-data/",
                "http://example.com\\@127.0.0.1/hooks",
            )
        }
        listed = platform.get("/v1/webhooks/endpoints").json()
        public = platform.post(
            "/v1/webhooks/endpoints", json={"url": "HTTPS://93.184.216.34/hooks"}
        )

    assert {url: a.status_code for url, a in answers.items()} == dict.fromkeys(answers, 422)
    refused = answers["http://localhost:8080/hooks"].json()["error"]
    assert refused["code"] == "invalid"
    assert refused["message"].startswith("url: webhooks go to public addresses only: localhost is")
    assert refused["message"].endswith("a loopback address")  # 127.0.0.1 or ::1
    assert listed == []
    assert public.status_code == 201  # the scheme in capitals is still https


def _play_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    """Resolve the names in ``answers`` to their address; the next lookup sees changes."""
    from shouhou.services import destinations

    def resolve(host: str, port: int) -> list[destinations.IPAddress]:
        if host in answers:
            return [destinations.ipaddress.ip_address(answers[host])]
        literal = destinations.numeric_host(host)
        if literal is None:
            raise OSError(f"{host}: not known")
        return [literal]

    monkeypatch.setattr(destinations, "resolve", resolve)


def test_a_name_that_resolves_to_a_private_address_at_send_time_gets_nothing(
    tmp_path: Path, migrated_db: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = httpx.URL(receiver.url).port
    answers = {"hooks.partner.example": "93.184.216.34"}  # public when it is registered
    _play_resolver(monkeypatch, answers)
    with serving(tmp_path / "api.db", migrated_db, Settings()) as api:
        subscribe(api, f"http://hooks.partner.example:{port}/hooks", ["order.placed"])
        answers["hooks.partner.example"] = "127.0.0.1"  # rebound to the receiver's address
        api.order("o1")
        worker = Worker(api.engine, WorkerSettings(allow_hosts=()))
        try:
            tick = worker.run_once(api.clock.now())
        finally:
            worker.close()
        (delivery,) = api.client("platform").get("/v1/webhooks/deliveries").json()["items"]

    assert receiver.got == []
    assert tick.failed_attempts == 1
    assert delivery["status"] == "pending"  # the name may point somewhere public again
    assert delivery["last_status_code"] is None
    assert delivery["last_error"] == "refused: loopback address"


def test_a_delivery_goes_to_the_checked_address_with_the_name_as_host(
    api: ApiServer, receiver: Receiver, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = httpx.URL(receiver.url).port
    _play_resolver(monkeypatch, {"receiver.test": "127.0.0.1"})
    subscribe(api, f"http://receiver.test:{port}/hooks", ["order.placed"])
    api.order("o1")

    worker.run_once(api.clock.now())

    (got,) = receiver.got
    assert got.headers["host"] == f"receiver.test:{port}"
