"""Domain state and events to JSON and back, through pydantic's dataclass support.

The ``*_json`` functions go straight between objects and JSON text, without an intermediate
dict: the storage hot path uses them (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

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


#: What a snapshot leaves out: the version is a column of its own.
_SNAPSHOT_EXCLUDE = {"version"}


def dump_json(value: object) -> str:
    """A domain dataclass as JSON text (an aggregate's snapshot without its version).

    The hot path calls pydantic-core's serializer and validator straight, without the
    ``TypeAdapter`` wrappers (a few microseconds per call, several calls per transition)."""
    exclude = _SNAPSHOT_EXCLUDE if isinstance(value, Case | Order | Complaint) else None
    text: bytes = _adapter(type(value)).serializer.to_json(value, exclude=exclude)
    return text.decode()


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
