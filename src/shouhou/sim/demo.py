"""The demo marketplace: a week of orders and after-sales cases on the virtual clock.

Buyers and sellers are simulated with a seeded ``random.Random``: sellers agree, refuse or go
quiet; buyers ship returns, modify, withdraw, complain or go quiet. Whoever goes quiet meets a
deadline. Sellers classify most ended cases (登记备案); every order is for one product.

The agent leaves work for whoever tries the demo: the first cases that reach review and the
first complaints filed are never ruled on, so every queue of the API and the console has
something in it (a queue's oldest entries are what an agent sees first).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shouhou.bootstrap import Engine
from shouhou.clock import SystemClock, VirtualClock
from shouhou.db.engine import where
from shouhou.domain.model import (
    Case,
    CaseStatus,
    Cause,
    Complaint,
    Item,
    Order,
    Promotion,
    Reason,
    ShippingMethod,
    Stage,
)
from shouhou.domain.values import SHANGHAI, format_yuan, local
from shouhou.errors import ActionRefused
from shouhou.i18n import N_, Translator, translator
from shouhou.services.deadlines import Fired
from shouhou.services.ports import UnitOfWork
from shouhou.sim import move_clock


def default_start(now: datetime, days: int, settle_days: int) -> datetime:
    """Beijing midnight far enough back that the simulated weeks end before ``now``."""
    back = local(now) - timedelta(days=days + settle_days + 1)
    return datetime.combine(back.date(), time(0), tzinfo=SHANGHAI)


TICK = timedelta(hours=1)
SHOPS = ("s1", "s2", "s3", "s4", "s5")
AFTER_SALE_REASONS = ("quality", "no_reason", "wrong_item", "damaged", "not_as_described")
#: What the shops sell: SKU and title (every order is for one of them).
PRODUCTS = (
    ("TEE-COTTON-M", "纯棉短袖T恤 Cotton T-shirt"),
    ("MUG-CERAMIC-350", "陶瓷马克杯 Ceramic mug 350 ml"),
    ("EARBUDS-BT5", "蓝牙耳机 Bluetooth earbuds"),
    ("TOTE-CANVAS", "帆布托特包 Canvas tote bag"),
    ("LAMP-LED-DESK", "LED 护眼台灯 LED desk lamp"),
    ("KETTLE-1L7", "电热水壶 Electric kettle 1.7 L"),
)
#: How a seller classifies an ended case of each reason (登记备案: category, cause).
CLASSIFY = {
    Reason.QUALITY: ("质量问题 quality defect", Cause.PRODUCT_QUALITY),
    Reason.DAMAGED: ("运输破损 damaged in transit", Cause.LOGISTICS),
    Reason.NOT_AS_DESCRIBED: ("描述不符 not as described", Cause.DESCRIPTION),
    Reason.WRONG_ITEM: ("发错货 wrong item sent", Cause.SERVICE),
    Reason.NO_REASON: ("七天无理由 changed mind", Cause.BUYER_PREFERENCE),
    Reason.LATE_SHIPMENT: ("发货慢 late shipment", Cause.LOGISTICS),
    Reason.OUT_OF_STOCK: ("缺货 out of stock", Cause.SERVICE),
}
OTHER_CLASS = ("其他 other", Cause.BUYER_PREFERENCE)
#: Cases left awaiting a ruling and complaints left unruled, for whoever tries the demo.
LEFT_FOR_YOU = 3
#: What the progress bar says of the simulated hour: the day, its phase, what there is so far.
PROGRESS = N_("day {day} ({phase}) · {orders} orders · {cases} cases")
SELLING = N_("selling")
SETTLING = N_("settling")


@dataclass(order=True)
class Planned:
    at: datetime
    seq: int
    actor: str = field(compare=False)
    action: str = field(compare=False)
    target: dict[str, str] = field(compare=False)
    params: dict[str, Any] = field(compare=False, default_factory=dict)


class Demo:
    def __init__(self, engine: Engine[UnitOfWork], clock: VirtualClock, rng: random.Random) -> None:
        self.engine, self.clock, self.rng = engine, clock, rng
        self.agenda: list[Planned] = []
        self.seq = 0
        self.fired: Counter[str] = Counter()
        self.refused = 0
        self.actions: Counter[str] = Counter()
        self.case_ids: list[str] = []
        self.complaint_ids: list[str] = []
        self.seen: dict[str, tuple[object, ...]] = {}
        self.unruled_cases = 0
        self.unruled_complaints = 0

    def plan(
        self,
        delay: timedelta,
        actor: str,
        action: str,
        target: dict[str, str],
        params: dict[str, Any] | None = None,
    ) -> None:
        self.seq += 1
        heapq.heappush(
            self.agenda,
            Planned(self.clock.now() + delay, self.seq, actor, action, target, params or {}),
        )

    def hours(self, low: float, high: float) -> timedelta:
        return timedelta(minutes=round(self.rng.uniform(low, high) * 60))

    # --- the marketplace -------------------------------------------------------------------

    def new_order(self, number: int) -> None:
        rng = self.rng
        now = self.clock.now()
        promotion = Promotion.JUHUASUAN if rng.random() < 0.1 else Promotion.NORMAL
        method = ShippingMethod.POST if rng.random() < 0.08 else ShippingMethod.EXPRESS
        total = rng.randrange(1990, 59900, 10)
        order_id = f"o{number:05d}"
        shop = rng.choice(SHOPS)
        buyer = f"b{rng.randrange(1, 200):03d}"
        sku, title = rng.choice(PRODUCTS)
        self.engine.place_order(
            Order(
                id=order_id,
                shop=shop,
                buyer=buyer,
                total=total,
                items=(Item(sku=sku, title=title, quantity=1, unit_price=total),),
                free_shipping=rng.random() < 0.7,
                promotion=promotion,
                shipping_method=method,
                created_at=now,
                paid_at=now,
            )
        )
        target = {"order_id": order_id}
        roll = rng.random()
        if roll < 0.1:  # the buyer changes their mind before shipment
            reason = rng.choice(("other", "out_of_stock", "late_shipment"))
            self.plan(
                self.hours(1, 30),
                f"buyer:{buyer}",
                "apply",
                {},
                {"order": order_id, "kind": "refund_only", "reason": reason, "amount": total},
            )
        ship_delay = self.hours(2, 48) if rng.random() < 0.85 else self.hours(60, 110)
        self.plan(
            ship_delay, "platform", "ship", target, {"carrier": "SF", "waybill": f"SF{number:08d}"}
        )
        delivered = ship_delay + self.hours(20, 72)
        self.plan(delivered, "platform", "deliver", target)
        if roll > 0.8:  # a problem found after delivery
            reason = rng.choice(AFTER_SALE_REASONS)
            kind = (
                "exchange" if rng.random() < 0.15 and reason != "not_received" else "return_refund"
            )
            amount = total if kind == "return_refund" else 0
            self.plan(
                delivered + self.hours(2, 60),
                f"buyer:{buyer}",
                "apply",
                {},
                {"order": order_id, "kind": kind, "reason": reason, "amount": amount},
            )

    def react(self, case_id: str) -> None:
        """Plan what the party who must act now will do (or nothing: they go quiet)."""
        case = self.engine.case(case_id)
        where = (case.status, case.stage, case.remedy)
        if self.seen.get(case_id) == where:
            return  # nothing new for anyone to answer
        self.seen[case_id] = where
        rng, roll = self.rng, self.rng.random()
        seller, buyer = f"seller:{case.shop}", f"buyer:{case.buyer}"
        target = {"case_id": case.id}
        if case.terminal:
            if case.classification is None and roll < 0.75:
                self.classify(case)
            return
        match case.status:
            case CaseStatus.AWAITING_SELLER:
                if case.remedy is not None:
                    answer = "accept_remedy" if roll < 0.6 else "decline_remedy"
                    self.plan(self.hours(1, 30), buyer, answer, target)
                elif roll < 0.55:
                    self.plan(self.hours(1, 96), seller, "agree", target)
                elif roll < 0.7:
                    self.plan(
                        self.hours(1, 72),
                        seller,
                        "refuse",
                        target,
                        {"reason": "goods are fine, photos show no defect"},
                    )
                elif roll < 0.78 and case.requested_amount > 100:
                    self.plan(
                        self.hours(1, 48),
                        seller,
                        "propose_remedy",
                        target,
                        {"type": "partial_refund", "amount": case.requested_amount // 3},
                    )
            case CaseStatus.SELLER_REFUSED:
                if roll < 0.25:
                    self.plan(self.hours(2, 72), buyer, "modify", target, {"note": "more photos"})
                elif roll < 0.4:
                    self.plan(self.hours(2, 72), buyer, "withdraw", target)
                elif roll < 0.85:
                    self.plan(self.hours(1, 48), buyer, "request_intervention", target)
            case CaseStatus.IN_INTERVENTION:
                self.intervene(case.stage, buyer, seller, target, roll)
            case CaseStatus.AWAITING_BUYER_RETURN:
                if roll < 0.85:
                    self.plan(
                        self.hours(6, 100),
                        buyer,
                        "ship_return",
                        target,
                        {"carrier": "YTO", "waybill": f"YT{rng.randrange(10**8):08d}"},
                    )
            case CaseStatus.AWAITING_SELLER_RECEIPT:
                if roll < 0.8:
                    self.plan(self.hours(48, 150), seller, "confirm_receipt", target)
                elif roll < 0.85:
                    self.plan(
                        self.hours(48, 150),
                        seller,
                        "refuse_receipt",
                        target,
                        {"reason": "tags cut, second sale affected"},
                    )
            case CaseStatus.AWAITING_SELLER_RESHIP:
                if roll < 0.9:
                    self.plan(
                        self.hours(12, 72),
                        seller,
                        "reship",
                        target,
                        {"carrier": "SF", "waybill": f"SF{rng.randrange(10**8):08d}"},
                    )
            case CaseStatus.AWAITING_BUYER_CONFIRMATION:
                if roll < 0.7:
                    self.plan(self.hours(24, 120), buyer, "confirm_received", target)

    def classify(self, case: Case) -> None:
        """The seller records the ended case's category and cause, a few days later."""
        category, cause = CLASSIFY.get(case.reason, OTHER_CLASS)
        params = {"category": category, "cause": cause.value}
        self.plan(
            self.hours(2, 96), f"seller:{case.shop}", "classify", {"case_id": case.id}, params
        )

    def complain(self, order_id: str, buyer: str, kind: str, subtype: str) -> None:
        """The buyer files a rule complaint; an agent rules on it a few days later."""
        complaint = f"k{len(self.complaint_ids) + 1:05d}"
        self.complaint_ids.append(complaint)
        params = {"order": order_id, "type": kind, "subtype": subtype}
        self.plan(
            self.hours(1, 48),
            f"buyer:{buyer}",
            "file_complaint",
            {"complaint_id": complaint},
            params,
        )

    def rule_complaint(self, complaint: str) -> None:
        if self.unruled_complaints < LEFT_FOR_YOU:
            self.unruled_complaints += 1
            return
        upheld = self.rng.random() < 0.6
        params = {
            "decision": "upheld" if upheld else "dismissed",
            "reason": "the order's record bears the buyer out"
            if upheld
            else "the seller kept to the rules",
        }
        self.plan(
            self.hours(24, 120), "agent:a1", "rule_complaint", {"complaint_id": complaint}, params
        )

    def intervene(
        self, stage: Stage | None, buyer: str, seller: str, target: dict[str, str], roll: float
    ) -> None:
        """Evidence from both sides, then an agent's ruling (SPEC §4)."""
        if stage == Stage.EVIDENCE:
            self.plan(
                self.hours(2, 48),
                seller,
                "submit_evidence",
                target,
                {"text": "inspection photos: no defect"},
            )
            self.plan(
                self.hours(2, 72),
                buyer,
                "submit_evidence",
                target,
                {"text": "photos of the defect"},
            )
            if roll < 0.6:
                self.plan(self.hours(80, 100), buyer, "complete_evidence", target)
        elif stage == Stage.REVIEW:
            if self.unruled_cases < LEFT_FOR_YOU:
                self.unruled_cases += 1
                return
            outcome, liable = (
                ("refund", "seller")
                if roll < 0.55
                else ("partial_refund", "seller")
                if roll < 0.7
                else ("reject", "buyer")
            )
            params: dict[str, Any] = {
                "outcome": outcome,
                "liable": liable,
                "reason": "decided on both sides' evidence",
            }
            if outcome == "partial_refund":
                params["amount"] = max(1, self.engine.case(target["case_id"]).requested_amount // 2)
            self.plan(self.hours(2, 30), "agent:a1", "rule", target, params)

    # --- running -----------------------------------------------------------------------------

    def on_fired(self, fired: Fired) -> None:
        self.fired[fired.rule_id] += 1
        if fired.subject_type == "case":
            self.react(fired.subject_id)

    def carry_out(self, item: Planned) -> None:
        move_clock(self.engine, self.clock, item.at, self.on_fired)
        try:
            cmd = self.engine.build(
                item.action, actor=item.actor, target=item.target, params=item.params
            )
            result = self.engine.execute(cmd)
        except ActionRefused:
            self.refused += 1  # stale plans: the case moved on before the party acted
            return
        self.actions[item.action] += 1
        if isinstance(result, Order):
            if item.action == "ship" and result.late and self.rng.random() < 0.5:
                self.complain(result.id, result.buyer, "late_shipment", "default")
        elif isinstance(result, Complaint):
            if item.action == "file_complaint":
                self.rule_complaint(result.id)
        else:
            if item.action == "apply":
                self.case_ids.append(result.id)
                if result.reason == Reason.NOT_AS_DESCRIBED and self.rng.random() < 0.5:
                    self.complain(result.order_id, result.buyer, "not_as_described", "minor")
            self.react(result.id)

    def orders_this_hour(self, orders_per_day: int) -> int:
        whole, part = divmod(orders_per_day, 24)
        return whole + (1 if self.rng.random() < part / 24 else 0)

    def run(
        self, days: int, settle_days: int, orders_per_day: int, console: Console, t: Translator
    ) -> None:
        """Take orders for ``days``, then let the cases run out for ``settle_days`` more."""
        _ = t.gettext
        start = self.clock.now()
        selling_ends = start + timedelta(days=days)
        ticks = (days + settle_days) * 24
        number = 0
        with Progress(
            TextColumn("[bold]" + _("simulating") + "[/bold] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} h"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("", total=ticks)
            for tick in range(ticks):
                hour_end = start + (tick + 1) * TICK
                if hour_end <= selling_ends:
                    for _order in range(self.orders_this_hour(orders_per_day)):
                        number += 1
                        self.new_order(number)
                while self.agenda and self.agenda[0].at <= hour_end:
                    self.carry_out(heapq.heappop(self.agenda))
                move_clock(self.engine, self.clock, hour_end, self.on_fired)
                day = (hour_end - start).days + 1
                phase = _(SELLING) if hour_end <= selling_ends else _(SETTLING)
                said = _(PROGRESS).format(
                    day=day, phase=phase, orders=number, cases=len(self.case_ids)
                )
                progress.update(task, advance=1, description=escape(said))


def run_demo(
    url: str,
    *,
    days: int,
    seed: int,
    orders_per_day: int,
    console: Console,
    settle_days: int = 21,
    start: datetime | None = None,
    t: Translator | None = None,
) -> None:
    """Fill ``url`` with a simulated marketplace and print what the engine did (in ``t``'s
    language, English by default); by default the simulated weeks end just before today, so a
    server started on the demo data lives after them."""
    t = t or translator("en")
    clock = VirtualClock(start or default_start(SystemClock().now(), days, settle_days))
    numbers = itertools.count(1)
    engine = Engine.open(url, clock=clock, new_id=lambda: f"c{next(numbers):05d}")
    try:
        demo = Demo(engine, clock, random.Random(seed))
        demo.run(days, settle_days, orders_per_day, console, t)
        summarize(engine, demo, console, url, t)
    finally:
        engine.close()


def summarize(
    engine: Engine[UnitOfWork], demo: Demo, console: Console, url: str, t: Translator
) -> None:
    """The demo's tables: cases by status, refunds, deadlines fired; then a case to look at."""
    _ = t.gettext
    cases = [engine.case(cid) for cid in demo.case_ids]
    statuses = Counter(c.status.value for c in cases)
    table = Table(title=_("cases by status"), show_footer=True)
    table.add_column(_("status"), footer=_("total"))
    table.add_column(_("cases"), justify="right", footer=str(len(cases)))
    for status in CaseStatus:
        if statuses[status.value]:
            table.add_row(t.term(status), str(statuses[status.value]))
    console.print(table)
    refunded = [c for c in cases if c.status == CaseStatus.REFUNDED]
    by_system = sum(1 for c in refunded if c.resolved_by == "system")
    money = Table(title=_("refunds"))
    money.add_column(_("what"))
    money.add_column(_("value"), justify="right")
    money.add_row(_("refunds"), str(len(refunded)))
    money.add_row(_("refunded (yuan)"), format_yuan(sum(c.refund_amount for c in refunded)))
    money.add_row(_("refunded because a deadline passed"), str(by_system))
    money.add_row(
        _("actions taken / stale plans refused"),
        f"{sum(demo.actions.values())} / {demo.refused}",
    )
    console.print(money)
    fired = Table(title=_("deadlines fired, by rule"))
    fired.add_column(_("rule"))
    fired.add_column(_("fired"), justify="right")
    for rule, count in sorted(demo.fired.items(), key=lambda kv: (-kv[1], kv[0])):
        fired.add_row(rule, str(count))
    console.print(fired)
    example = next(
        (c.id for c in refunded if c.resolved_by == "system"),
        demo.case_ids[0] if demo.case_ids else None,
    )
    if example:
        command = f".venv/bin/shouhou case show {example} --db {where(url)}"
        console.print(
            escape(_("Look at one: {command}")).format(command=f"[bold]{command}[/bold]"),
            soft_wrap=True,
        )
