"""The policy lab's simulator: a workload's marketplace run through the real engine under a
rulebook, on the virtual clock, until every case has ended (SPEC §10).

The workload is planned once from its seed (:func:`plan`): which orders arrive, which of them
get a case, of what kind and reason, in which shop. Each policy then runs the same plan: an
order with a case is placed in the engine when its buyer applies (its earlier facts — payment,
shipment, delivery — as times, SPEC §11), and every later step is an engine command or a
deadline the engine fires. Parties decide with a random generator seeded by the workload seed,
the case's plan number and the step, so the same case meets the same behaviour under every
policy, and the same seed gives the same output. Orders without a case are counted, not placed:
they would only add paid orders to the shops' metrics, so rates per order are divided by the
workload's order count (the one division made here; every other figure is the engine's).

Figures (:func:`results`) are read from the engine after the run: each case's stored state
and timeline, and each shop's SPEC §9 metrics over the whole run.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain import events as e
from shouhou.domain.model import (
    TERMINAL_STATUSES,
    Case,
    CaseKind,
    CaseStatus,
    Complaint,
    ComplaintStatus,
    Order,
    Reason,
    ShippingMethod,
    Stage,
)
from shouhou.domain.values import format_yuan, local, parse_duration, parse_yuan
from shouhou.errors import ActionRefused, NotFound
from shouhou.policy.selection import Selection
from shouhou.services.deadlines import Fired
from shouhou.services.ports import UnitOfWork
from shouhou.sim import move_clock
from shouhou.sim.demo import Planned
from shouhou.sim.memory import LabStore, LabUnitOfWork
from shouhou.sim.workload import BEFORE_SHIPMENT, Category, Profile, Workload
from shouhou.times import show

HOUR = timedelta(hours=1)
#: When nothing is planned and cases still wait on deadlines, the clock moves this far at once.
IDLE_STEP = timedelta(hours=6)
#: A run that goes this long after the span with open cases is stopped: a case nobody moves.
MAX_SETTLE = timedelta(days=400)
#: A late-shipment claim comes after the normal ship-by limit has passed (SPEC §2).
LATE_AFTER = timedelta(hours=72)
PERCENTILES = (50, 90, 99)


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedCase:
    """One case of the plan: its order (with the facts up to the application) and request."""

    number: int
    order: Order
    apply_at: datetime
    kind: CaseKind
    reason: Reason
    amount: int
    profile: str


@dataclass
class Plan:
    workload: Workload
    cases: list[PlannedCase]
    orders_by_shop: dict[str, int]
    profiles: dict[str, str]  # shop -> behaviour profile

    @property
    def orders(self) -> int:
        return sum(self.orders_by_shop.values())


def _hourly_counts(workload: Workload) -> list[int]:
    """Orders per hour of the span: the total split by the hour-of-day weights, rounded so
    that the counts add up to the total exactly."""
    hours = math.ceil(workload.duration / HOUR)
    weights = [
        workload.arrivals.by_hour[local(workload.start + h * HOUR).hour] for h in range(hours)
    ]
    whole = sum(weights)
    total, counts, before, running = workload.arrivals.orders, [], 0, 0.0
    for weight in weights:
        running += weight
        upto = round(running * total / whole)
        counts.append(upto - before)
        before = upto
    return counts


def _shops(workload: Workload, rng: random.Random) -> tuple[list[str], list[float], dict[str, str]]:
    spec = workload.shops
    width = len(str(spec.count))
    names = [f"s{i:0{width}d}" for i in range(1, spec.count + 1)]
    cumulative = list(itertools.accumulate(1 / (i**spec.zipf) for i in range(1, spec.count + 1)))
    kinds, shares = zip(*sorted(spec.profiles.items()), strict=True)
    profiles = {name: rng.choices(kinds, weights=shares)[0] for name in names}
    return names, cumulative, profiles


def _order(
    number: int, shop: str, category: Category, paid_at: datetime, rng: random.Random
) -> Order:
    low, high = (parse_yuan(p) for p in category.price)
    free = rng.random() < category.free_shipping
    fee = 0 if free else parse_yuan(category.shipping_fee)
    sanbao = tuple((k, parse_duration(v)) for k, v in (category.sanbao or {}).items())
    return Order(
        id=f"o{number:07d}",
        shop=shop,
        buyer=f"b{number:07d}",
        total=rng.randrange(low, high + 1, 100) + fee if high > low else low + fee,
        shipping_fee=fee,
        free_shipping=free,
        shipping_method=ShippingMethod.POST
        if rng.random() < category.post
        else ShippingMethod.EXPRESS,
        no_reason_return=category.no_reason,
        sanbao=sanbao,
        created_at=paid_at,
        paid_at=paid_at,
    )


def _planned_case(
    workload: Workload,
    number: int,
    order: Order,
    mix_index: int,
    category: Category,
    profile: Profile,
    rng: random.Random,
    profile_name: str,
) -> PlannedCase:
    mix = category.cases[mix_index]
    paid = order.paid_at
    assert paid is not None
    buyer = profile.buyer
    if mix.reason in (Reason.OUT_OF_STOCK, Reason.LATE_SHIPMENT):
        wait = LATE_AFTER if mix.reason == Reason.LATE_SHIPMENT else timedelta(0)
        apply_at, shipped_at, delivered_at = paid + wait + buyer.answer.draw(rng), None, None
    else:
        shipped = paid + workload.logistics.ship.draw(rng)
        transit = workload.logistics.transit.draw(rng)
        if mix.reason in BEFORE_SHIPMENT:  # not received: asked while the parcel travels
            apply_at = shipped + transit * rng.random()
            shipped_at, delivered_at = shipped, None
        else:
            delivered = shipped + transit
            apply_at = delivered + buyer.answer.draw(rng)
            shipped_at, delivered_at = shipped, delivered
    placed = replace(order, shipped_at=shipped_at, delivered_at=delivered_at)
    refunds = mix.kind in (CaseKind.REFUND_ONLY, CaseKind.RETURN_REFUND)
    amount = max(1, round(order.total * mix.amount)) if refunds else 0
    return PlannedCase(number, placed, apply_at, mix.kind, mix.reason, amount, profile_name)


def plan(workload: Workload) -> Plan:
    """The marketplace of ``workload``: the same for the same seed."""
    rng = random.Random(f"{workload.seed}:plan")
    names, shop_weights, profiles = _shops(workload, rng)
    categories = workload.categories
    category_weights = list(itertools.accumulate(c.share for c in categories))
    case_rates = [list(itertools.accumulate(m.rate for m in c.cases)) for c in categories]
    orders_by_shop: Counter[str] = Counter()
    cases: list[PlannedCase] = []
    number = 0
    for hour, count in enumerate(_hourly_counts(workload)):
        start = workload.start + hour * HOUR
        for _ in range(count):
            number += 1
            shop = names[bisect.bisect(shop_weights, rng.random() * shop_weights[-1])]
            orders_by_shop[shop] += 1
            which = min(
                bisect.bisect(category_weights, rng.random() * category_weights[-1]),
                len(categories) - 1,
            )
            roll = rng.random()
            mix = bisect.bisect(case_rates[which], roll)
            if mix >= len(categories[which].cases):
                continue  # no case: counted, not placed
            paid_at = start + timedelta(seconds=rng.randrange(3600))
            category = categories[which]
            order = _order(number, shop, category, paid_at, rng)
            profile = profiles[shop]
            cases.append(
                _planned_case(
                    workload, number, order, mix, category, workload.profiles[profile], rng, profile
                )
            )
    cases.sort(key=lambda p: (p.apply_at, p.number))
    return Plan(workload, cases, dict(sorted(orders_by_shop.items())), profiles)


# --- running one policy ----------------------------------------------------------------------


@dataclass
class Run:
    """One policy's run: the engine it ran on and what happened, as the engine reported it."""

    label: str
    engine: Engine[UnitOfWork]
    case_ids: list[str] = field(default_factory=list)
    refused_applications: Counter[str] = field(default_factory=Counter)
    complaint_ids: list[str] = field(default_factory=list)
    refused_complaints: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    stale: int = 0
    fired: int = 0
    ended_at: datetime | None = None


class Simulator:
    """Carries out a plan under one rulebook; parties react to what the engine says."""

    def __init__(
        self,
        plan: Plan,
        engine: Engine[UnitOfWork],
        clock: VirtualClock,
        label: str,
        on_progress: Callable[[int, int], None] | None = None,
        next_due: Callable[[], datetime | None] | None = None,
    ) -> None:
        self.plan, self.engine, self.clock = plan, engine, clock
        #: When the store can say when its next deadline falls due, the clock skips the
        #: deadline runner while nothing is due (on a database, it asks every time).
        self.next_due = next_due
        self.run = Run(label, engine)
        self.agenda: list[Planned] = []
        self.seq = itertools.count()
        self.open: set[str] = set()
        self.complaints_open: set[str] = set()
        self.seen: dict[str, tuple[object, ...]] = {}
        self.number: dict[str, int] = {}  # case id -> plan number
        self.steps: Counter[str] = Counter()
        self.on_progress = on_progress
        self.ended = 0

    # --- agenda ----------------------------------------------------------------------------

    def at(
        self,
        when: datetime,
        actor: str,
        action: str,
        target: dict[str, str],
        params: dict[str, Any] | None = None,
    ) -> None:
        heapq.heappush(
            self.agenda, Planned(when, next(self.seq), actor, action, target, params or {})
        )

    def later(
        self,
        delay: timedelta,
        actor: str,
        action: str,
        case: Case,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.at(self.clock.now() + delay, actor, action, {"case_id": case.id}, params)

    def rng(self, case_id: str) -> random.Random:
        """The generator of the case's next decision: the same under every policy."""
        self.steps[case_id] += 1
        return random.Random(
            f"{self.plan.workload.seed}:{self.number[case_id]}:{self.steps[case_id]}"
        )

    # --- running ---------------------------------------------------------------------------

    def go(self) -> Run:
        """Run the plan until every case has ended."""
        for planned in self.plan.cases:
            self.at(
                planned.apply_at,
                f"buyer:{planned.order.buyer}",
                "apply",
                {"plan": str(planned.number)},
            )
        by_number = {p.number: p for p in self.plan.cases}
        deadline = self.plan.workload.start + self.plan.workload.duration + MAX_SETTLE
        unopened = len(self.plan.cases)
        # plans left for cases that have ended are stale: the run is over with the last case
        while unopened or self.open or self.complaints_open:
            if self.agenda:
                item = heapq.heappop(self.agenda)
                self.move(item.at)
                if item.action == "apply":
                    unopened -= 1
                    self.apply(by_number[int(item.target["plan"])])
                else:
                    self.carry_out(item)
            else:
                if self.clock.now() > deadline:
                    raise RuntimeError(
                        f"{len(self.open)} case(s) never ended: {sorted(self.open)[:5]}"
                    )
                self.move(self.clock.now() + IDLE_STEP)
        self.run.ended_at = self.clock.now()
        return self.run

    def move(self, to: datetime) -> None:
        """Fire the deadlines due up to ``to``, then set the clock there."""
        if to < self.clock.now():
            to = self.clock.now()
        due = self.next_due() if self.next_due is not None else to
        if due is not None and due <= to:
            move_clock(self.engine, self.clock, to, self.on_fired)
        else:
            self.clock.set(to)

    def apply(self, planned: PlannedCase) -> None:
        engine = self.engine
        engine.place_order(planned.order)
        cmd = engine.build(
            "apply",
            actor=f"buyer:{planned.order.buyer}",
            target={},
            params={
                "order": planned.order.id,
                "kind": planned.kind.value,
                "reason": planned.reason.value,
                "amount": planned.amount,
            },
        )
        try:
            case = engine.execute(cmd)
        except ActionRefused as exc:
            self.run.refused_applications[exc.code] += 1
            self.ended += 1  # a refused application is over as soon as it is made
            if self.on_progress is not None:
                self.on_progress(self.ended, len(self.plan.cases))
            return
        assert isinstance(case, Case)
        self.run.case_ids.append(case.id)
        self.run.actions["apply"] += 1
        self.number[case.id] = planned.number
        self.open.add(case.id)
        self.react(case, self.plan.workload.profiles[planned.profile])

    def carry_out(self, item: Planned) -> None:
        try:
            cmd = self.engine.build(
                item.action, actor=item.actor, target=item.target, params=item.params
            )
            result = self.engine.execute(cmd)
        except ActionRefused as exc:
            if item.action in ("file_complaint", "rule_complaint"):
                self.complaints_open.discard(item.target["complaint_id"])
                self.run.refused_complaints[exc.code] += 1
                return
            self.run.stale += 1  # the case moved on before the party acted
            if item.action == "rule":  # an agent never leaves a case in review unruled
                case = self.engine.case(item.target["case_id"])
                if case.stage == Stage.REVIEW:
                    self.later(
                        HOUR,
                        item.actor,
                        "rule",
                        case,
                        {
                            "outcome": "refund",
                            "liable": "seller",
                            "reason": "refunded in full after review",
                        },
                    )
            return
        self.run.actions[item.action] += 1
        if isinstance(result, Complaint):
            self.complaint_moved(result)
            return
        assert isinstance(result, Case)
        self.changed(result)

    def on_fired(self, fired: Fired) -> None:
        self.run.fired += 1
        if fired.subject_type == "case" and fired.subject_id in self.number:
            self.changed(self.engine.case(fired.subject_id))

    def changed(self, case: Case) -> None:
        if case.status in TERMINAL_STATUSES:
            if case.id in self.open:
                self.open.discard(case.id)
                self.complain(case)
                self.ended += 1
                if self.on_progress is not None:
                    self.on_progress(self.ended, len(self.plan.cases))
            return
        shop_profile = self.plan.profiles[case.shop]
        self.react(case, self.plan.workload.profiles[shop_profile])

    # --- the parties -------------------------------------------------------------------------

    def react(self, case: Case, profile: Profile) -> None:
        """Plan what the party who must act now will do (or nothing: they stay silent)."""
        where = (case.status, case.stage, case.remedy)
        if self.seen.get(case.id) == where:
            return
        self.seen[case.id] = where
        rng = self.rng(case.id)
        seller, buyer = profile.seller, profile.buyer
        s, b = f"seller:{case.shop}", f"buyer:{case.buyer}"
        match case.status:
            case CaseStatus.AWAITING_SELLER if case.remedy is not None:
                answer = "accept_remedy" if rng.random() < buyer.accept_remedy else "decline_remedy"
                self.later(buyer.answer.draw(rng), b, answer, case)
            case CaseStatus.AWAITING_SELLER:
                self.seller_answers(case, profile, rng)
            case CaseStatus.SELLER_REFUSED:
                choice = _pick({str(k): v for k, v in buyer.after_refusal.items()}, rng)
                params = {"note": "more photos attached"} if choice == "modify" else None
                action = {"intervene": "request_intervention"}.get(choice, choice)
                if choice != "silence":
                    self.later(buyer.answer.draw(rng), b, action, case, params)
            case CaseStatus.AWAITING_BUYER_RETURN:
                if rng.random() >= buyer.dropout:
                    waybill = f"YT{rng.randrange(10**10):010d}"
                    self.later(
                        buyer.ship_return.draw(rng),
                        b,
                        "ship_return",
                        case,
                        {"carrier": "YTO", "waybill": waybill, "method": "express"},
                    )
            case CaseStatus.AWAITING_SELLER_RECEIPT:
                roll = rng.random()
                if roll < seller.refuse_receipt:
                    self.later(
                        seller.confirm_receipt.draw(rng),
                        s,
                        "refuse_receipt",
                        case,
                        {
                            "reason": "second sale affected: tags cut",
                            "condition": "tags_cut",
                            "evidence": ["photo"],
                        },
                    )
                elif roll >= seller.refuse_receipt + seller.receipt_silence:
                    self.later(seller.confirm_receipt.draw(rng), s, "confirm_receipt", case)
            case CaseStatus.AWAITING_SELLER_RESHIP:
                if rng.random() >= seller.reship_silence:
                    self.later(
                        seller.reship.draw(rng),
                        s,
                        "reship",
                        case,
                        {"carrier": "SF", "waybill": f"SF{rng.randrange(10**10):010d}"},
                    )
            case CaseStatus.AWAITING_BUYER_CONFIRMATION:
                if rng.random() >= buyer.confirm_silence:
                    self.later(buyer.confirm_received.draw(rng), b, "confirm_received", case)
            case CaseStatus.IN_INTERVENTION:
                self.intervention(case, profile, rng)

    def complain(self, case: Case) -> None:
        """Over an ended case, the buyer may file the rule complaint its reason leads to."""
        spec = self.plan.workload.complaints
        chosen = spec.complaint_for(case.reason) if spec is not None else None
        if spec is None or chosen is None:
            return
        rng = self.rng(case.id)
        if rng.random() >= spec.filed[case.reason]:
            return
        kind, subtypes = chosen
        complaint_id = f"k{self.number[case.id]:07d}"
        self.run.complaint_ids.append(complaint_id)
        self.complaints_open.add(complaint_id)
        profile = self.plan.workload.profiles[self.plan.profiles[case.shop]]
        self.at(
            self.clock.now() + profile.buyer.answer.draw(rng),
            f"buyer:{case.buyer}",
            "file_complaint",
            {"complaint_id": complaint_id},
            {"order": case.order_id, "type": kind, "subtype": _pick(subtypes, rng)},
        )

    def complaint_moved(self, complaint: Complaint) -> None:
        """A complaint filed goes to an agent; a ruled one is over."""
        spec = self.plan.workload.complaints
        if complaint.status != ComplaintStatus.FILED or spec is None:
            self.complaints_open.discard(complaint.id)
            return
        rng = random.Random(f"{self.plan.workload.seed}:{complaint.id}")
        upheld = rng.random() < spec.uphold
        self.at(
            self.clock.now() + spec.rule.draw(rng),
            "agent:lab",
            "rule_complaint",
            {"complaint_id": complaint.id},
            {
                "decision": "upheld" if upheld else "dismissed",
                "reason": "the order's record bears the buyer out"
                if upheld
                else "the seller kept to the rules",
            },
        )

    def seller_answers(self, case: Case, profile: Profile, rng: random.Random) -> None:
        seller, s = profile.seller, f"seller:{case.shop}"
        answer = _pick(
            {
                "agree": seller.agree,
                "refuse": seller.refuse,
                "remedy": seller.remedy,
                "silence": seller.silence,
            },
            rng,
        )
        delay = seller.respond.draw(rng)
        if answer == "remedy" and case.requested_amount > 100:
            self.later(
                delay,
                s,
                "propose_remedy",
                case,
                {"type": "partial_refund", "amount": case.requested_amount // 3},
            )
        elif answer in ("agree", "remedy"):
            self.later(delay, s, "agree", case)
        elif answer == "refuse":
            self.later(delay, s, "refuse", case, {"reason": "the goods were fine when they left"})
        elif rng.random() < profile.buyer.intervene_unanswered:
            # a seller who stays silent: the buyer may ask for an agent from 72h on
            when = case.opened_at + LATE_AFTER + profile.buyer.answer.draw(rng)
            self.at(
                max(when, self.clock.now()),
                f"buyer:{case.buyer}",
                "request_intervention",
                {"case_id": case.id},
            )

    def intervention(self, case: Case, profile: Profile, rng: random.Random) -> None:
        s, b = f"seller:{case.shop}", f"buyer:{case.buyer}"
        if case.stage == Stage.EVIDENCE:
            self.later(
                profile.seller.respond.draw(rng),
                s,
                "submit_evidence",
                case,
                {"text": "dispatch photos and inspection notes"},
            )
            self.later(
                profile.buyer.answer.draw(rng),
                b,
                "submit_evidence",
                case,
                {"text": "photos of the problem"},
            )
            if rng.random() < profile.buyer.evidence_completion:
                self.later(profile.buyer.answer.draw(rng) * 2, b, "complete_evidence", case)
        elif case.stage == Stage.REVIEW:
            agents = self.plan.workload.agents
            outcome = _pick(
                {
                    "refund": agents.refund,
                    "partial_refund": agents.partial_refund,
                    "reject": agents.reject,
                },
                rng,
            )
            if outcome == "partial_refund" and case.requested_amount < 2:
                outcome = "refund"
            params: dict[str, Any] = {
                "outcome": outcome,
                "liable": "buyer" if outcome == "reject" else "seller",
                "reason": "decided on both sides' evidence",
            }
            if outcome == "partial_refund":
                params["amount"] = case.requested_amount // 2
            self.later(agents.rule.draw(rng), "agent:lab", "rule", case, params)


def _pick(shares: dict[str, float], rng: random.Random) -> str:
    roll, running = rng.random(), 0.0
    for name, share in shares.items():
        running += share
        if roll < running:
            return name
    return next(reversed(shares))


# --- engines ---------------------------------------------------------------------------------


def memory_engine(selection: Selection, clock: VirtualClock) -> tuple[Engine[UnitOfWork], LabStore]:
    """An engine on the simulator's in-memory store, running ``selection``'s packs."""
    store = LabStore()
    numbers = itertools.count(1)
    engine: Engine[UnitOfWork] = Engine(
        lambda: LabUnitOfWork(store),
        clock=clock,
        registry=selection.registry(),
        policies=selection.names,
        new_id=lambda: f"c{next(numbers):07d}",
    )
    return engine, store


def simulate(
    plan: Plan,
    selection: Selection,
    *,
    engine: Engine[UnitOfWork] | None = None,
    clock: VirtualClock | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Run:
    """Run ``plan`` under ``selection`` (on the in-memory store unless ``engine`` is given)."""
    clock = clock or VirtualClock(plan.workload.start)
    next_due = None
    if engine is None:
        engine, store = memory_engine(selection, clock)
        next_due = store.next_due_at
    return Simulator(plan, engine, clock, selection.label, on_progress, next_due).go()


# --- figures ---------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _day(moment: datetime) -> str:
    return local(moment).date().isoformat()


def _role(actor: str | None) -> str:
    return (actor or "none").split(":", 1)[0]


def results(plan: Plan, run: Run) -> dict[str, Any]:
    """The figures of ``run``, read from the engine: each case's state and timeline, and each
    shop's metrics over the whole run."""
    engine = run.engine
    by_kind: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    refunds = refund_money = by_timeout = 0
    refunds_by: Counter[str] = Counter()
    hours: dict[str, list[float]] = {}
    agents_per_day: Counter[str] = Counter()
    timeouts_per_day: Counter[str] = Counter()
    resolution: list[float] = []
    for case_id in run.case_ids:
        case = engine.case(case_id)
        by_kind[case.kind.value] += 1
        statuses[case.status.value] += 1
        if case.closed_reason is not None:
            closed[case.closed_reason.value] += 1
        if case.resolved_at is not None:
            spent = (case.resolved_at - case.opened_at).total_seconds() / 3600
            hours.setdefault(case.kind.value, []).append(spent)
            resolution.append(spent)
        if case.status == CaseStatus.REFUNDED:
            refunds += 1
            refund_money += case.refund_amount
            refunds_by[_role(case.resolved_by)] += 1
            if case.resolved_by == "system":
                by_timeout += 1
                assert case.resolved_at is not None
                timeouts_per_day[_day(case.resolved_at)] += 1
        for stored in engine.timeline(case_id):
            if isinstance(stored.event, e.InterventionRequested):
                agents_per_day[_day(stored.event.at)] += 1
    complaints: Counter[str] = Counter()
    for complaint_id in run.complaint_ids:
        try:
            complaints[engine.complaint(complaint_id).status.value] += 1
        except NotFound:
            continue  # refused when filed: counted in refused
    start = plan.workload.start
    end = run.ended_at or start
    shops: list[dict[str, Any]] = []
    for shop, orders in plan.orders_by_shop.items():
        m = engine.shop_metrics(shop, at=end, window=end - start)
        shops.append(
            {
                "shop": shop,
                "profile": plan.profiles[shop],
                "orders": orders,
                "refunds": m.refunds,
                "disputes": m.disputes,
                "dispute_rate": round(m.disputes / orders, 6) if orders else 0.0,
                "self_completion_rate": m.self_completion_rate,
                "penalty_points": m.penalty_points,
                "compensation_paid": m.compensation_paid,
            }
        )

    def spread(name: str) -> dict[str, float | None]:
        values = [float(s[name]) for s in shops]
        return {f"p{p}": percentile(values, p) for p in (10, 50, 90)} | {
            "max": max(values, default=None)
        }

    return {
        "policy": run.label,
        "orders": plan.orders,
        "applications_refused": dict(sorted(run.refused_applications.items())),
        "cases": len(run.case_ids),
        "cases_by_kind": dict(sorted(by_kind.items())),
        "statuses": dict(sorted(statuses.items())),
        "closed_reasons": dict(sorted(closed.items())),
        "refunds": {
            "count": refunds,
            "money": format_yuan(refund_money),
            "by_timeout": by_timeout,
            "by_whom": dict(sorted(refunds_by.items())),
        },
        "resolution_hours": {
            kind: {f"p{p}": _round(percentile(values, p)) for p in PERCENTILES}
            for kind, values in sorted(hours.items())
        },
        "resolution_hours_all": sorted(round(v, 3) for v in resolution),
        "agents": {
            "total": sum(agents_per_day.values()),
            "peak_per_day": max(agents_per_day.values(), default=0),
            "per_day": dict(sorted(agents_per_day.items())),
        },
        "refunds_by_timeout_per_day": dict(sorted(timeouts_per_day.items())),
        "shops": {
            "count": len(shops),
            "dispute_rate": spread("dispute_rate"),
            "self_completion_rate": spread("self_completion_rate"),
            "each": shops,
        },
        "complaints": {
            "filed": sum(complaints.values()),
            "by_status": dict(sorted(complaints.items())),
            "refused": dict(sorted(run.refused_complaints.items())),
        },
        "penalty_points": sum(s["penalty_points"] for s in shops),
        "compensation": format_yuan(sum(s["compensation_paid"] for s in shops)),
        "engine": {
            "actions": sum(run.actions.values()),
            "deadlines_fired": run.fired,
            "stale_plans": run.stale,
            "ended_at": show(end),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
