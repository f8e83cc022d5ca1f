"""Complaints, ledgers and shop metrics through a real server, and their webhook events."""

from __future__ import annotations

from datetime import timedelta

from apiserver import ApiServer

COMPLAINT = {"order": "o1", "type": "breach_of_promise", "subtype": "promise_unfulfilled"}


def test_a_complaint_goes_to_the_agent_queue_and_an_upheld_one_costs_points(
    api: ApiServer,
) -> None:
    api.order("o1")
    filed = api.client("buyer:b1").post("/v1/complaints", json=COMPLAINT)
    assert filed.status_code == 201, filed.text
    complaint_id = filed.json()["id"]
    agent = api.client("agent:a1")

    queue = agent.get("/v1/complaints", params={"status": "filed"}).json()["items"]
    ruled = agent.post(
        f"/v1/complaints/{complaint_id}/actions/rule_complaint",
        json={"decision": "upheld", "reason": "the gift was missing"},
    )
    ledger = api.client("seller:s1").get("/v1/ledgers/shop:s1").json()
    metrics = api.client("seller:s1").get("/v1/shops/s1/metrics").json()

    assert [k["id"] for k in queue] == [complaint_id]
    assert ruled.status_code == 200, ruled.text
    assert ruled.json()["status"] == "upheld"
    assert ledger["balances"] == {"penalty_points": 4}
    assert len(ledger["entries"]) == 1
    assert metrics["penalty_points"] == 4
    events = api.client("platform").get("/v1/webhooks/events", params={"limit": 200}).json()
    types = [e["type"] for e in events["items"]]
    assert "complaint.filed" in types
    assert "penalty.recorded" in types


def test_complaints_ledgers_and_metrics_are_seen_only_by_their_parties(api: ApiServer) -> None:
    api.order("o1")
    complaint_id = api.client("buyer:b1").post("/v1/complaints", json=COMPLAINT).json()["id"]

    def status(who: str, path: str) -> int:
        return api.client(who).get(path).status_code

    assert status("buyer:b2", f"/v1/complaints/{complaint_id}") == 404
    assert status("seller:s2", f"/v1/complaints/{complaint_id}") == 404
    assert status("seller:s1", f"/v1/complaints/{complaint_id}") == 200
    assert status("buyer:b2", "/v1/ledgers/buyer:b1") == 404
    assert status("buyer:b1", "/v1/ledgers/buyer:b1") == 200
    assert status("seller:s2", "/v1/ledgers/shop:s1") == 404
    assert status("agent:a1", "/v1/ledgers/shop:s1") == 200
    assert status("seller:s2", "/v1/shops/s1/metrics") == 404
    assert status("buyer:b1", "/v1/shops/s1/metrics") == 403
    assert status("platform", "/v1/shops/s1/metrics") == 200
    assert api.client("buyer:b2").get("/v1/complaints").json()["items"] == []
    snooping = api.client("seller:s2").get("/v1/complaints", params={"shop": "s1"}).json()
    assert snooping["items"] == []
    mine = api.client("seller:s1").get("/v1/complaints", params={"shop": "s1"}).json()
    assert [k["id"] for k in mine["items"]] == [complaint_id]


def test_only_the_buyer_withdraws_and_only_an_agent_rules(api: ApiServer) -> None:
    api.order("o1")
    complaint_id = api.client("buyer:b1").post("/v1/complaints", json=COMPLAINT).json()["id"]
    ruling = {"decision": "dismissed", "reason": "no proof"}

    by_seller = api.client("seller:s1").post(
        f"/v1/complaints/{complaint_id}/actions/rule_complaint", json=ruling
    )
    withdrawn = api.client("buyer:b1").post(
        f"/v1/complaints/{complaint_id}/actions/withdraw_complaint"
    )
    again = api.client("buyer:b1").post("/v1/complaints", json=COMPLAINT)

    assert by_seller.status_code == 403
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "not_eligible"


def test_the_complaint_list_pages_with_a_cursor_and_a_buyer_sees_only_theirs(
    api: ApiServer,
) -> None:
    filed = []
    for i in range(5):  # b1 files on o0, o2, o4; b2 on o1, o3
        buyer = f"b{1 + i % 2}"
        api.clock.set(api.clock.now() + timedelta(minutes=1))
        api.order(f"o{i}", buyer=buyer)
        body = {**COMPLAINT, "order": f"o{i}"}
        response = api.client(f"buyer:{buyer}").post("/v1/complaints", json=body)
        assert response.status_code == 201, response.text
        filed.append(response.json()["id"])
    agent = api.client("agent:a1")

    pages, cursor = [], None
    for _ in range(5):  # bounded: a cursor that never ends fails instead of hanging
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = agent.get("/v1/complaints", params=params).json()
        pages.append([k["id"] for k in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    b1 = api.client("buyer:b1").get("/v1/complaints", params={"limit": 2}).json()
    b1_rest = api.client("buyer:b1").get("/v1/complaints", params={"cursor": b1["next_cursor"]})

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [k for p in pages for k in p] == filed  # in filing order, each once
    assert [k["id"] for k in b1["items"]] + [k["id"] for k in b1_rest.json()["items"]] == [
        filed[0],
        filed[2],
        filed[4],
    ]
