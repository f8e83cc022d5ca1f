"""SPEC §1 error order through a real server: who may act, then the status, then the body.

The API validates a body before the use case runs; a caller who may not act at all, or not
in this status, must hear that first, whatever it sends.
"""

from __future__ import annotations

from typing import Any

import pytest
from apiserver import ApiServer


@pytest.fixture
def refunded(api: ApiServer) -> str:
    """Case on order o1 (shop s1, buyer b1), refunded by the seller's agreement."""
    api.order("o1")
    api.order("o2", shop="s2", buyer="b2")
    case_id = str(api.case("o1", kind="refund_only")["id"])
    agreed = api.client("seller:s1").post(f"/v1/cases/{case_id}/actions/agree")
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["status"] == "refunded"
    return case_id


@pytest.mark.parametrize(
    ("who", "action", "body", "status", "code"),
    [
        # a buyer never rules: whatever it sends, reason missing included
        ("buyer:b1", "rule", {}, 403, "forbidden"),
        ("buyer:b1", "rule", {"outcome": "refund", "liable": "none"}, 403, "forbidden"),
        ("buyer:b1", "rule", {"outcome": "refund", "liable": "none", "x": 1}, 403, "forbidden"),
        ("buyer:b1", "rule", None, 403, "forbidden"),
        # a buyer never agrees or proposes a remedy, whatever the status
        ("buyer:b1", "agree", None, 403, "forbidden"),
        ("buyer:b1", "propose_remedy", {"type": "partial_refund", "amount": 100}, 403, "forbidden"),
        ("buyer:b1", "propose_remedy", {}, 403, "forbidden"),
        ("platform>buyer:b1", "rule", {}, 403, "forbidden"),
        # a caller who can't see the case learns nothing more
        ("buyer:b2", "withdraw", {"bogus": 1}, 404, "not_found"),
        ("seller:s2", "refuse", {}, 404, "not_found"),
        # the right party in the wrong status: not_allowed before the body
        ("seller:s1", "refuse", {}, 409, "not_allowed"),
        ("seller:s1", "propose_remedy", {"type": "sideways"}, 409, "not_allowed"),
        ("agent:a1", "rule", {"outcome": "refund"}, 409, "not_allowed"),
        ("buyer:b1", "ship_return", {"carrier": 5}, 409, "not_allowed"),
        # an ended case is classified: only now is the body judged
        ("seller:s1", "classify", {}, 422, "invalid"),
    ],
)
def test_case_actions_answer_who_then_when_then_what(
    api: ApiServer,
    refunded: str,
    who: str,
    action: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    response = api.client(who).post(f"/v1/cases/{refunded}/actions/{action}", json=body)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_valid_body_from_the_buyer_is_forbidden_too(api: ApiServer, refunded: str) -> None:
    body = {"outcome": "refund", "liable": "seller", "reason": "the buyer says so"}
    response = api.client("buyer:b1").post(f"/v1/cases/{refunded}/actions/rule", json=body)

    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


def test_a_replayed_agreement_is_not_refused_by_the_status_it_caused(api: ApiServer) -> None:
    api.order("o1")
    case_id = api.case("o1", kind="refund_only")["id"]
    seller = api.client("seller:s1", **{"Idempotency-Key": "agree-once"})

    first = seller.post(f"/v1/cases/{case_id}/actions/agree")
    again = seller.post(f"/v1/cases/{case_id}/actions/agree")

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("who", ["seller:s1", "agent:a1"])
def test_a_role_that_never_applies_is_forbidden_whatever_its_body(api: ApiServer, who: str) -> None:
    api.order("o1")
    response = api.client(who).post("/v1/cases", json={"kind": "sideways"})

    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
