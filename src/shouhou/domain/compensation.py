"""Buyer compensation (SPEC §7, seed Ⅲ): automatic, once, when the refund completes.

A refund completing with reason ``late_shipment`` on an order that really was not shipped by
its ``ship_by`` deadline (courier record time), or with reason ``out_of_stock`` on an order still
unshipped, compensates the buyer however the refund completes — the seller agreeing, a
deadline passing, a remedy the buyer accepted, or an agent ruling the seller liable (seed Ⅲ
「涉及賠付的, 同樣退款完成, 自動完成賠付」). The amount is the rule's rate of the refunded goods
amount (shipping excluded), rounded to the fen, within the rule's bounds.
"""

from __future__ import annotations

from datetime import datetime

from shouhou.domain import events as e
from shouhou.domain.model import Case, Compensation, Order, Reason
from shouhou.domain.rules import Rules
from shouhou.domain.values import percent_of


def amount_for(goods: int, rules: Rules) -> Compensation:
    """What ``goods`` fen of refunded goods earn the buyer under the rulebook."""
    rule = rules.compensation()
    fen = min(max(percent_of(goods, rule.rate), rule.minimum), rule.maximum) if goods > 0 else 0
    return Compensation(
        amount=fen,
        points=fen * rule.points_per_yuan // 100,
        paid_as=rule.paid_as,
        rule_id=rule.rule_id,
    )


def reason_holds(reason: Reason, order: Order) -> bool:
    """Whether the order's facts bear the reason out (late: by the courier's record time)."""
    if reason == Reason.LATE_SHIPMENT:
        return order.late
    if reason == Reason.OUT_OF_STOCK:
        return order.shipped_at is None
    return False


#: The moves by which the seller lets a request's reason stand (SPEC §7): agreeing, confirming
#: the goods back, letting the deadline pass, or settling with a remedy the buyer accepted (a
#: partial refund pays on the part refunded, as an agent's partial ruling does). Only a ruling
#: decides a disputed reason, and then only one against the seller compensates.
REASON_STANDS = frozenset({"agree", "confirm_receipt", "timeout", "accept_remedy"})


def on_refund(
    case: Case,
    order: Order,
    rules: Rules,
    refund: e.Refunded,
    action: str,
    ruled_liable: str | None,
) -> e.CompensationAwarded | None:
    """The compensation a completed refund earns, or None (never twice for a case or an
    order: a late-shipment complaint may have paid already)."""
    if case.compensation is not None or order.compensated:
        return None
    if case.reason not in rules.compensation().reasons:
        return None
    if not (action in REASON_STANDS or ruled_liable == "seller"):
        return None
    if not reason_holds(case.reason, order):
        return None
    # the refunded goods of this case, line by line: shipping and the platform's part excluded
    goods = sum(part.buyer for part in refund.lines) if refund.lines else refund.amount
    goods = min(goods, order.total - order.shipping_fee)
    return award(case.buyer, case.shop, order.id, amount_for(goods, rules), refund.at)


def award(
    buyer: str, shop: str, order_id: str, compensation: Compensation, at: datetime
) -> e.CompensationAwarded | None:
    if compensation.amount <= 0:
        return None
    return e.CompensationAwarded(
        at=at,
        actor="system",
        compensation=compensation,
        buyer=buyer,
        shop=shop,
        order_id=order_id,
    )
