"""Freight liability (SPEC §5, seed Ⅲ 「誰過錯, 誰承擔」) as a pure function of the case.

The outbound leg is the shipping fee the buyer paid with the order; the return leg is the fee
the buyer gave when shipping the goods back. The split says what each side bears, which rule
decided it, who must prove it, what freight insurance (运费险) pays the buyer on a separate
claim, and how much of the outbound fee is kept out of the refund: the whole fee when the
buyer bears the outbound leg, less what earlier cases of the order kept of it already.

Refused delivery (拒签) is decided by the burden of proof: the party who must prove its side
pays until an agent's ruling accepts that proof (SPEC §5).
"""

from __future__ import annotations

from shouhou.domain import lines
from shouhou.domain.model import Case, Freight, Liable, Order, Reason
from shouhou.domain.rules import Rules


def _party_at_fault(case: Case, rules: Rules, liable: Liable | None) -> Liable:
    if liable is not None:
        return liable
    return Liable(rules.reason(case.reason).fault)


def _refused_delivery(outbound: int, back: int, liable: Liable | None) -> tuple[str, int, int, str]:
    """拒签: the rule, what the buyer and the seller bear, and who must prove it."""
    if liable == Liable.SELLER:  # an agent found the buyer had a reason; the buyer proved it
        return "freight_refused_with_reason", 0, outbound + back, "buyer"
    if liable == Liable.BUYER:  # an agent accepted the seller's proof of no reason
        return "freight_refused_without_reason", outbound + back, 0, "seller"
    # No proof accepted yet: a seller who merely agrees (or lets the deadline pass) has proven
    # nothing, so the seller, whose burden it is, bears the freight and the refund is whole.
    return "freight_refused_without_reason", 0, outbound + back, "seller"


def split(case: Case, order: Order, rules: Rules, liable: Liable | None = None) -> Freight:
    """Who bears the outbound and the return leg, under which rule (``liable``: a ruling)."""
    outbound = order.shipping_fee if order.shipped_at is not None else 0  # never shipped: no leg
    back = case.return_shipment.fee if case.return_shipment else 0
    at_fault = _party_at_fault(case, rules, liable)
    proof_by: str | None = None
    if case.reason == Reason.REFUSED_DELIVERY:
        name, buyer, seller, proof_by = _refused_delivery(outbound, back, liable)
    elif at_fault == Liable.SELLER:
        name, buyer, seller = "freight_seller_fault", 0, outbound + back
    elif case.reason == Reason.NO_REASON and order.free_shipping:
        name, buyer, seller = "freight_no_reason_free_shipping", back, outbound
    elif case.reason == Reason.NO_REASON or at_fault == Liable.BUYER:
        name, buyer, seller = "freight_buyer_bears", outbound + back, 0
    else:
        name, buyer, seller = "freight_own_leg", back, outbound
    insurance = back if order.freight_insurance and buyer >= back > 0 else 0
    # The outbound fee comes out of the refund only where the buyer bears that leg, and once
    # per order: an earlier case of the order may have kept it already (``order.withheld``).
    bears_outbound = name == "freight_buyer_bears" or (
        name == "freight_refused_without_reason" and liable == Liable.BUYER
    )
    deducted = max(0, outbound - order.withheld) if bears_outbound else 0
    return Freight(
        buyer=buyer,
        seller=seller,
        rule_id=rules.limit(name).rule_id,
        proof_by=proof_by,
        insurance_claim=insurance,
        deducted=deducted,
    )


def full_refund(case: Case, order: Order, freight: Freight) -> int:
    """A refund "in full": what was asked, less an outbound fee the buyer bears, within what
    the case's lines and the shipping left can still give back."""
    left = lines.refundable(order, lines.of_case(case, order))
    return max(0, min(case.requested_amount, left - freight.deducted))
