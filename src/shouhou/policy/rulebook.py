"""The rulebook in force: one base pack plus holiday overrides, answering the core's questions.

Holiday overrides (SPEC §2) have a window in Asia/Shanghai time and a trigger: *case-level*
(the case had one of the named events inside the window) or *deadline-level* (the event that
starts this deadline happened inside the window), plus ``only``/``exclude`` filters. The first
matching rule, in pack order, sets the duration; the base pack gives everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from shouhou.domain.model import CaseKind, Reason
from shouhou.domain.rules import (
    CompensationRule,
    ComplaintRule,
    DeadlineContext,
    DeadlineRule,
    LimitRule,
    ReasonRule,
    RuleInfo,
)
from shouhou.domain.values import parse_duration, parse_yuan
from shouhou.errors import PolicyError
from shouhou.policy.calendar import add_business_days
from shouhou.policy.loader import LoadedPack, Registry
from shouhou.policy.schema import (
    PROMISED,
    BasePack,
    DeadlineSpec,
    Filter,
    HolidayPack,
    OverrideRule,
    Provenance,
    Text,
    shanghai_if_naive,
)

ONE_SECOND = timedelta(seconds=1)


class Rulebook:
    """A base pack and its holiday packs, as the :class:`shouhou.domain.rules.Rules` port."""

    def __init__(self, base: LoadedPack, holidays: Sequence[LoadedPack] = ()) -> None:
        if not isinstance(base.pack, BasePack):
            raise PolicyError(f"{base.ref} is not a base pack")
        for holiday in holidays:
            if not isinstance(holiday.pack, HolidayPack):
                raise PolicyError(f"{holiday.ref} is not a holiday pack")
        self.base_pack: BasePack = base.pack
        self.base = base
        self.holidays = list(holidays)
        self._rules = self._index()
        #: The base pack's rule for each deadline context that decides it (name, kind,
        #: promotion, shipping and return method): worked out once, looked up after.
        self._base_rules: dict[tuple[object, ...], DeadlineRule] = {}
        #: Limits and reasons by name, and the compensation rule, as worked out: a timeout
        #: asks for several of them, and each used to parse its spec again.
        self._limits: dict[str, LimitRule] = {}
        self._reasons: dict[Reason, ReasonRule] = {}
        self._compensation: CompensationRule | None = None
        #: Each holiday pack's window as aware instants: [start, end).
        self._windows = {
            id(h.pack): (
                shanghai_if_naive(h.pack.window.start),
                shanghai_if_naive(h.pack.window.end) + ONE_SECOND,
            )
            for h in self.holidays
            if isinstance(h.pack, HolidayPack)
        }

    @classmethod
    def select(
        cls, registry: Registry, names: Sequence[str], at: datetime | None = None
    ) -> Rulebook:
        """The rulebook of ``names`` (base first) in the versions in force at ``at``."""
        if not names:
            raise PolicyError("a rulebook needs a base pack")
        packs = [registry.in_force(name, at) for name in names]
        return cls(packs[0], packs[1:])

    @property
    def ref(self) -> str:
        return "+".join(p.ref for p in [self.base, *self.holidays])

    # --- the Rules port ------------------------------------------------------------------

    def deadline(self, ctx: DeadlineContext) -> DeadlineRule:
        key = (ctx.name, ctx.kind, ctx.promotion, ctx.shipping_method, ctx.return_method)
        base = self._base_rules.get(key)
        if base is None:
            base = self._base_rules[key] = self._base_deadline(ctx)
        for holiday in self.holidays:
            assert isinstance(holiday.pack, HolidayPack)
            for rule in holiday.pack.rules:
                if ctx.name in rule.set and self._matches(holiday.pack, rule, ctx):
                    return DeadlineRule(
                        name=ctx.name,
                        duration=parse_duration(rule.set[ctx.name]),
                        on_expiry=base.on_expiry,
                        rule_id=f"{holiday.pack.name}/{rule.id}",
                        policy=holiday.ref,
                        source=rule.provenance.label(),
                        text_zh=rule.text.zh,
                        text_en=rule.text.en,
                        calendar=base.calendar,
                    )
        return base

    def _base_deadline(self, ctx: DeadlineContext) -> DeadlineRule:
        spec = self.base_pack.deadlines.get(ctx.name)
        if spec is None:
            raise PolicyError(f"{self.base.ref} has no deadline {ctx.name}")
        return DeadlineRule(
            name=ctx.name,
            duration=self._duration(spec, ctx),
            on_expiry=self._on_expiry(spec, ctx.kind),
            rule_id=f"{self.base_pack.name}/{ctx.name}",
            policy=self.base.ref,
            source=spec.provenance.label(),
            text_zh=spec.text.zh,
            text_en=spec.text.en,
            calendar=spec.calendar or self.base_pack.calendar,
        )

    def due_at(self, rule: DeadlineRule, start: datetime) -> datetime:
        """``start`` plus the rule's duration: natural time, or whole Chinese working days."""
        assert rule.duration is not None
        if rule.calendar == "business":
            return add_business_days(start, rule.duration.days)
        return start + rule.duration

    def limit(self, name: str) -> LimitRule:
        found = self._limits.get(name)
        if found is None:
            found = self._limits[name] = self._limit(name)
        return found

    def _limit(self, name: str) -> LimitRule:
        spec = self.base_pack.limits.get(name)
        if spec is None:
            raise PolicyError(f"{self.base.ref} has no limit {name}")
        value: int | timedelta | bool = (
            spec.value if not isinstance(spec.value, str) else (parse_duration(spec.value))
        )
        return LimitRule(
            value=value, rule_id=f"{self.base_pack.name}/{name}", source=spec.provenance.label()
        )

    def reason(self, reason: Reason) -> ReasonRule:
        found = self._reasons.get(reason)
        if found is None:
            found = self._reasons[reason] = self._reason(reason)
        return found

    def _reason(self, reason: Reason) -> ReasonRule:
        spec = self.base_pack.reasons[reason]
        return ReasonRule(
            reason=reason,
            fault=spec.fault,
            compensation=spec.compensation,
            kinds=frozenset(spec.kinds),
            evidence=tuple(spec.evidence),
            rule_id=f"{self.base_pack.name}/reason.{reason.value}",
        )

    def compensation(self) -> CompensationRule:
        if self._compensation is None:
            self._compensation = self._compensation_rule()
        return self._compensation

    def _compensation_rule(self) -> CompensationRule:
        spec = self.base_pack.compensation
        return CompensationRule(
            rate=Decimal(spec.rate),
            minimum=parse_yuan(spec.minimum),
            maximum=parse_yuan(spec.maximum),
            paid_as=spec.paid_as,
            points_per_yuan=spec.points_per_yuan,
            reasons=frozenset(spec.reasons),
            rule_id=f"{self.base_pack.name}/compensation",
        )

    def complaint(self, type: str, subtype: str) -> ComplaintRule | None:
        spec = self.base_pack.complaints.get(type, {}).get(subtype)
        if spec is None:
            return None
        return ComplaintRule(
            type=type,
            subtype=subtype,
            points=spec.points,
            compensates=spec.compensates,
            when=spec.when,
            case_reason=spec.case_reason,
            rule_id=f"{self.base_pack.name}/complaint.{type}.{subtype}",
        )

    def describe(self, rule_id: str) -> RuleInfo:
        """The provenance and text of any rule id this rulebook can produce."""
        found = self._rules.get(rule_id)
        if found is None:
            return RuleInfo(rule_id=rule_id, source="unknown", text_zh=rule_id, text_en=rule_id)
        return found

    # --- helpers -------------------------------------------------------------------------

    def _index(self) -> dict[str, RuleInfo]:
        base = self.base_pack
        entries: list[tuple[str, Provenance, Text]] = [
            *((f"{base.name}/{n}", d.provenance, d.text) for n, d in base.deadlines.items()),
            *((f"{base.name}/{n}", lim.provenance, lim.text) for n, lim in base.limits.items()),
            *(
                (f"{base.name}/reason.{r.value}", spec.provenance, spec.text)
                for r, spec in base.reasons.items()
            ),
        ]
        comp = base.compensation
        entries.append((f"{base.name}/compensation", comp.provenance, comp.text))
        entries += [
            (f"{base.name}/complaint.{kind}.{sub}", spec.provenance, spec.text)
            for kind, subs in base.complaints.items()
            for sub, spec in subs.items()
        ]
        for holiday in self.holidays:
            assert isinstance(holiday.pack, HolidayPack)
            entries += [
                (f"{holiday.pack.name}/{rule.id}", rule.provenance, rule.text)
                for rule in holiday.pack.rules
            ]
        return {
            rid: RuleInfo(rule_id=rid, source=prov.label(), text_zh=text.zh, text_en=text.en)
            for rid, prov, text in entries
        }

    @staticmethod
    def _on_expiry(spec: DeadlineSpec, kind: CaseKind | None) -> str:
        if isinstance(spec.on_expiry, str):
            return spec.on_expiry
        if kind is None or kind not in spec.on_expiry:
            raise PolicyError(f"no on_expiry for kind {kind}")
        return spec.on_expiry[kind]

    @staticmethod
    def _duration(spec: DeadlineSpec, ctx: DeadlineContext) -> timedelta | None:
        if isinstance(spec.duration, str):
            return parse_duration(spec.duration)
        key: str | None = None
        if spec.varies_by == "promotion" and ctx.promotion is not None:
            key = ctx.promotion.value
        elif spec.varies_by == "shipping_method" and ctx.shipping_method is not None:
            key = ctx.shipping_method.value
        elif spec.varies_by == "return_method":
            method = ctx.return_method or ctx.shipping_method
            key = method.value if method else None
        text = spec.duration.get(key or "default") or spec.duration.get("default")
        if text is None:
            raise PolicyError(f"deadline {ctx.name} has no duration for {key!r} and no default")
        return None if text == PROMISED else parse_duration(text)

    def _matches(self, pack: HolidayPack, rule: OverrideRule, ctx: DeadlineContext) -> bool:
        start, end = self._windows[id(pack)]

        def inside(moment: datetime) -> bool:
            return start <= moment < end

        if rule.only is not None and not _passes(rule.only, ctx, default=True):
            return False
        if rule.exclude is not None and _passes(rule.exclude, ctx, default=False):
            return False
        wanted = set(rule.trigger.events)
        if rule.trigger.level == "deadline":
            return ctx.start_event in wanted and inside(ctx.start_at)
        return any(mark.event in wanted and inside(mark.at) for mark in ctx.marks)


def _passes(flt: Filter, ctx: DeadlineContext, *, default: bool) -> bool:
    """Whether ``ctx`` meets every condition the filter names (``default`` if it names none)."""
    checks: list[bool] = []
    if flt.kind is not None:
        checks.append(ctx.kind in flt.kind)
    if flt.shipping_method is not None:
        checks.append(ctx.shipping_method in flt.shipping_method)
    if flt.return_method is not None:
        method = ctx.return_method or ctx.shipping_method
        checks.append(method in flt.return_method)
    return all(checks) if checks else default
