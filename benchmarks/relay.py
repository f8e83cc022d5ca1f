"""The relay's messages per second against a bare nats-py publish loop of the same messages.

A fresh database holds ``--orders`` orders, each placed and then given a refund case through
the engine (ten events an order, the orders' events interleaved in the feed as the two rounds
make them). Ours is :class:`shouhou.worker.relay.Relay` in this process: read a batch of the
feed after the cursor (sequencing it first), publish it in waves with ``Nats-Msg-Id``,
``Nats-Expected-Last-Subject-Sequence`` and ``Shouhou-Position``, mark the batch. The
baseline publishes the very same messages (subject, body, ``Nats-Msg-Id``) with nats-py to a
stream of its own, a batch at a time, all of a batch at once: the transport's floor, with no
database, no waves and no expected sequence. The two take turns in blocks of passes, so a
change in the machine's load hits both alike. Then the relay's cursor is moved back to 0 and
the relay runs again over the whole feed, as after a crash before marking: every message is
dropped by the stream as a duplicate, and the rate of that re-publishing is printed too.

    .venv/bin/python benchmarks/relay.py --db sqlite
    .venv/bin/python benchmarks/relay.py --db postgresql --orders 2000
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import _common
import sqlalchemy as sa

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order
from shouhou.services.relay import pending, subject
from shouhou.worker.relay import MSG_ID, Relay, Relayed, RelaySettings, body

T0 = datetime(2024, 3, 1, 2, tzinfo=UTC)
NATS_URL = "nats://127.0.0.1:4222"
#: Passes each side runs before the other takes its turn.
BLOCK = 4


def build(url: str, orders: int) -> int:
    """``orders`` orders placed, then a refund case opened on each; the events in the feed."""
    clock = VirtualClock(T0)
    engine = Engine.open(url, clock=clock)
    try:
        for n in range(orders):
            engine.place_order(
                Order(
                    id=f"o.{n}",
                    shop=f"s{n % 7}",
                    buyer=f"b{n}",
                    total=1_000 + n,
                    created_at=T0 - timedelta(hours=3),
                    paid_at=T0 - timedelta(hours=2),
                    shipped_at=T0 - timedelta(hours=1),
                )
            )
        for n in range(orders):
            apply = engine.build(
                "apply",
                actor=f"buyer:b{n}",
                target={"order_id": f"o.{n}"},
                params={"kind": "refund_only", "reason": "not_received", "amount": 1_000 + n},
            )
            engine.execute(apply)
        with engine.uow_factory() as uow:
            while uow.webhooks.sequence(1000):
                pass
            uow.commit()
        with engine.uow_factory() as uow:
            return len(uow.webhooks.events(after=0, limit=10 * orders + 1000))
    finally:
        engine.close()


def messages(new_uow: Any, prefix: str, total: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """What the baseline publishes: each feed event's subject, body and ``Nats-Msg-Id``."""
    after, events = pending(new_uow, "baseline-reads-only", total)
    assert after == {} and len(events) == total
    return [(subject(prefix, e), body(e), {MSG_ID: e.public_id}) for e in events]


def add(total: Relayed, one: Relayed) -> None:
    for key in ("read", "published", "duplicates", "already", "refused"):
        setattr(total, key, getattr(total, key) + getattr(one, key))
    total.position = one.position


async def bench(url: str, total: int, batch: int) -> None:
    import nats
    from nats.js.api import StreamConfig

    from shouhou.db.api_uow import SqlApiUnitOfWork
    from shouhou.db.engine import create

    tag = uuid.uuid4().hex[:8].upper()
    ours_stream, raw_stream = f"BENCH_{tag}_OURS", f"BENCH_{tag}_RAW"
    ours_prefix, raw_prefix = f"bench.{tag}.ours", f"bench.{tag}.raw"
    sql = create(url)
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    try:

        def new_uow() -> SqlApiUnitOfWork:
            return SqlApiUnitOfWork(sql)

        await js.add_stream(StreamConfig(name=raw_stream, subjects=[f"{raw_prefix}.>"]))
        settings = RelaySettings(stream=ours_stream, prefix=ours_prefix, batch=batch)
        relay = Relay(new_uow, js, settings)
        await relay.ensure_stream()
        plain = messages(new_uow, raw_prefix, total)

        async def raw_block(start: int) -> int:
            sent = 0
            for first in range(start, min(start + BLOCK * batch, total), batch):
                chunk = plain[first : first + batch]
                acks = await asyncio.gather(
                    *(js.publish(s, b, headers=dict(h), timeout=10) for s, b, h in chunk)
                )
                assert not any(ack.duplicate for ack in acks)
                sent += len(chunk)
            return sent

        ours_s = raw_s = 0.0
        done = Relayed()
        raw_sent = 0
        while done.position < total or raw_sent < total:
            started = time.perf_counter()
            for _ in range(BLOCK if done.position < total else 0):
                add(done, await relay.run_once())
            ours_s += time.perf_counter() - started
            started = time.perf_counter()
            raw_sent += await raw_block(raw_sent)
            raw_s += time.perf_counter() - started
        assert done.published == total and done.duplicates == done.already == 0
        _common.row("messages published", total / ours_s, total / raw_s)

        # as after a crash before any batch was marked: everything again
        with sql.begin() as conn:
            conn.execute(sa.text("UPDATE relay_cursors SET position = 0"))
        again = Relayed()
        relay = Relay(new_uow, js, settings)  # new: it knows nothing of the stream
        started = time.perf_counter()
        while again.position < total:
            add(again, await relay.run_once())
        again_s = time.perf_counter() - started
        ours_info = await js.stream_info(ours_stream)
        print(
            f"{'published again after a crash':<34} ours {total / again_s:>10.0f}/s   "
            f"{again.duplicates} of {total} dropped as duplicates, {again.already} found "
            f"in the stream, {again.published} stored twice; the stream holds "
            f"{ours_info.state.messages} messages"
        )
    finally:
        for name in (ours_stream, raw_stream):
            with suppress(Exception):  # a stream never made
                await js.delete_stream(name)
        await nc.close()
        sql.dispose()


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    _common.header("relay to NATS JetStream", args.db)
    with _common.fresh_database(args.db, args.url, "relay") as db:
        started = time.perf_counter()
        total = build(db.url, args.orders)
        print(
            f"{total} events of {args.orders} orders, built in {time.perf_counter() - started:.1f}s"
        )
        asyncio.run(bench(db.url, total, args.batch))


if __name__ == "__main__":
    main()
