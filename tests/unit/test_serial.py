"""The storage layer's JSON encoder (orjson) writes the bytes pydantic-core wrote before it, for
every aggregate and event the domain has: stored snapshots and events keep one format."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shouhou.db import serial
from shouhou.domain import events, model

AGGREGATES = (model.Case, model.Order, model.Complaint)
TYPES = (*AGGREGATES, *events.EVENT_TYPES.values())

MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    """Values of ``hint``, as the domain's types are written (money fits in 64 bits)."""
    if dataclasses.is_dataclass(hint):
        assert isinstance(hint, type)
        hints = typing.get_type_hints(hint)
        fields = {f.name: _strategy(hints[f.name]) for f in dataclasses.fields(hint)}
        return st.builds(hint, **fields)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return st.one_of(*(_strategy(a) for a in args))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_strategy(args[0]), max_size=3).map(tuple)
        return st.tuples(*(_strategy(a) for a in args))
    if hint is type(None):
        return st.none()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(max_size=12),
        bool: st.booleans(),
        int: st.integers(min_value=-(2**63), max_value=2**63 - 1),
        datetime: MOMENTS,
        timedelta: st.timedeltas(),
    }
    return simple[hint]


def _before(value: object) -> str:
    """What ``dump_json`` wrote before orjson: pydantic-core's serializer."""
    exclude = {"version"} if isinstance(value, AGGREGATES) else None
    text: bytes = serial._adapter(type(value)).serializer.to_json(value, exclude=exclude)
    return text.decode()


@given(st.one_of(*(_strategy(t) for t in TYPES)))
@settings(max_examples=400, deadline=None)
def test_orjson_writes_what_pydantic_wrote(value: object) -> None:
    assert serial.dump_json(value) == _before(value)


@given(st.timedeltas())
def test_durations_written_as_pydantic_writes_them(value: timedelta) -> None:
    assert serial.iso_duration(value) == serial._adapter(timedelta).dump_json(value).decode()[1:-1]


def test_version_is_the_last_field_of_every_aggregate() -> None:
    # dump_json cuts the version off the end of the text.
    for cls in AGGREGATES:
        assert dataclasses.fields(cls)[-1].name == "version"


@given(st.one_of(*(_strategy(t) for t in AGGREGATES)))
@settings(max_examples=50, deadline=None)
def test_a_snapshot_loads_back_with_its_version(value: Any) -> None:
    text = serial.dump_json(value)
    loaders = {
        model.Case: serial.load_case_json,
        model.Order: serial.load_order_json,
        model.Complaint: serial.load_complaint_json,
    }
    assert loaders[type(value)](text, value.version) == value
