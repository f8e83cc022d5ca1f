"""The API's edges say what the OpenAPI document says: unknown routes and actions, methods a
route lacks, how times and integers are written, what an operation may answer."""

from __future__ import annotations

from apiserver import ApiServer

APPLY = {"order": "o1", "kind": "return_refund", "reason": "quality", "amount": 19900}


def test_an_unknown_case_action_is_not_found_and_names_the_known_ones(api: ApiServer) -> None:
    api.order("o1")
    case_id = api.case("o1")["id"]

    response = api.client("seller:s1").post(f"/v1/cases/{case_id}/actions/nonsense", json={})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "agree" in error["actions"] and "refuse" in error["actions"]
    assert error["message"].startswith("no action 'nonsense' on cases; known actions: ")


def test_an_unknown_route_answers_the_error_envelope(api: ApiServer) -> None:
    response = api.client("agent:a1").get("/v1/nothing/here")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no route GET /v1/nothing/here"}
    }


def test_a_method_a_path_lacks_is_405_allowing_every_method_of_the_path(api: ApiServer) -> None:
    client = api.client("agent:a1")

    cases = client.options("/v1/cases")
    endpoint = client.put("/v1/webhooks/endpoints/we_1")

    assert cases.status_code == 405 and cases.headers["allow"] == "GET, POST"
    assert cases.json()["error"]["code"] == "method_not_allowed"
    assert endpoint.status_code == 405 and endpoint.headers["allow"] == "DELETE, GET"


def test_a_time_given_as_a_number_is_refused(api: ApiServer) -> None:
    body = {"id": "o1", "shop": "s1", "buyer": "b1", "total": 100, "paid_at": 1772416800}

    for paid_at in (1772416800, "1772416800", "2026-03-02T10:00:00"):
        response = api.client("platform").post("/v1/orders", json={**body, "paid_at": paid_at})
        assert response.status_code == 422, paid_at
        assert response.json()["error"]["errors"][0]["loc"] == ["body", "paid_at"]


def test_an_integral_float_is_the_integer_it_is_and_other_numbers_are_refused(
    api: ApiServer,
) -> None:
    api.order("o1")
    buyer = api.client("buyer:b1")

    for amount in (19900.5, "19900", True):
        refused = buyer.post("/v1/cases", json={**APPLY, "amount": amount})
        assert refused.status_code == 422, amount
    opened = buyer.post("/v1/cases", json={**APPLY, "amount": 19900.0})

    assert opened.status_code == 201, opened.text
    assert opened.json()["requested_amount"] == 19900


def test_a_request_without_a_key_is_unauthenticated_before_its_parameters_are_checked(
    api: ApiServer,
) -> None:
    response = api.client(**{"X-On-Behalf-Of": "nobody"}).get("/v1/cases?limit=0")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_the_document_hides_service_fields_and_declares_body_errors(api: ApiServer) -> None:
    document = api.client().get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    apply = document["paths"]["/v1/cases"]["post"]
    on_behalf = next(
        p for p in document["paths"]["/v1/me"]["get"]["parameters"] if p["name"] == "X-On-Behalf-Of"
    )

    assert set(schemas["SubmitEvidenceParams"]["properties"]) == {"text", "attachments"}
    assert {"400", "413", "415"} <= set(apply["responses"])
    assert on_behalf["schema"]["type"] == "string" and "anyOf" not in on_behalf["schema"]
    assert on_behalf["schema"]["pattern"].startswith("^(buyer|seller):")
