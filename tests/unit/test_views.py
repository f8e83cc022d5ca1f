"""The case view explains, in Chinese and English, the rules behind its deadline and outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shouhou.domain import commands as c
from shouhou.domain.model import Actor, CaseKind, Reason, Role
from shouhou.domain.values import SHANGHAI, format_yuan
from shouhou.policy.rulebook import Rulebook
from shouhou.services import views
from shouhou.services.ports import StoredEvent

T0 = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
BUYER = Actor(role=Role.BUYER, id="b1")
SELLER = Actor(role=Role.SELLER, id="s1")
Desk = Any
MakeDesk = Any


def view_of(desk: Desk, rules: Rulebook, case_id: str = "c1", **kwargs: Any) -> dict[str, Any]:
    timeline = [StoredEvent(seq=i + 1, event=ev) for i, ev in enumerate(desk.timelines[case_id])]
    return views.case_view(
        desk.cases[case_id], desk.order, rules, timeline=timeline, money=format_yuan, **kwargs
    )


def test_an_open_case_explains_who_must_act_by_when_under_which_rule(
    desk_for: MakeDesk, rules: Rulebook
) -> None:
    desk = desk_for("shipped")
    desk.apply(T0)
    explanation = view_of(desk, rules)["explanation"]
    assert "2023-03-06T10:00:00+08:00" in explanation["en"]
    assert "The seller must act" in explanation["en"]
    assert "tmall-standard/seller_respond" in explanation["en"]
    assert "卖家需在 2023-03-06T10:00:00+08:00" in explanation["zh"]
    assert "5天" in explanation["zh"]
    [rule] = explanation["rules"]
    assert rule["id"] == "tmall-standard/seller_respond"
    assert rule["source"] == "seed Ⅳ"
    assert "5d" in rule["en"]
    assert "5天" in rule["zh"]
    assert "{duration}" not in rule["en"] + rule["zh"]


def test_a_holiday_deadline_names_the_holiday_rule_and_its_source(
    desk_for: MakeDesk, rules: Rulebook
) -> None:
    applied = datetime(2020, 1, 20, 9, tzinfo=SHANGHAI)
    desk = desk_for("shipped", at=applied)
    desk.apply(applied)
    [rule] = view_of(desk, rules)["explanation"]["rules"]
    assert rule["id"] == "cny-2020/respond"
    assert rule["source"] == "seed Ⅷ 1a"


def test_a_refund_by_timeout_names_the_amount_and_the_deadline_rule(
    desk_for: MakeDesk, rules: Rulebook
) -> None:
    desk = desk_for("shipped")
    desk.apply(T0)
    desk.timeout()
    view = view_of(desk, rules)
    assert view["status"] == "refunded"
    assert view["deadline"] is None
    assert "Refunded ¥199.00 because the deadline passed" in view["explanation"]["en"]
    assert "已退款 ¥199.00" in view["explanation"]["zh"]
    freight, rule = view["explanation"]["rules"]
    assert rule["id"] == "tmall-standard/seller_respond"
    assert "5d" in rule["en"], "the duration that applied is filled in from the timeline"
    assert freight["id"] == "tmall-standard/freight_seller_fault"
    assert "Freight: the buyer bears ¥0.00" in view["explanation"]["en"]


def test_a_refund_by_the_seller_names_who_completed_it(desk_for: MakeDesk, rules: Rulebook) -> None:
    desk = desk_for("shipped")
    desk.apply(T0)
    desk.act(c.Agree, T0)
    explanation = view_of(desk, rules)["explanation"]
    assert "completed by seller:s1" in explanation["en"]
    assert [r["id"] for r in explanation["rules"]] == ["tmall-standard/freight_seller_fault"]


def test_the_view_lists_what_each_party_may_do_now(desk_for: MakeDesk, rules: Rulebook) -> None:
    desk = desk_for("delivered")
    desk.apply(T0, kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)
    assert view_of(desk, rules, actor=SELLER)["available_actions"] == [
        "agree",
        "refuse",
        "intercept",
        "propose_remedy",
    ]
    assert view_of(desk, rules, actor=BUYER, now=T0)["available_actions"] == ["modify", "withdraw"]


def test_amounts_render_with_the_money_function_of_the_edge(
    desk_for: MakeDesk, rules: Rulebook
) -> None:
    desk = desk_for("shipped")
    desk.apply(T0, amount=12345)
    view = view_of(desk, rules)
    assert view["requested_amount"] == "123.45"
    applied = view["timeline"][0]
    assert (applied["type"], applied["amount"], applied["actor"]) == (
        "Applied",
        "123.45",
        "buyer:b1",
    )


def test_the_views_have_exactly_their_published_fields(desk_for: MakeDesk, rules: Rulebook) -> None:
    desk = desk_for("shipped")
    desk.apply(T0)
    assert set(view_of(desk, rules)) == views.CASE_VIEW_FIELDS
    assert set(views.order_view(desk.order)) == views.ORDER_VIEW_FIELDS
