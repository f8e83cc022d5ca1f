"""What changes between two rulebooks, rule by rule, with each side's provenance.

A rulebook is flattened into rules keyed the same way whatever pack holds them —
``deadline seller_respond``, ``limit max_modifications``, ``reason quality``,
``compensation``, ``complaint breach_of_promise.invoice`` — so that ``tmall-standard`` and
``taobao`` compare rule by rule; holiday rules are keyed by their pack and id
(``holiday cny-2022/review``), their window by the pack (``window cny-2022``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shouhou.policy.loader import LoadedPack
from shouhou.policy.schema import BasePack, HolidayPack, Provenance


@dataclass(frozen=True)
class Rule:
    """One rule of a flattened rulebook: its values and where they come from."""

    key: str
    values: dict[str, Any]
    source: str  # the pack reference that holds it
    provenance: str  # source, reference and note
    short: str = ""  # source and reference


@dataclass(frozen=True)
class Change:
    """A rule ``added`` in B, ``removed`` from A, or ``changed`` (the fields that differ)."""

    key: str
    change: str
    fields: dict[str, tuple[Any, Any]]
    before: Rule | None
    after: Rule | None

    def as_json(self) -> dict[str, Any]:
        """The change as plain JSON data."""

        def side(rule: Rule | None) -> dict[str, Any] | None:
            if rule is None:
                return None
            return {"pack": rule.source, "provenance": rule.provenance, "values": rule.values}

        return {
            "rule": self.key,
            "change": self.change,
            "fields": {k: {"from": a, "to": b} for k, (a, b) in self.fields.items()},
            "from": side(self.before),
            "to": side(self.after),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(mode="json", exclude_none=True))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _label(prov: Provenance) -> str:
    return f"{prov.label()}: {prov.note}" if prov.note else prov.label()


def flatten(packs: Iterable[LoadedPack]) -> dict[str, Rule]:
    """Every rule of the rulebook made of ``packs``, by its pack-independent key."""
    rules: dict[str, Rule] = {}

    def put(key: str, values: dict[str, Any], ref: str, prov: Provenance | None) -> None:
        label, short = (_label(prov), prov.label()) if prov else ("", "")
        rules[key] = Rule(key, _plain(values), ref, label, short)

    for loaded in packs:
        pack, ref = loaded.pack, loaded.ref
        if isinstance(pack, BasePack):
            put(
                "pack settings",
                {
                    "calendar": pack.calendar,
                    "timezone": pack.timezone,
                    "effective_from": pack.effective_from,
                },
                ref,
                None,
            )
            for name, spec in pack.deadlines.items():
                put(
                    f"deadline {name}",
                    {
                        "duration": spec.duration,
                        "varies_by": spec.varies_by,
                        "calendar": spec.calendar,
                        "on_expiry": spec.on_expiry,
                    },
                    ref,
                    spec.provenance,
                )
            for name, limit in pack.limits.items():
                put(f"limit {name}", {"value": limit.value}, ref, limit.provenance)
            for reason, rspec in pack.reasons.items():
                put(
                    f"reason {reason.value}",
                    {
                        "fault": rspec.fault,
                        "compensation": rspec.compensation,
                        "kinds": rspec.kinds,
                        "evidence": rspec.evidence,
                    },
                    ref,
                    rspec.provenance,
                )
            comp = pack.compensation
            put(
                "compensation",
                comp.model_dump(mode="json", exclude={"provenance", "text"}),
                ref,
                comp.provenance,
            )
            for kind, subs in pack.complaints.items():
                for sub, cspec in subs.items():
                    put(
                        f"complaint {kind}.{sub}",
                        cspec.model_dump(mode="json", exclude={"provenance", "text"}),
                        ref,
                        cspec.provenance,
                    )
        elif isinstance(pack, HolidayPack):
            put(
                f"window {pack.name}",
                {
                    "start": pack.window.start,
                    "end": pack.window.end,
                    "effective_from": pack.effective_from,
                },
                ref,
                None,
            )
            for rule in pack.rules:
                put(
                    f"holiday {pack.name}/{rule.id}",
                    rule.model_dump(
                        mode="json", exclude={"id", "provenance", "text"}, exclude_none=True
                    ),
                    ref,
                    rule.provenance,
                )
    return rules


def _fields(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)
    }


def diff(a: Iterable[LoadedPack], b: Iterable[LoadedPack]) -> list[Change]:
    """The rules added, removed or changed from rulebook ``a`` to ``b``, in key order;
    a rule whose values are the same but whose provenance differs counts as changed."""
    left, right = flatten(a), flatten(b)
    changes: list[Change] = []
    for key in sorted(set(left) | set(right)):
        before, after = left.get(key), right.get(key)
        if before is None:
            changes.append(Change(key, "added", {}, None, after))
        elif after is None:
            changes.append(Change(key, "removed", {}, before, None))
        else:
            fields = _fields(before.values, after.values)
            if before.provenance != after.provenance:
                fields["provenance"] = (before.provenance, after.provenance)
            if fields:
                changes.append(Change(key, "changed", fields, before, after))
    return changes
