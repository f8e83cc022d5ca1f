"""Domain state and events to JSON and back: written by orjson, read through pydantic's
dataclass support.

The ``*_json`` functions go straight between objects and JSON text, without an intermediate
dict: the storage hot path uses them (docs/performance.md). ``dump_json`` writes the bytes
pydantic-core wrote before it (``benchmarks/encoders.py`` measures both and checks this on
the engine's payloads; tests/unit/test_serial.py checks it on every kind of value).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter

from shouhou.domain.events import EVENT_TYPES, Event
from shouhou.domain.model import Case, Complaint, Order

R = TypeVar("R")

_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def dump(value: object) -> Any:
    """A JSON-ready structure for a domain dataclass."""
    return _adapter(type(value)).dump_python(value, mode="json")


_DAY_US = 86_400_000_000
_YEAR_DAYS = 365


def iso_duration(value: timedelta) -> str:
    """``value`` as pydantic writes a duration: ISO 8601, years of 365 days, the sign in
    front, seconds with only the decimals they need (``P1Y35D``, ``-PT22H``, ``PT1M1.12S``,
    ``PT0S``)."""
    us = value // timedelta(microseconds=1)
    sign = "-" if us < 0 else ""
    us = abs(us)
    days, us = divmod(us, _DAY_US)
    years, days = divmod(days, _YEAR_DAYS)
    hours, us = divmod(us, 3_600_000_000)
    minutes, us = divmod(us, 60_000_000)
    seconds, micro = divmod(us, 1_000_000)
    date = (f"{years}Y" if years else "") + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or micro:
        time += f"{seconds}.{micro:06d}".rstrip("0") + "S" if micro else f"{seconds}S"
    if not date and not time:
        return "PT0S"
    return f"{sign}P{date}{'T' + time if time else ''}"


#: Durations written already: the rules' few periods come back in every deadline. Cleared
#: when full (remaining times are many).
_DURATIONS: dict[timedelta, str] = {}
_DURATIONS_KEPT = 1024


def _default(value: Any) -> Any:
    """What orjson does not write itself: durations."""
    if isinstance(value, timedelta):
        text = _DURATIONS.get(value)
        if text is None:
            if len(_DURATIONS) >= _DURATIONS_KEPT:
                _DURATIONS.clear()
            text = _DURATIONS[value] = iso_duration(value)
        return text
    raise TypeError(f"{type(value).__name__} is not JSON")


_OPTIONS = orjson.OPT_UTC_Z
#: What a snapshot leaves out: the version is a column of its own, and the last field of
#: every aggregate (tests/unit/test_serial.py).
_VERSION = ',"version":'
_VERSION_BYTES = _VERSION.encode()
_AGGREGATES = frozenset({Case, Order, Complaint})


def without_version(text: str) -> str:
    """An aggregate's JSON without its last member, the version."""
    return f"{text[: text.rindex(_VERSION)]}}}"


def dump_json(value: object) -> str:
    """A domain dataclass as JSON text (an aggregate's snapshot without its version).

    orjson writes dataclasses, enums and datetimes in its compiled code, two to four times
    as fast as pydantic-core's serializer on these payloads (docs/performance.md); the text
    is the same."""
    data = orjson.dumps(value, default=_default, option=_OPTIONS)
    if type(value) in _AGGREGATES:
        return f"{data[: data.rindex(_VERSION_BYTES)].decode()}}}"
    return data.decode()


def load_case(data: Any, version: int) -> Case:
    case: Case = _adapter(Case).validate_python({**data, "version": version})
    return case


def load_order(data: Any, version: int) -> Order:
    order: Order = _adapter(Order).validate_python({**data, "version": version})
    return order


def load_complaint(data: Any, version: int) -> Complaint:
    complaint: Complaint = _adapter(Complaint).validate_python({**data, "version": version})
    return complaint


def _with_version(text: str, version: int) -> str:
    """The snapshot ``{...}`` with its version added as the last key (cheaper than a
    ``dataclasses.replace`` of the loaded object, which runs every field again)."""
    return f'{text[: text.rindex("}")]},"version":{int(version)}}}'


def load_case_json(text: str, version: int) -> Case:
    case: Case = _adapter(Case).validator.validate_json(_with_version(text, version))
    return case


def load_order_json(text: str, version: int) -> Order:
    order: Order = _adapter(Order).validator.validate_json(_with_version(text, version))
    return order


def load_complaint_json(text: str, version: int) -> Complaint:
    complaint: Complaint = _adapter(Complaint).validator.validate_json(_with_version(text, version))
    return complaint


def load_event(kind: str, data: Any) -> Event:
    cls = EVENT_TYPES[kind]
    event: Event = _adapter(cls).validate_python(data)
    return event


def load_event_json(kind: str, text: str | bytes) -> Event:
    event: Event = _adapter(EVENT_TYPES[kind]).validator.validate_json(text)
    return event


def from_row(cls: type[R], row: Any, **given: Any) -> R:
    """A ``cls`` dataclass from the row's columns of the same names; ``given`` takes precedence."""
    taken = {f.name: getattr(row, f.name) for f in fields(cls) if f.name not in given}  # type: ignore[arg-type]
    return cls(**taken, **given)


def row_values(value: Any, **given: Any) -> dict[str, Any]:
    """A dataclass's fields as the columns of a row; ``given`` takes precedence."""
    return {f.name: getattr(value, f.name) for f in fields(value)} | given
