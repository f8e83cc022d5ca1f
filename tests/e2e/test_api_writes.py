"""Writes through a real server: idempotency keys, refusals, and bad requests get clear 4xx."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import timedelta

import httpx
import pytest
from apiserver import ApiServer

from shouhou.testing import evidence_file
from shouhou.worker import Worker

APPLY = {"order": "o1", "kind": "return_refund", "reason": "quality", "amount": 19900}


def _cases(api: ApiServer) -> list[str]:
    return [c["id"] for c in api.client("agent:a1").get("/v1/cases").json()["items"]]


# --- idempotency ---------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_first_answer_and_acts_once(api: ApiServer) -> None:
    api.order("o1")
    client = api.client("buyer:b1", **{"Idempotency-Key": "apply-o1"})

    first = client.post("/v1/cases", json=APPLY)
    again = client.post("/v1/cases", json=APPLY)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _cases(api) == [first.json()["id"]]


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(api: ApiServer) -> None:
    api.order("o1")
    client = api.client("buyer:b1", **{"Idempotency-Key": "k-1"})
    first = client.post("/v1/cases", json=APPLY)

    other = client.post("/v1/cases", json={**APPLY, "amount": 100})

    assert other.status_code == 422
    error = other.json()["error"]
    assert error["code"] == "invalid"
    assert error["rule"] == "shouhou/idempotency"
    assert "Idempotency-Key 'k-1' was used for another request" in error["message"]
    assert _cases(api) == [first.json()["id"]]


def test_the_same_key_on_another_path_is_refused(api: ApiServer) -> None:
    api.order("o1")
    case = api.client("buyer:b1", **{"Idempotency-Key": "k-2"}).post("/v1/cases", json=APPLY)
    seller = api.client("seller:s1", **{"Idempotency-Key": "k-2"})

    # a different API key has its own keys: k-2 is new for the seller
    agreed = seller.post(f"/v1/cases/{case.json()['id']}/actions/agree", json={})
    refused = seller.post(f"/v1/cases/{case.json()['id']}/actions/refuse", json={"reason": "x"})

    assert agreed.status_code == 200
    assert refused.status_code == 422
    assert refused.json()["error"]["rule"] == "shouhou/idempotency"


def test_a_refused_write_is_not_remembered_so_it_can_be_sent_again_later(
    api: ApiServer,
) -> None:
    api.order("o1")
    case_id = api.case("o1")["id"]
    seller = api.client("seller:s1", **{"Idempotency-Key": "receipt"})
    too_early = seller.post(f"/v1/cases/{case_id}/actions/confirm_receipt")
    assert too_early.status_code == 409
    assert api.client("seller:s1").post(f"/v1/cases/{case_id}/actions/agree").status_code == 200
    ship = {"carrier": "SF", "waybill": "SF1"}
    shipped = api.client("buyer:b1").post(f"/v1/cases/{case_id}/actions/ship_return", json=ship)
    assert shipped.status_code == 200

    now_in_time = seller.post(f"/v1/cases/{case_id}/actions/confirm_receipt")

    assert now_in_time.status_code == 200
    assert now_in_time.json()["status"] == "refunded"


def test_keys_are_kept_a_day_then_forgotten(api: ApiServer) -> None:
    api.order("o1")
    client = api.client("buyer:b1", **{"Idempotency-Key": "kept"})
    first = client.post("/v1/cases", json=APPLY)
    worker = Worker(api.engine)
    try:
        worker.purge(api.clock.now() + timedelta(hours=23, minutes=59))
        assert client.post("/v1/cases", json=APPLY).headers.get("idempotent-replayed") == "true"

        worker._last_purge = None
        worker.purge(api.clock.now() + timedelta(hours=24, minutes=1))
    finally:
        worker.close()
    after = client.post("/v1/cases", json=APPLY)

    assert first.status_code == 201
    assert after.status_code == 422  # a new request: the order already has an open case
    assert after.json()["error"]["code"] == "not_eligible"


def test_a_key_expires_after_a_day_even_with_no_worker_running(api: ApiServer) -> None:
    api.order("o1")
    client = api.client("buyer:b1", **{"Idempotency-Key": "once"})
    first = client.post("/v1/cases", json=APPLY)
    withdrawn = api.client("buyer:b1").post(
        f"/v1/cases/{first.json()['id']}/actions/withdraw", json={}
    )

    api.clock.advance(timedelta(hours=23, minutes=59))
    replayed = client.post("/v1/cases", json=APPLY)
    api.clock.advance(timedelta(minutes=2))
    again = client.post("/v1/cases", json=APPLY)  # a new request under the same key

    assert (first.status_code, withdrawn.status_code) == (201, 200)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json()["id"] == first.json()["id"]
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]


def test_concurrent_requests_with_one_key_act_once(api: ApiServer) -> None:
    api.order("o1")
    token = api.key("buyer:b1")
    answers: list[httpx.Response] = []

    def send() -> None:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "race"}
        answers.append(httpx.post(f"{api.url}/v1/cases", json=APPLY, headers=headers))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(_cases(api)) == 1
    assert [a.status_code for a in answers] == [201] * 6  # the later ones waited, and replay
    assert {a.json()["id"] for a in answers} == set(_cases(api))
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5


# --- refusals ------------------------------------------------------------------------------


def test_a_refusal_names_its_code_and_rule_with_the_matching_status(api: ApiServer) -> None:
    api.order("o1")
    case_id = api.case("o1")["id"]

    not_allowed = api.client("buyer:b1").post(
        f"/v1/cases/{case_id}/actions/ship_return", json={"carrier": "SF", "waybill": "1"}
    )
    not_eligible = api.client("buyer:b1").post("/v1/cases", json=APPLY)

    assert not_allowed.status_code == 409
    assert not_allowed.json()["error"] == {
        "code": "not_allowed",
        "message": not_allowed.json()["error"]["message"],
        "rule": "shouhou/transition-table",
        "case": case_id,
        "status": "awaiting_seller",
    }
    assert not_eligible.status_code == 422
    assert not_eligible.json()["error"]["code"] == "not_eligible"
    assert not_eligible.json()["error"]["rule"].startswith("tmall-standard/")


def test_an_unknown_case_is_not_found(api: ApiServer) -> None:
    response = api.client("agent:a1").get("/v1/cases/nope")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- bad requests --------------------------------------------------------------------------


def test_malformed_json_is_a_400_that_says_so(api: ApiServer) -> None:
    response = api.client("buyer:b1").post(
        "/v1/cases", content=b'{"order": "o1",', headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the body is not valid JSON"


def test_an_unknown_field_is_refused_by_name(api: ApiServer) -> None:
    response = api.client("buyer:b1").post("/v1/cases", json={**APPLY, "amout": 1})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith("body.amout: Extra inputs are not permitted")
    assert error["errors"][0]["loc"] == ["body", "amout"]


def test_unknown_action_parameters_are_refused_too(api: ApiServer) -> None:
    api.order("o1")
    case_id = api.case("o1")["id"]

    response = api.client("seller:s1").post(
        f"/v1/cases/{case_id}/actions/agree", json={"address": "x"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["loc"] == ["body", "address"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "199.00"),
        ("amount", -1),
        ("amount", 1.5),
        ("kind", "refund"),
        ("order", 7),
        ("order", "o1 x"),
        ("note", "a\x00b"),
    ],
)
def test_wrong_types_and_values_are_422_naming_the_field(
    api: ApiServer, field: str, value: object
) -> None:
    response = api.client("buyer:b1").post("/v1/cases", json={**APPLY, field: value})

    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["loc"][:2] == ["body", field]


def test_times_without_an_offset_are_refused(api: ApiServer) -> None:
    order = {
        "id": "o3",
        "shop": "s1",
        "buyer": "b1",
        "total": 100,
        "paid_at": "2026-03-01T10:00:00",
    }

    response = api.client("platform").post("/v1/orders", json=order)

    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["loc"] == ["body", "paid_at"]


FAR = "9999-12-31T23:59:59-14:00"  # aware, and past what Python's datetime holds in UTC


def test_times_out_of_the_engines_years_are_invalid_wherever_they_enter(api: ApiServer) -> None:
    far_cursor = base64.urlsafe_b64encode(json.dumps([FAR, "x"]).encode()).decode()
    agent, platform = api.client("agent:a1"), api.client("platform")

    answers = [
        agent.get("/v1/cases", params={"due_before": FAR}),
        agent.get("/v1/cases", params={"cursor": far_cursor}),
        agent.get("/v1/orders", params={"cursor": far_cursor}),
        agent.get("/v1/complaints", params={"cursor": far_cursor}),
        agent.get("/v1/shops/s1/metrics", params={"at": "0001-01-05T00:00:00+00:00"}),
        platform.post(
            "/v1/orders",
            json={"id": "o9", "shop": "s1", "buyer": "b1", "total": 100, "promised_ship_by": FAR},
        ),
    ]

    assert [a.status_code for a in answers] == [422] * len(answers)
    assert {a.json()["error"]["code"] for a in answers} == {"invalid"}
    assert platform.get("/v1/orders/o9").status_code == 404


def test_a_shipping_fee_above_the_total_is_invalid(api: ApiServer) -> None:
    order = {"id": "o9", "shop": "s1", "buyer": "b1", "total": 100, "shipping_fee": 500}

    response = api.client("platform").post("/v1/orders", json=order)

    assert response.status_code == 422
    assert "shipping fee" in response.json()["error"]["message"]
    assert api.client("platform").get("/v1/orders/o9").status_code == 404


def test_a_huge_body_is_refused_with_413_before_it_is_read(api: ApiServer) -> None:
    response = api.client("buyer:b1").post(
        "/v1/cases",
        content=b"[" + b"1," * 200_000 + b"1]",
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_huge_streamed_body_without_a_length_is_refused_too(api: ApiServer) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b" " * 10_000

    response = api.client("buyer:b1").post(
        "/v1/cases", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413


def test_a_body_that_is_not_json_is_415(api: ApiServer) -> None:
    response = api.client("buyer:b1").post(
        "/v1/cases",
        content=b"order=o1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_unknown_routes_and_methods_answer_in_the_error_shape(api: ApiServer) -> None:
    client = api.client("agent:a1")

    missing = client.get("/v1/nothing-here")
    wrong_method = client.put("/v1/cases")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_a_list_offers_the_actions_the_case_view_offers(api: ApiServer) -> None:
    """No refuse button on a no-reason request, no intervention before 72h: a list that
    offered them would send a seller or a buyer into a refusal."""
    api.order("o1")
    body = {"order": "o1", "kind": "refund_only", "reason": "no_reason", "amount": 100}
    case_id = api.client("buyer:b1").post("/v1/cases", json=body).json()["id"]

    for who in ("seller:s1", "buyer:b1"):
        client = api.client(who)
        view = client.get(f"/v1/cases/{case_id}").json()["available_actions"]
        (listed,) = client.get("/v1/cases").json()["items"]
        assert listed["available_actions"] == view, who
        assert not {"refuse", "request_intervention"} & set(view)


def test_a_bad_cursor_is_refused_clearly(api: ApiServer) -> None:
    response = api.client("agent:a1").get("/v1/cases", params={"cursor": "garbage"})

    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("bad cursor")


# --- evidence files ------------------------------------------------------------------------

PNG = evidence_file("image/png")


def test_an_evidence_file_is_uploaded_as_itself_and_named_by_its_hash(api: ApiServer) -> None:
    client = api.client("buyer:b1")

    response = client.post(
        "/v1/attachments",
        params={"filename": "torn.png"},
        content=PNG,
        headers={"content-type": "image/png"},
    )
    again = client.post(
        "/v1/attachments",
        params={"filename": "torn.png"},
        content=PNG,
        headers={"content-type": "image/png"},
    )

    assert response.status_code == 201, response.text
    assert response.json() == {
        "sha256": hashlib.sha256(PNG).hexdigest(),
        "media_type": "image/png",
        "size": len(PNG),
        "filename": "torn.png",
    }
    assert again.json() == response.json()


def test_a_file_of_a_refused_type_or_too_large_is_refused(api: ApiServer) -> None:
    client = api.client("buyer:b1")

    program = client.post(
        "/v1/attachments",
        content=b"MZ\x90\x00" + b"\x00" * 64,
        headers={"content-type": "image/png"},
    )
    huge = client.post(
        "/v1/attachments",
        content=PNG + b"\x00" * (10 * 1024 * 1024),
        headers={"content-type": "image/png"},
    )

    assert program.status_code == 422
    assert "not an accepted type" in program.json()["error"]["message"]
    assert huge.status_code == 413


# --- a ruling through the API ----------------------------------------------------------------


def test_a_dispute_goes_to_intervention_and_an_agent_rules_it(api: ApiServer) -> None:
    api.order("o1")
    case_id = api.case("o1", kind="refund_only")["id"]
    buyer, seller, agent = (api.client(w) for w in ("buyer:b1", "seller:s1", "agent:a1"))
    act = f"/v1/cases/{case_id}/actions"

    assert seller.post(f"{act}/refuse", json={"reason": "used"}).status_code == 200
    escalated = buyer.post(f"{act}/request_intervention", json={"note": "it is broken"})
    evidence = buyer.post(f"{act}/submit_evidence", json={"text": "photos of the crack"})
    completed = buyer.post(f"{act}/complete_evidence")
    api.clock.advance(timedelta(days=3))  # the seller lets the handling stage pass
    worker = Worker(api.engine)
    try:
        worker.run_once(api.clock.now())
    finally:
        worker.close()
    in_review = agent.get(f"/v1/cases/{case_id}").json()
    ruled = agent.post(
        f"{act}/rule",
        json={"outcome": "refund", "liable": "seller", "reason": "crack visible", "amount": 19900},
    )

    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["status"] == "in_intervention"
    assert evidence.status_code == 200, evidence.text
    assert completed.status_code == 200, completed.text
    assert in_review["stage"] == "review"
    assert "rule" in in_review["available_actions"]
    assert ruled.status_code == 200, ruled.text
    assert ruled.json()["status"] == "refunded"
    assert ruled.json()["liable"] == "seller"


# --- a shop's default return address ---------------------------------------------------------


def test_the_system_agrees_for_a_silent_seller_with_the_shops_return_address(
    api: ApiServer,
) -> None:
    address = {"return_address": "杭州市余杭区文一西路 1 号 售后部"}
    set_by_seller = api.client("seller:s1").put("/v1/shops/s1/return-address", json=address)
    refused = {
        who: api.client(who).put("/v1/shops/s1/return-address", json=address).status_code
        for who in ("seller:s2", "buyer:b1", "agent:a1")
    }
    api.order("o1")
    api.order("o2", shop="s2")
    with_address = api.case("o1")["id"]
    without = api.case("o2")["id"]
    api.clock.advance(timedelta(days=6))  # neither seller answers within seller_respond (5d)
    api.engine.run_due()

    seen = {
        case_id: api.client("buyer:b1").get(f"/v1/cases/{case_id}").json()
        for case_id in (with_address, without)
    }
    assert set_by_seller.status_code == 200
    assert refused == {"seller:s2": 403, "buyer:b1": 403, "agent:a1": 403}
    assert api.client("seller:s1").get("/v1/shops/s1/return-address").json() == {
        "shop": "s1",
        **address,
    }
    assert seen[with_address]["status"] == "awaiting_buyer_return"
    assert seen[with_address]["return_address"] == address["return_address"]
    assert seen[without]["status"] == "awaiting_buyer_return"
    assert seen[without]["return_address"] is None
