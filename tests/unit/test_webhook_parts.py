"""Pure parts of webhooks: signatures, event names, subscriptions, retry delays."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shouhou import webhooks
from shouhou.domain import events as e
from shouhou.domain.model import Deadline, LineRefund
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Invalid
from shouhou.services.keys import parse_principal
from shouhou.services.outbox import event_type, payload
from shouhou.services.ports import OutboxMessage
from shouhou.services.webhooks import matches, new_secret, public_error
from shouhou.worker import WorkerSettings, backoff

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = 1_770_000_000


def test_a_signed_delivery_verifies() -> None:
    body = b'{"id":"evt_1"}'
    headers = webhooks.headers(SECRET, "evt_1", NOW, body)

    webhooks.verify(SECRET, headers, body, now=NOW + 10)

    assert headers["webhook-signature"].startswith("v1,")


def test_the_signature_matches_the_standard_webhooks_construction() -> None:
    import base64
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, f"evt_1.{NOW}.body".encode(), hashlib.sha256).digest()

    assert (
        webhooks.sign(SECRET, "evt_1", NOW, b"body") == "v1," + base64.b64encode(expected).decode()
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b"{}"}, "no signature matches"),
        ({"secret": new_secret()}, "no signature matches"),
        ({"now": NOW + 301}, "more than 300s away"),
        ({"now": NOW - 301}, "more than 300s away"),
        ({"msg_id": "evt_2"}, "no signature matches"),
    ],
)
def test_a_tampered_stale_or_foreign_delivery_is_refused(change: dict, reason: str) -> None:  # type: ignore[type-arg]
    body = b'{"id":"evt_1"}'
    headers = webhooks.headers(SECRET, "evt_1", NOW, body)
    if "msg_id" in change:
        headers["webhook-id"] = change["msg_id"]

    with pytest.raises(webhooks.WebhookVerificationError, match=reason):
        webhooks.verify(
            change.get("secret", SECRET),
            headers,
            change.get("body", body),
            now=change.get("now", NOW),
        )


def test_missing_headers_are_refused() -> None:
    with pytest.raises(webhooks.WebhookVerificationError, match="missing or malformed"):
        webhooks.verify(SECRET, {"webhook-id": "evt_1"}, b"", now=NOW)


def _deadline() -> Deadline:
    return Deadline(
        name="seller_respond",
        due_at=T0 + timedelta(days=5),
        on_expiry="agree",
        rule_id="tmall-standard/seller_respond",
        policy="tmall-standard@1",
        started_at=T0,
        duration=timedelta(days=5),
    )


@pytest.mark.parametrize(
    ("stream", "event", "name"),
    [
        ("case", e.Agreed(at=T0, actor="seller:s1"), "case.agreed"),
        ("case", e.ReturnShipped.__new__(e.ReturnShipped), "case.return_shipped"),
        ("case", e.DeadlineSet(at=T0, actor="system", deadline=None), "deadline.cleared"),
        ("order", e.OrderShipped.__new__(e.OrderShipped), "order.shipped"),
        ("order", e.TradeSucceeded(at=T0, actor="system"), "order.trade_succeeded"),
        ("order", e.MarkedLate(at=T0, actor="system", rule_id="r"), "order.marked_late"),
    ],
)
def test_webhook_names_follow_the_stream_and_the_event(
    stream: str, event: e.Event, name: str
) -> None:
    assert event_type(stream, event) == name


def test_deadline_events_are_named_alike_for_cases_and_orders() -> None:
    scheduled = e.DeadlineSet(at=T0, actor="system", deadline=_deadline())
    fired = e.DeadlineFired(
        at=T0,
        actor="system",
        name="ship_by",
        due_at=T0,
        on_expiry="mark_late",
        rule_id="r",
        policy="p",
    )

    assert {event_type(s, scheduled) for s in ("case", "order")} == {"deadline.scheduled"}
    assert {event_type(s, fired) for s in ("case", "order")} == {"deadline.fired"}


@pytest.mark.parametrize(
    ("patterns", "event", "wanted"),
    [
        (["*"], "case.agreed", True),
        (["case.*"], "case.agreed", True),
        (["case.*"], "casex.agreed", False),
        (["case.*"], "deadline.fired", False),
        (["deadline.approaching"], "deadline.approaching", True),
        (["deadline.approaching"], "deadline.fired", False),
        ([], "case.agreed", False),
    ],
)
def test_endpoints_choose_events_by_name_or_family(
    patterns: list[str], event: str, wanted: bool
) -> None:
    assert matches(patterns, event) is wanted


def test_retries_wait_twice_as_long_each_time_up_to_a_cap() -> None:
    settings = WorkerSettings(backoff_base=timedelta(seconds=30), backoff_cap=timedelta(hours=1))

    waits = [backoff(n, settings) for n in range(1, 10)]

    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits[-1] == timedelta(hours=1)
    assert waits == sorted(waits)


@pytest.mark.parametrize("text", ["buyer:b1", "seller:s1", "agent:a1", "platform"])
def test_keys_bind_to_a_role_and_subject(text: str) -> None:
    assert str(parse_principal(text)) == text


@pytest.mark.parametrize("text", ["buyer", "platform:p1", "system", "boss:b1", "seller:"])
def test_keys_refuse_roles_without_subjects_and_the_system(text: str) -> None:
    with pytest.raises(Invalid):
        parse_principal(text)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("HTTP 500: <html>stack trace, password=hunter2</html>", "HTTP 500"),
        ("HTTP 404", "HTTP 404"),
        ("RemoteProtocolError: illegal status line: b'secret'", "failed (RemoteProtocolError)"),
        ("ConnectError: [Errno 111] Connection refused", "failed (ConnectError)"),
        ("timeout", "timeout"),
        ("refused: loopback address", "refused: loopback address"),
        ("the event cannot be read: KeyError('x')", "the event cannot be read: KeyError('x')"),
        (None, None),
    ],
)
def test_a_recorded_delivery_error_is_shown_without_what_the_receiver_said(
    stored: str | None, shown: str | None
) -> None:
    assert public_error(stored) == shown


def test_a_refund_webhook_carries_each_lines_buyer_and_platform_part() -> None:
    refund = e.Refunded(
        at=T0,
        actor="seller:s1",
        amount=5100,
        lines=(LineRefund(line="A", buyer=5100, platform=300, quantity=1),),
    )
    message = OutboxMessage(
        type="case.refunded",
        subject_type="case",
        subject_id="c1",
        occurred_at=T0,
        data={"case": "c1"},
        event=refund,
    )
    assert payload(message)["event"]["lines"] == [
        {"line": "A", "buyer": 5100, "platform": 300, "quantity": 1}
    ]
