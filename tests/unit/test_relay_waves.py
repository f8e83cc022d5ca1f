"""The relay's pure parts: subjects, their tokens, and the waves a batch is published in; its
cursor on the in-memory fake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shouhou.domain.buckets import bucket_of
from shouhou.services import relay
from shouhou.services.ports import OutboxEvent, OutboxMessage
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore

T0 = datetime(2024, 3, 1, 2, tzinfo=UTC)
#: What NATS refuses inside a subject token.
NOT_IN_A_TOKEN = set(".*> \t\r\n")


def event(
    n: int, order: str | None, subject_type: str = "case", subject_id: str = "c1", bucket: int = 0
) -> OutboxEvent:
    data: dict[str, Any] = {} if order is None else {"order": order}
    return OutboxEvent(
        id=n,
        type="case.noted",
        subject_type=subject_type,
        subject_id=subject_id,
        occurred_at=T0,
        data=data,
        position=n,
        bucket=bucket,
    )


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("o1", "o1"),
        ("o.1", "o_2E1"),
        ("o_1", "o_5F1"),
        ("a-b", "a-b"),
        ("订单", "_E8_AE_A2_E5_8D_95"),
        ("", "_"),
    ],
)
def test_an_id_becomes_one_subject_token(text: str, token: str) -> None:
    assert relay.token(text) == token


@given(st.text(max_size=12), st.text(max_size=12))
def test_two_ids_never_share_a_token(a: str, b: str) -> None:
    assert (relay.token(a) == relay.token(b)) == (a == b)
    assert not NOT_IN_A_TOKEN & set(relay.token(a))


def test_an_event_goes_on_its_orders_subject_in_the_bucket_it_is_stored_in() -> None:
    bucket = bucket_of("o.7")
    found = relay.subject("shouhou", event(1, "o.7", bucket=bucket))
    assert found == f"shouhou.{bucket}.case.o_2E7"
    assert relay.subject("x", event(1, "o.7", bucket=3)) == "x.3.case.o_2E7"


def test_a_batch_reaches_each_buckets_last_position() -> None:
    events = [event(1, "a", bucket=2), event(1, "b", bucket=5), event(2, "a", bucket=2)]
    assert relay.reached(events) == {2: 2, 5: 1}
    assert relay.reached([]) == {}


def test_the_order_of_an_event_is_named_in_its_data_or_is_its_subject() -> None:
    assert relay.order_of(event(1, "o1")) == "o1"
    assert relay.order_of(event(1, None, "order", "o2")) == "o2"
    assert relay.order_of(event(1, None, "case", "c9")) == "case:c9"


def test_a_batch_goes_out_in_waves_one_event_per_order_each_in_feed_order() -> None:
    batch = [event(1, "a"), event(2, "a"), event(3, "b"), event(4, "a"), event(5, "c")]
    waves = relay.waves(batch)
    assert [[e.id for e in wave] for wave in waves] == [[1, 3, 5], [2], [4]]


@given(st.lists(st.sampled_from("abcd"), max_size=30))
def test_waves_keep_each_orders_events_in_order_and_lose_none(orders: list[str]) -> None:
    batch = [event(n, order) for n, order in enumerate(orders, start=1)]
    waves = relay.waves(batch)
    assert sorted(e.id for wave in waves for e in wave) == [e.id for e in batch]
    for wave in waves:
        assert len({relay.order_of(e) for e in wave}) == len(wave)
        assert [e.id for e in wave] == sorted(e.id for e in wave)
    for order in set(orders):
        seen = [e.id for wave in waves for e in wave if relay.order_of(e) == order]
        assert seen == sorted(seen)


def test_pending_reads_after_the_cursor_and_marking_moves_it_never_back() -> None:
    store = MemoryStore()

    def new_uow() -> MemoryApiUnitOfWork:
        return MemoryApiUnitOfWork(store)

    with new_uow() as uow:
        uow.outbox.add(
            [
                OutboxMessage(
                    type="order.placed",
                    subject_type="order",
                    subject_id=f"o{n}",
                    occurred_at=T0,
                    data={"order": f"o{n}"},
                )
                for n in range(5)
            ]
        )
        uow.commit()
    after, events = relay.pending(new_uow, "S", 3)
    assert after == {} and [e.position for e in events] == [1, 2, 3]
    relay.mark(new_uow, "S", relay.reached(events), T0)
    after, events = relay.pending(new_uow, "S", 3)
    assert after == {0: 3} and [e.position for e in events] == [4, 5]
    relay.mark(new_uow, "S", {0: 2}, T0)  # a slower relay's batch
    assert relay.pending(new_uow, "S", 3)[0] == {0: 3}
    assert relay.pending(new_uow, "OTHER", 3)[0] == {}
