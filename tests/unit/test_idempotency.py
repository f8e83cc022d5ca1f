"""One request acts per Idempotency-Key; the others wait for its answer or are told to retry,
on the in-memory fake with a pretend stopwatch (no real waiting)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shouhou.clock import VirtualClock
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Invalid, NotEligible, StillRunning
from shouhou.services import idempotency
from shouhou.services.ports import ApiUnitOfWork, StoredResponse
from shouhou.testing import MemoryApiUnitOfWork, MemoryStore

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)


class Stopwatch:
    """Pretend time for the waiting: ``sleep`` moves it, and may run something meanwhile."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []
        self.meanwhile: list[Any] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        if self.meanwhile:
            self.meanwhile.pop(0)()

    def elapsed(self) -> float:
        return self.now


def _run(
    store: MemoryStore, watch: Stopwatch, digest: str = "h1", effect: list[str] | None = None
) -> idempotency.Answer:
    def operation(uow: ApiUnitOfWork) -> tuple[int, Any]:
        if effect is not None:
            effect.append("acted")
        return 201, {"id": "c1"}

    return idempotency.run_once(
        lambda: MemoryApiUnitOfWork(store),
        VirtualClock(T0),
        "key_1",
        "k",
        digest,
        operation,
        sleep=watch.sleep,
        elapsed=watch.elapsed,
    )


def _claim_elsewhere(store: MemoryStore, at: datetime = T0) -> None:
    """Another request (another process) claims the key and is still running."""
    with MemoryApiUnitOfWork(store) as uow:
        assert uow.idempotency.claim("key_1", "k", "h1", at, at - timedelta(days=1), at) is None
        uow.commit()


def _answer_elsewhere(store: MemoryStore, at: datetime = T0) -> None:
    with MemoryApiUnitOfWork(store) as uow:
        answer = StoredResponse(request_hash="h1", status_code=201, body={"id": "c9"})
        uow.idempotency.finish("key_1", "k", answer, at)
        uow.commit()


def test_the_first_request_acts_and_the_next_replays_its_answer() -> None:
    store, watch, effect = MemoryStore(), Stopwatch(), []

    first = _run(store, watch, effect=effect)
    again = _run(store, watch, effect=effect)

    assert (first.status_code, first.body, first.replayed) == (201, {"id": "c1"}, False)
    assert (again.status_code, again.body, again.replayed) == (201, {"id": "c1"}, True)
    assert effect == ["acted"]


def test_a_request_arriving_while_the_first_runs_waits_for_its_answer_and_replays_it() -> None:
    store, watch, effect = MemoryStore(), Stopwatch(), []
    _claim_elsewhere(store)
    watch.meanwhile = [lambda: None, lambda: _answer_elsewhere(store)]

    answer = _run(store, watch, effect=effect)

    assert (answer.body, answer.replayed) == ({"id": "c9"}, True)
    assert effect == []  # it never ran the use case itself
    assert len(watch.pauses) == 2


def test_waiting_is_bounded_then_the_answer_is_409_with_retry_after() -> None:
    store, watch, effect = MemoryStore(), Stopwatch(), []
    _claim_elsewhere(store)

    with pytest.raises(StillRunning) as refused:
        _run(store, watch, effect=effect)

    assert refused.value.code == "conflict" and refused.value.rule == "shouhou/idempotency"
    assert refused.value.retry_after == idempotency.RETRY_AFTER_S
    assert idempotency.WAIT_S <= watch.now < idempotency.WAIT_S + idempotency.LONGEST_POLL_S
    assert max(watch.pauses) == idempotency.LONGEST_POLL_S
    assert effect == []


def test_the_same_key_with_another_request_is_refused_even_while_the_first_runs() -> None:
    store, watch = MemoryStore(), Stopwatch()
    _claim_elsewhere(store)

    with pytest.raises(Invalid) as refused:
        _run(store, watch, digest="other")

    assert refused.value.rule == "shouhou/idempotency"
    assert watch.pauses == []


def test_a_refused_request_frees_the_key_so_the_same_request_runs_again() -> None:
    store, watch = MemoryStore(), Stopwatch()

    def refuse(uow: ApiUnitOfWork) -> tuple[int, Any]:
        raise NotEligible("not yet")

    with pytest.raises(NotEligible):
        idempotency.run_once(
            lambda: MemoryApiUnitOfWork(store), VirtualClock(T0), "key_1", "k", "h1", refuse
        )
    answer = _run(store, watch)

    assert (answer.status_code, answer.replayed) == (201, False)
    assert watch.pauses == []


def test_a_claim_left_by_a_dead_process_is_taken_over_once_stale() -> None:
    store, watch, effect = MemoryStore(), Stopwatch(), []
    _claim_elsewhere(store, at=T0 - idempotency.STALE_CLAIM - timedelta(seconds=1))

    answer = _run(store, watch, effect=effect)

    assert (answer.replayed, effect, watch.pauses) == (False, ["acted"], [])
