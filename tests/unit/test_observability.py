"""What an operator watches: /metrics in the Prometheus text format (requests by route template,
the deadline backlog, firings, deliveries) and JSON log lines; on the in-memory fakes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp

from shouhou.api import create_app
from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order
from shouhou.domain.values import SHANGHAI
from shouhou.observability import JsonFormatter, Telemetry, configure_logging, log_format
from shouhou.services.keys import create_key
from shouhou.services.ports import ApiUnitOfWork, Endpoint
from shouhou.services.webhooks import new_secret
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore
from shouhou.worker import Worker, WorkerSettings

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
#: When the seller_respond deadline of a case applied for at T0 falls due (5 days).
DUE = T0 + timedelta(days=5)


def _engine(store: MemoryStore | None = None) -> tuple[Engine[ApiUnitOfWork], VirtualClock]:
    store = store or MemoryStore()
    numbers = iter(range(1, 1000))
    clock = VirtualClock(T0)
    engine = Engine(
        lambda: MemoryApiUnitOfWork(store), clock=clock, new_id=lambda: f"c{next(numbers)}"
    )
    engine.place_order(
        Order(
            id="o1",
            shop="s1",
            buyer="b1",
            total=19900,
            created_at=T0 - timedelta(days=3),
            paid_at=T0 - timedelta(days=2),
            shipped_at=T0 - timedelta(days=1),
        )
    )
    cmd = engine.build(
        "apply",
        actor="buyer:b1",
        target={},
        params={"order": "o1", "kind": "refund_only", "reason": "not_received", "amount": 19900},
    )
    engine.execute(cmd)
    return engine, clock


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(scrape: str, name: str, **labels: str) -> float | None:
    return _samples(scrape).get((name, frozenset(labels.items())))


class Client:
    """Requests to an ASGI app in this process (httpx's ASGI transport), one at a time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.get(path, headers=headers)

        return asyncio.run(go())


Served = tuple[Client, Engine[ApiUnitOfWork], VirtualClock, Telemetry]


@pytest.fixture
def served() -> Iterator[Served]:
    engine, clock = _engine()
    telemetry = Telemetry()
    yield Client(create_app(engine, telemetry=telemetry)), engine, clock, telemetry


def _bearer(engine: Engine[ApiUnitOfWork], principal: str) -> dict[str, str]:
    _, token = create_key(engine.uow_factory(), principal, "test", T0)
    return {"Authorization": f"Bearer {token}"}


def test_metrics_count_and_time_requests_by_route_template_not_by_path(
    served: Served,
) -> None:
    client, engine, _, _ = served
    buyer = _bearer(engine, "buyer:b1")
    assert client.get("/v1/cases/c1", headers=buyer).status_code == 200
    assert client.get("/v1/cases/c1", headers=buyer).status_code == 200
    assert client.get("/v1/cases/nope", headers=buyer).status_code == 404
    assert client.get("/no/such/path").status_code == 404

    scrape = client.get("/metrics")  # no API key
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    case = {"method": "GET", "route": "/v1/cases/{case_id}"}
    assert _value(text, "shouhou_http_requests_total", **case, status="200") == 2
    assert _value(text, "shouhou_http_requests_total", **case, status="404") == 1
    assert (
        _value(text, "shouhou_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert _value(text, "shouhou_http_request_duration_seconds_count", **case) == 3
    routes = {
        dict(labels).get("route") for name, labels in _samples(text) if name.startswith("shouhou_")
    }
    assert not any(r and ("c1" in r or "nope" in r or "/no/such" in r) for r in routes)


def test_metrics_need_no_key_and_stay_out_of_the_openapi_document(
    served: Served,
) -> None:
    client, _, _, _ = served
    assert client.get("/metrics").status_code == 200
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_the_backlog_gauges_read_the_due_deadlines_at_the_scrape_and_the_worker_counts_firings(
    served: Served,
) -> None:
    client, engine, clock, telemetry = served
    text = client.get("/metrics").text
    assert _value(text, "shouhou_deadlines_due") == 0
    assert _value(text, "shouhou_deadlines_oldest_due_lag_seconds") == 0

    clock.set(DUE + timedelta(minutes=90))  # the seller let seller_respond pass; no worker yet
    text = client.get("/metrics").text
    assert _value(text, "shouhou_deadlines_due") == 1
    assert _value(text, "shouhou_deadlines_oldest_due_lag_seconds") == 90 * 60

    worker = Worker(engine, WorkerSettings(), telemetry=telemetry)
    tick = worker.run_once()
    worker.close()
    assert [f.name for f in tick.fired] == ["seller_respond"]
    text = client.get("/metrics").text
    assert _value(text, "shouhou_deadlines_fired_total", deadline="seller_respond") == 1
    assert _value(text, "shouhou_deadlines_due") == 0
    assert _value(text, "shouhou_deadlines_oldest_due_lag_seconds") == 0


def test_a_deadline_set_aside_counts_as_failed() -> None:
    store = MemoryStore()
    engine, clock = _engine(store)
    telemetry = Telemetry()
    del store.cases["c1"]  # the case goes missing under its deadline
    clock.set(DUE)
    worker = Worker(engine, WorkerSettings(), telemetry=telemetry)
    tick = worker.run_once()
    worker.close()
    assert len(tick.set_aside) == 1
    samples = _samples(_scrape(telemetry))
    assert samples[("shouhou_deadlines_failed_total", frozenset({("deadline", "seller_respond")}))]


def _scrape(telemetry: Telemetry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(telemetry.registry).decode()


def test_webhook_deliveries_are_counted_by_result() -> None:
    engine, _ = _engine()
    telemetry = Telemetry()
    with engine.uow_factory() as uow:
        uow.webhooks.add_endpoint(
            Endpoint(
                id="we_1",
                url="https://receiver.example/hooks",
                secret=new_secret(),
                events=("case.*",),
                description="",
                created_by="key_1",
                created_at=T0,
            )
        )
        uow.commit()
    answers = iter([500, 204])
    http = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(next(answers))))
    settings = WorkerSettings(concurrency=1, max_attempts=2)
    worker = Worker(engine, settings, http=http, telemetry=telemetry)
    worker.run_once(T0)  # the receiver fails: retried later
    worker.run_once(T0 + timedelta(hours=1))  # and then takes it
    worker.close()
    text = _scrape(telemetry)
    assert _value(text, "shouhou_webhook_deliveries_total", result="retrying") == 1
    assert _value(text, "shouhou_webhook_deliveries_total", result="delivered") == 1
    assert _value(text, "shouhou_webhook_deliveries_total", result="failed") is None


def test_two_apps_in_one_process_count_apart() -> None:
    first, second = Telemetry(), Telemetry()
    first.requests.labels("GET", "/health", "200").inc()
    assert _value(_scrape(second), "shouhou_http_requests_total", **_health()) is None
    assert _value(_scrape(first), "shouhou_http_requests_total", **_health()) == 1


def _health() -> dict[str, str]:
    return {"method": "GET", "route": "/health", "status": "200"}


# --- logs ------------------------------------------------------------------------------------


def test_a_json_log_line_has_time_level_logger_message_and_its_extra_fields() -> None:
    record = logging.LogRecord("shouhou.worker", logging.ERROR, __file__, 1, "a %s", ("b",), None)
    record.route = "/v1/cases/{case_id}"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR"
    assert line["logger"] == "shouhou.worker"
    assert line["message"] == "a b"
    assert line["route"] == "/v1/cases/{case_id}"
    assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(hours=8)


def test_json_logs_carry_an_access_line_per_request(
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, engine, _, _ = served
    stream = io.StringIO()
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # restored after the test
    monkeypatch.setattr(root, "level", root.level)
    for name in ("shouhou", "shouhou.access"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)
    configure_logging("json", text_format="%(message)s")
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]

    client.get("/v1/cases/c1", headers=_bearer(engine, "buyer:b1"))

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [access] = [line for line in lines if line["logger"] == "shouhou.access"]
    assert access["level"] == "INFO"
    assert (access["method"], access["route"], access["status"]) == (
        "GET",
        "/v1/cases/{case_id}",
        200,
    )
    assert access["duration_ms"] >= 0
    assert {"time", "message"} <= set(access)


def test_the_log_format_comes_from_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHOUHOU_LOG_FORMAT", raising=False)
    assert log_format(None) == "text"
    monkeypatch.setenv("SHOUHOU_LOG_FORMAT", "JSON")
    assert log_format(None) == "json"
    assert log_format("text") == "text"
    with pytest.raises(ValueError, match="choose text or json"):
        log_format("xml")
