"""Freight liability (SPEC §5): who bears each leg, under which rule, who must prove it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from shouhou.domain import freight
from shouhou.domain.model import (
    Case,
    CaseKind,
    Liable,
    Order,
    Phase,
    Reason,
    Shipment,
    ShippingMethod,
)
from shouhou.domain.values import SHANGHAI
from shouhou.policy.rulebook import Rulebook

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
OUTBOUND, BACK = 1000, 1200


def order(**fields: Any) -> Order:
    base = Order(
        id="o1",
        shop="s1",
        buyer="b1",
        total=20000,
        shipping_fee=OUTBOUND,
        created_at=T0,
        shipped_at=T0,
    )
    return replace(base, **fields)


def case(reason: Reason, *, shipped_back: bool = True) -> Case:
    shipment = Shipment(carrier="SF", waybill="1", method=ShippingMethod.EXPRESS, fee=BACK)
    return Case(
        id="c1",
        order_id="o1",
        shop="s1",
        buyer="b1",
        kind=CaseKind.RETURN_REFUND,
        phase=Phase.IN_SALE,
        reason=reason,
        requested_amount=20000,
        opened_at=T0,
        return_shipment=shipment if shipped_back else None,
    )


@pytest.mark.parametrize(
    "reason",
    [
        Reason.QUALITY,
        Reason.WRONG_ITEM,
        Reason.MISSING_ITEM,
        Reason.DAMAGED,
        Reason.NOT_AS_DESCRIBED,
    ],
)
def test_the_seller_at_fault_bears_both_legs(rules: Rulebook, reason: Reason) -> None:
    split = freight.split(case(reason), order(), rules)
    assert (split.buyer, split.seller) == (0, OUTBOUND + BACK)
    assert split.rule_id == "tmall-standard/freight_seller_fault"
    assert split.deducted == 0


def test_a_no_reason_return_of_free_shipping_goods_splits_the_legs(rules: Rulebook) -> None:
    split = freight.split(case(Reason.NO_REASON), order(free_shipping=True, shipping_fee=0), rules)
    assert (split.buyer, split.seller) == (BACK, 0)
    assert split.rule_id == "tmall-standard/freight_no_reason_free_shipping"


def test_a_no_reason_return_without_free_shipping_costs_the_buyer_both_legs(
    rules: Rulebook,
) -> None:
    the_case, the_order = case(Reason.NO_REASON), order()
    split = freight.split(the_case, the_order, rules)
    assert (split.buyer, split.seller) == (OUTBOUND + BACK, 0)
    assert split.rule_id == "tmall-standard/freight_buyer_bears"
    assert split.deducted == OUTBOUND
    assert freight.full_refund(the_case, the_order, split) == 20000 - OUTBOUND


def test_a_refund_of_the_goods_alone_is_not_cut_twice(rules: Rulebook) -> None:
    the_case = replace(case(Reason.NO_REASON), requested_amount=20000 - OUTBOUND)
    split = freight.split(the_case, order(), rules)
    assert freight.full_refund(the_case, order(), split) == 20000 - OUTBOUND


def test_the_outbound_fee_comes_out_of_an_order_once(rules: Rulebook) -> None:
    """A second no-reason case of the order finds the fee kept by the first one."""
    second = replace(case(Reason.NO_REASON), requested_amount=10000)
    after_first = order(total=20000 + OUTBOUND, refunded=10000, withheld=OUTBOUND)
    split = freight.split(second, after_first, rules)
    assert split.deducted == 0
    assert freight.full_refund(second, after_first, split) == 10000


def test_free_shipping_goods_with_a_fee_keep_nothing_back(rules: Rulebook) -> None:
    """The seller bears the outbound leg of free-shipping goods, so however dear the return
    leg, the outbound fee is not taken from the refund."""
    the_order = order(free_shipping=True, total=20000 + OUTBOUND)
    split = freight.split(case(Reason.NO_REASON), the_order, rules)
    assert (split.buyer, split.seller, split.deducted) == (BACK, OUTBOUND, 0)


def refused(**fields: Any) -> Case:
    """A refund of a parcel refused at the door (拒签): nothing shipped back."""
    return replace(case(Reason.REFUSED_DELIVERY, shipped_back=False), **fields)


@pytest.mark.parametrize("liable", [None, Liable.NONE])
def test_refused_delivery_refunds_in_full_until_the_sellers_proof_is_accepted(
    rules: Rulebook, liable: Liable | None
) -> None:
    """A seller who merely agrees (or an agent who finds nobody liable) has proven nothing."""
    the_case = refused(kind=CaseKind.REFUND_ONLY)
    split = freight.split(the_case, order(), rules, liable)
    assert (split.buyer, split.seller, split.proof_by) == (0, OUTBOUND, "seller")
    assert (split.rule_id, split.deducted) == ("tmall-standard/freight_refused_without_reason", 0)
    assert freight.full_refund(the_case, order(), split) == 20000


def test_refused_delivery_costs_the_buyer_once_an_agent_accepts_the_sellers_proof(
    rules: Rulebook,
) -> None:
    the_case = refused(kind=CaseKind.REFUND_ONLY)
    split = freight.split(the_case, order(), rules, Liable.BUYER)
    assert (split.buyer, split.seller, split.proof_by) == (OUTBOUND, 0, "seller")
    assert (split.rule_id, split.deducted) == (
        "tmall-standard/freight_refused_without_reason",
        OUTBOUND,
    )
    assert freight.full_refund(the_case, order(), split) == 20000 - OUTBOUND


def test_refused_delivery_with_a_reason_costs_the_seller_and_the_buyer_proves_it(
    rules: Rulebook,
) -> None:
    split = freight.split(case(Reason.REFUSED_DELIVERY), order(), rules, Liable.SELLER)
    assert (split.buyer, split.seller, split.proof_by) == (0, OUTBOUND + BACK, "buyer")
    assert split.rule_id == "tmall-standard/freight_refused_with_reason"


def test_a_ruling_against_the_buyer_moves_the_freight_to_the_buyer(rules: Rulebook) -> None:
    split = freight.split(case(Reason.QUALITY), order(), rules, Liable.BUYER)
    assert (split.buyer, split.seller) == (OUTBOUND + BACK, 0)


def test_freight_insurance_pays_the_buyers_return_leg_without_changing_the_refund(
    rules: Rulebook,
) -> None:
    the_case = case(Reason.NO_REASON)
    insured = order(free_shipping=True, shipping_fee=0, freight_insurance=True)
    split = freight.split(the_case, insured, rules)
    assert split.insurance_claim == BACK
    assert freight.full_refund(the_case, insured, split) == 20000


def test_without_a_fault_each_side_keeps_its_leg(rules: Rulebook) -> None:
    split = freight.split(case(Reason.OTHER), order(), rules)
    assert (split.buyer, split.seller, split.deducted) == (BACK, OUTBOUND, 0)
    assert split.rule_id == "tmall-standard/freight_own_leg"


def test_nothing_sent_back_means_no_return_leg(rules: Rulebook) -> None:
    split = freight.split(case(Reason.QUALITY, shipped_back=False), order(), rules)
    assert (split.buyer, split.seller) == (0, OUTBOUND)


def test_goods_never_shipped_have_no_outbound_leg_to_keep(rules: Rulebook) -> None:
    the_case, unshipped = case(Reason.NO_REASON, shipped_back=False), order(shipped_at=None)
    split = freight.split(the_case, unshipped, rules)
    assert (split.buyer, split.seller, split.deducted) == (0, 0, 0)
    assert freight.full_refund(the_case, unshipped, split) == 20000
