"""Orders with several lines through the API: the allocation in the order view, an application
per line, the case view's lines, and the refund's buyer and platform parts (SPEC §1)."""

from __future__ import annotations

from typing import Any

from apiserver import ApiServer

ITEMS = [
    {"line": "A", "sku": "KETTLE", "title": "电热水壶", "unit_price": 6000},
    {"line": "B", "sku": "MUG", "title": "马克杯", "quantity": 2, "unit_price": 2000},
]
DISCOUNTS = {"cross_store": 1000, "platform_subsidy": 500}


def _place(api: ApiServer) -> Any:
    return api.order("o1", total=8500, items=ITEMS, discounts=DISCOUNTS)


def test_the_order_view_shows_how_the_discounts_were_shared_out(api: ApiServer) -> None:
    order = _place(api)
    assert order["discounts"] == {"shop_coupon": 0, "cross_store": 1000, "platform_subsidy": 500}
    assert [
        (ln["line"], ln["price"], ln["cross_store"], ln["platform_subsidy"], ln["paid"])
        for ln in order["lines"]
    ] == [("A", 6000, 600, 300, 5100), ("B", 4000, 400, 200, 3400)]


def test_an_order_whose_lines_do_not_add_up_to_its_total_is_invalid(api: ApiServer) -> None:
    body = {"id": "o2", "shop": "s1", "buyer": "b1", "total": 9000, "items": ITEMS}
    response = api.client("platform").post("/v1/orders", json=body)
    assert response.status_code == 422
    assert "the total (9000 fen)" in response.json()["error"]["message"]


def test_cases_on_two_lines_at_once_and_each_refund_shows_both_parts(api: ApiServer) -> None:
    _place(api)
    buyer = api.client("buyer:b1")
    on_a = {"order": "o1", "kind": "refund_only", "reason": "damaged", "amount": 5100}
    first = buyer.post("/v1/cases", json={**on_a, "lines": [{"line": "A"}]})
    assert first.status_code == 201, first.text
    one_mug = {"order": "o1", "kind": "refund_only", "reason": "damaged", "amount": 1700}
    second = buyer.post("/v1/cases", json={**one_mug, "lines": [{"line": "B", "quantity": 1}]})
    assert second.status_code == 201, second.text
    again = buyer.post("/v1/cases", json={**one_mug, "lines": [{"line": "A"}]})
    assert again.status_code == 422
    assert again.json()["error"]["rule"] == "tmall-standard/one_open_case"

    case_id = first.json()["id"]
    seller = api.client("seller:s1")
    agreed = seller.post(f"/v1/cases/{case_id}/actions/agree", json={})
    assert agreed.status_code == 200, agreed.text
    view = agreed.json()
    assert (view["refund_amount"], view["platform_amount"]) == (5100, 300)
    assert view["lines"] == [
        {
            "line": "A",
            "sku": "KETTLE",
            "title": "电热水壶",
            "quantity": 1,
            "refund_amount": 5100,
            "platform_amount": 300,
        }
    ]
    order = api.client("platform").get("/v1/orders/o1").json()
    assert order["open_cases"] == [second.json()["id"]]
    assert [(ln["line"], ln["refunded"], ln["reclaimed"]) for ln in order["lines"]] == [
        ("A", 5100, 300),
        ("B", 0, 0),
    ]


def test_a_line_that_is_not_on_the_order_is_invalid(api: ApiServer) -> None:
    _place(api)
    body = {"order": "o1", "kind": "refund_only", "reason": "damaged", "amount": 100}
    response = api.client("buyer:b1").post("/v1/cases", json={**body, "lines": [{"line": "Z"}]})
    assert response.status_code == 422
    assert "no line 'Z'" in response.json()["error"]["message"]
