"""Domain state and events to JSON and back, through pydantic's dataclass support."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from shouhou.domain.events import EVENT_TYPES, Event
from shouhou.domain.model import Case, Order

_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def dump(value: object) -> Any:
    """A JSON-ready structure for a domain dataclass."""
    return _adapter(type(value)).dump_python(value, mode="json")


def load_case(data: Any, version: int) -> Case:
    case: Case = _adapter(Case).validate_python({**data, "version": version})
    return case


def load_order(data: Any, version: int) -> Order:
    order: Order = _adapter(Order).validate_python({**data, "version": version})
    return order


def load_event(kind: str, data: Any) -> Event:
    cls = EVENT_TYPES[kind]
    event: Event = _adapter(cls).validate_python(data)
    return event
