"""JSON encoders on the engine's real payloads: pydantic-core (what ``db/serial.py`` used
before), the standard library's ``json``, orjson and msgspec.

The payloads are what the storage layer serialized while the engine took ``--cases``
returns through ``transitions.py``'s four steps and fired ``--due`` refund deadlines on a
scratch SQLite database: case and order snapshots and events, each as the domain's frozen
dataclass. Each encoder turns every payload into the text stored today (snapshots without
their ``version``, datetimes in UTC with ``Z``, durations in pydantic's ISO 8601 form); the
script says whether each one's bytes are the stored bytes, then times them, taking turns in
rounds, and prints each one's time per payload and its ratio to pydantic-core and to the
standard library.

    .venv/bin/python benchmarks/encoders.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import _common
import firing
import floor

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db import serial
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.model import Case, Complaint, Order

Encoder = Callable[[object], str]


def payloads(cases: int, due: int) -> list[object]:
    """Every object the storage layer serialized while the engine worked (see above)."""
    seen: list[object] = []
    original = serial.dump_json

    def recording(value: object) -> str:
        seen.append(value)
        return original(value)

    serial.dump_json = recording  # type: ignore[assignment]
    try:
        with _common.fresh_database("sqlite", "", "encoders") as db:
            sql = db.engine()
            try:
                for i in range(cases):
                    clocks = [VirtualClock(floor.T0 + timedelta(hours=n + 1)) for n in range(4)]
                    for n, (action, role, params) in enumerate(floor.STEPS):
                        engine = Engine(lambda: SqlUnitOfWork(sql), clock=clocks[n])
                        if n == 0:
                            _place(engine, i)
                        engine.execute(
                            engine.build(
                                action,
                                actor=f"buyer:b{i}" if role == "buyer" else "seller:s1",
                                target={"order_id": f"o{i}", "case_id": f"c{i}"}
                                if action == "apply"
                                else {"case_id": f"c{i}"},
                                params=params,
                            )
                        )
            finally:
                db_engine.dispose(sql)
        with _common.fresh_database("sqlite", "", "encoders") as db:
            firing.build(db, due, due)
            sql = db.engine()
            now = firing.TEMPLATE_DUE + timedelta(seconds=due)
            try:
                Engine(lambda: SqlUnitOfWork(sql), clock=VirtualClock(now)).run_due(now)
            finally:
                db_engine.dispose(sql)
    finally:
        serial.dump_json = original  # type: ignore[assignment]
    return seen


def _place(engine: Engine[Any], i: int) -> None:
    engine.place_order(
        Order(
            id=f"o{i}",
            shop="s1",
            buyer=f"b{i}",
            total=29_900,
            created_at=floor.T0 - timedelta(days=3),
            paid_at=floor.T0 - timedelta(days=3),
            shipped_at=floor.T0 - timedelta(days=2),
            delivered_at=floor.T0 - timedelta(days=1),
        )
    )


# --- the encoders --------------------------------------------------------------------------


def pydantic_core(value: object) -> str:
    """What ``serial.dump_json`` did before: pydantic-core's serializer for the type."""
    exclude = {"version"} if isinstance(value, Case | Order | Complaint) else None
    text: bytes = serial._adapter(type(value)).serializer.to_json(value, exclude=exclude)
    return text.decode()


def _stdlib_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return serial.iso_duration(value)
    raise TypeError(type(value).__name__)


def stdlib(value: object) -> str:
    """The standard library: every dataclass, datetime and duration through ``default``."""
    text = json.dumps(value, default=_stdlib_default, ensure_ascii=False, separators=(",", ":"))
    return serial.without_version(text) if isinstance(value, Case | Order | Complaint) else text


def with_orjson(value: object) -> str:
    """orjson: dataclasses, datetimes and enums natively, durations through ``default``."""
    return serial.dump_json(value)


def msgspec_encoder() -> Encoder:
    """msgspec: everything natively (its durations are not pydantic's: ``PT18000S`` for
    ``PT5H``; no hook can change a type it encodes itself). ``pip install -e '.[bench]'``."""
    import msgspec

    encode = msgspec.json.Encoder().encode

    def with_msgspec(value: object) -> str:
        text = encode(value).decode()
        if isinstance(value, Case | Order | Complaint):
            return serial.without_version(text)
        return text

    return with_msgspec


ENCODERS: dict[str, Encoder] = {
    "pydantic-core": pydantic_core,
    "stdlib json": stdlib,
    "orjson": with_orjson,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--due", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    ENCODERS["msgspec"] = msgspec_encoder()
    _common.header("JSON encoders on the engine's payloads", "no database")
    print(f"at the start: {_common.load()}")
    found = payloads(args.cases, args.due)
    kinds: dict[str, int] = {}
    for value in found:
        kinds[type(value).__name__] = kinds.get(type(value).__name__, 0) + 1
    size = sum(len(pydantic_core(v).encode()) for v in found)
    print(f"{len(found):,} payloads, {size / len(found):.0f} bytes each on average; commonest:")
    print("  " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:8]))
    reference = [pydantic_core(v) for v in found]
    for name, encode in ENCODERS.items():
        different = [i for i, v in enumerate(found) if encode(v) != reference[i]]
        if different:
            i = different[0]
            first = type(found[i]).__name__
            print(f"{name:<14} differs on {len(different):,} of {len(found):,}: {first} …")
        else:
            print(f"{name:<14} the same bytes as stored, every payload")
    seconds = dict.fromkeys(ENCODERS, 0.0)
    for _ in range(args.rounds):
        for name, encode in ENCODERS.items():
            started = time.perf_counter()
            for value in found:
                encode(value)
            seconds[name] += time.perf_counter() - started
    calls = len(found) * args.rounds
    for name, took in seconds.items():
        print(
            f"{name:<14} {took / calls * 1e6:7.2f} µs a payload"
            f"   ÷ pydantic-core {took / seconds['pydantic-core']:5.2f}"
            f"   ÷ stdlib {took / seconds['stdlib json']:5.2f}"
        )
    print(f"at the end: {_common.load()}")


if __name__ == "__main__":
    main()
