"""Keys, idempotency records, lists and webhooks through the services, on the in-memory fake
of the API's unit of work (``shouhou.testing.MemoryApiUnitOfWork``): no database, no network."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest

from shouhou import webhooks as receiving
from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Conflict, Invalid
from shouhou.services.keys import KEY_PREFIX, authenticate, create_key, parse_principal
from shouhou.services.ports import ApiUnitOfWork, Attempt, CaseFilter, Endpoint, StoredResponse
from shouhou.services.webhooks import announce_approaching, new_secret
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore
from shouhou.worker import Worker, WorkerSettings

#: An ordinary instant outside every holiday window.
T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
APPLY = {"order": "o1", "kind": "return_refund", "reason": "quality", "amount": 19900}


def _engine() -> Engine[ApiUnitOfWork]:
    store = MemoryStore()
    numbers = iter(range(1, 1000))
    return Engine(
        lambda: MemoryApiUnitOfWork(store),
        clock=VirtualClock(T0),
        new_id=lambda: f"c{next(numbers)}",
    )


def _order(engine: Engine[ApiUnitOfWork], order_id: str = "o1") -> None:
    engine.place_order(
        Order(
            id=order_id,
            shop="s1",
            buyer="b1",
            total=19900,
            created_at=T0 - timedelta(days=3),
            paid_at=T0 - timedelta(days=2),
            shipped_at=T0 - timedelta(days=1),
        )
    )


def _case(engine: Engine[ApiUnitOfWork], order_id: str = "o1") -> str:
    cmd = engine.build("apply", actor="buyer:b1", target={}, params={**APPLY, "order": order_id})
    return engine.execute(cmd).id


def _subscribe(engine: Engine[ApiUnitOfWork], events: tuple[str, ...]) -> Endpoint:
    endpoint = Endpoint(
        id="we_1",
        url="https://receiver.example/hooks",
        secret=new_secret(),
        events=events,
        description="",
        created_by="key_1",
        created_at=engine.clock.now(),
    )
    with engine.uow_factory() as uow:
        uow.webhooks.add_endpoint(endpoint)
        uow.commit()
    return endpoint


# --- keys ------------------------------------------------------------------------------------


def test_a_new_key_authenticates_by_its_secret_and_acts_as_its_principal() -> None:
    engine = _engine()
    key, token = create_key(engine.uow_factory(), "seller:s1", "shop desk", T0)

    found = authenticate(engine.reader(), token)

    assert token.startswith(KEY_PREFIX) and token.startswith(key.prefix)
    assert found == key
    assert str(found.actor) == "seller:s1"
    assert authenticate(engine.reader(), token + "x") is None


def test_a_revoked_key_no_longer_authenticates() -> None:
    engine = _engine()
    key, token = create_key(engine.uow_factory(), "platform", "", T0)
    with engine.uow_factory() as uow:
        assert uow.keys.revoke(key.id, T0)
        assert not uow.keys.revoke(key.id, T0)  # only an active key can be revoked
        uow.commit()

    assert authenticate(engine.reader(), token) is None
    with engine.reader() as uow:
        assert [k.revoked_at for k in uow.keys.all()] == [T0]


@pytest.mark.parametrize("principal", ["system", "platform:p1", "buyer", "nobody:x"])
def test_a_key_is_bound_only_to_a_buyer_seller_agent_or_the_platform(principal: str) -> None:
    with pytest.raises(Invalid):
        parse_principal(principal)


def test_a_key_not_committed_is_not_kept() -> None:
    engine = _engine()
    with engine.uow_factory() as uow:
        key, token = create_key(engine.uow_factory(), "buyer:b1", "", T0)
        uow.keys.revoke(key.id, T0)  # never committed: rolled back on leaving

    assert authenticate(engine.reader(), token) == key


# --- idempotency -----------------------------------------------------------------------------


DAY = timedelta(hours=24)
STALE = timedelta(minutes=2)


def _claim(uow: ApiUnitOfWork, digest: str, at: datetime) -> StoredResponse | None:
    return uow.idempotency.claim("key_1", "k", digest, at, at - DAY, at - STALE)


def test_a_stored_answer_is_replayed_until_it_expires() -> None:
    engine = _engine()
    answer = StoredResponse(request_hash="h1", status_code=201, body={"id": "c1"})
    with engine.uow_factory() as uow:
        assert _claim(uow, "h1", T0) is None
        uow.idempotency.finish("key_1", "k", answer, T0)
        uow.commit()

    with engine.reader() as uow:
        assert uow.idempotency.get("key_1", "k", T0 - DAY) == answer
        assert uow.idempotency.get("key_2", "k", T0 - DAY) is None  # per key
        assert uow.idempotency.get("key_1", "k", T0 + timedelta(seconds=1)) is None  # expired


def test_a_claimed_key_is_shown_pending_to_the_next_request_until_it_answers() -> None:
    engine = _engine()
    with engine.uow_factory() as uow:
        assert _claim(uow, "h1", T0) is None
        seen = _claim(uow, "h1", T0 + timedelta(seconds=1))
        answer = StoredResponse(request_hash="h1", status_code=201, body={"id": "c1"})
        uow.idempotency.finish("key_1", "k", answer, T0)
        replayed = _claim(uow, "h1", T0 + timedelta(seconds=2))

    assert seen is not None and seen.pending and seen.request_hash == "h1"
    assert replayed == answer and not replayed.pending


def test_a_released_claim_frees_the_key_and_a_stale_one_is_taken_over() -> None:
    engine = _engine()
    with engine.uow_factory() as uow:
        assert _claim(uow, "h1", T0) is None
        uow.idempotency.release("key_1", "k", T0)
        assert _claim(uow, "h2", T0) is None  # free again
        assert _claim(uow, "h2", T0 + STALE) is not None  # not stale yet
        late = T0 + STALE + timedelta(seconds=1)
        assert _claim(uow, "h2", late) is None  # its request died: taken over
        with pytest.raises(Conflict) as refused:  # the first one can't answer any more
            uow.idempotency.finish(
                "key_1", "k", StoredResponse(request_hash="h2", status_code=201, body={}), T0
            )
        assert uow.idempotency.forget_before(late + timedelta(seconds=1)) == 1
    assert refused.value.rule == "shouhou/idempotency"


def test_an_expired_answer_is_replaced_by_the_next_claim() -> None:
    engine = _engine()
    with engine.uow_factory() as uow:
        assert _claim(uow, "h1", T0) is None
        first = StoredResponse(request_hash="h1", status_code=201, body={})
        uow.idempotency.finish("key_1", "k", first, T0)
        assert _claim(uow, "h2", T0 + DAY - timedelta(seconds=1)) == first
        assert _claim(uow, "h2", T0 + DAY + timedelta(seconds=1)) is None


# --- lists -----------------------------------------------------------------------------------


def test_the_case_list_filters_and_pages_after_a_sort_key() -> None:
    engine = _engine()
    for order_id in ("o1", "o2", "o3"):
        _order(engine, order_id)
        _case(engine, order_id)

    with engine.reader() as uow:
        everything = uow.queries.cases(CaseFilter(), 10)
        rest = uow.queries.cases(CaseFilter(after=everything[0].sort_key), 10)
        due_first = uow.queries.cases(CaseFilter(sort="due_at"), 10)
        other_shop = uow.queries.cases(CaseFilter(shop="s2"), 10)

    assert [x.order.id for x in everything] == ["o1", "o2", "o3"]
    assert rest == everything[1:]
    assert len(due_first) == 3 and all(x.case.deadline is not None for x in due_first)
    assert other_shop == []


# --- webhooks --------------------------------------------------------------------------------


def test_events_fan_out_only_to_the_endpoints_that_want_them() -> None:
    engine = _engine()
    _subscribe(engine, ("case.*",))
    _order(engine)
    _case(engine)

    with engine.uow_factory() as uow:
        fanned = uow.webhooks.dispatch(T0, 100)
        deliveries = uow.webhooks.deliveries()
        types = {uow.webhooks.event(d.event_id).type for d in deliveries}  # type: ignore[union-attr]
        uow.commit()

    assert fanned > len(deliveries) > 0  # the order's events went to nobody
    assert all(t.startswith("case.") for t in types)


def test_a_claimed_delivery_is_leased_and_only_its_lease_holder_records_an_attempt() -> None:
    engine = _engine()
    _subscribe(engine, ("*",))
    _order(engine)
    with engine.uow_factory() as uow:
        uow.webhooks.dispatch(T0, 100)
        claimed = uow.webhooks.claim(T0, timedelta(minutes=2), 1)
        assert uow.webhooks.claim(T0, timedelta(minutes=2), 100) != []  # the others
        assert uow.webhooks.claim(T0, timedelta(minutes=2), 100) == []  # all leased
        uow.commit()
    (one,) = claimed
    attempt = Attempt(number=1, at=T0, status_code=200, error=None, duration_ms=3)
    with engine.uow_factory() as uow:
        stale = one.lease_until - timedelta(seconds=1)
        assert not uow.webhooks.record(
            one.delivery.id, attempt, status="delivered", next_attempt_at=T0, held_until=stale
        )
        assert uow.webhooks.record(
            one.delivery.id,
            attempt,
            status="delivered",
            next_attempt_at=T0,
            held_until=one.lease_until,
        )
        uow.commit()
    with engine.reader() as uow:
        delivered = uow.webhooks.delivery(one.delivery.id)
        assert delivered is not None and delivered.status == "delivered"
        assert uow.webhooks.attempts(one.delivery.id) == [attempt]


def test_the_worker_delivers_signed_events_and_retention_then_forgets_them() -> None:
    engine = _engine()
    endpoint = _subscribe(engine, ("case.*", "order.*"))
    _order(engine)
    _case(engine)
    got: list[dict[str, object]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        now = int(request.headers["webhook-timestamp"])
        receiving.verify(endpoint.secret, request.headers, request.content, now=now)
        got.append(json.loads(request.content))
        return httpx.Response(204)

    http = httpx.Client(transport=httpx.MockTransport(receiver))
    worker = Worker(engine, WorkerSettings(concurrency=1), http=http)
    tick = worker.run_once(T0)
    worker.close()

    assert tick.delivered == len(got) > 0 and tick.failed_attempts == 0
    with engine.reader() as uow:
        assert {d.status for d in uow.webhooks.deliveries(limit=100)} == {"delivered"}
        feed = uow.webhooks.events(after={}, limit=100)
    sent = {str(g["id"]) for g in got}
    assert [e.public_id for e in feed if e.public_id in sent] == [str(g["id"]) for g in got]
    assert {e.type.split(".")[0] for e in feed if e.public_id in sent} == {"case", "order"}
    with engine.uow_factory() as uow:
        assert uow.retention.forget_events(T0 + timedelta(seconds=1), 100) == len(feed)
        assert uow.webhooks.deliveries(limit=100) == []


def test_an_approaching_deadline_is_announced_once() -> None:
    engine = _engine()
    _order(engine)
    _case(engine)
    soon = T0 + timedelta(days=4, hours=1)  # a day before the seller must respond

    first = announce_approaching(engine.uow_factory(), soon, timedelta(hours=24), 10)
    second = announce_approaching(engine.uow_factory(), soon, timedelta(hours=24), 10)

    assert (first, second) == (1, 0)
    with engine.uow_factory() as uow:
        uow.webhooks.dispatch(soon, 100)
        uow.webhooks.sequence(100)
        notices = uow.webhooks.events(after={}, limit=100, types=["deadline.approaching"])
    assert [n.data["deadline"]["name"] for n in notices] == ["seller_respond"]
    assert notices[0].data["buyer"] == "b1"
