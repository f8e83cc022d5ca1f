"""Every field of the case and order views that reaches a client is declared in the OpenAPI
document: the JSON the API really returns validates against the document's schemas, read so
strictly that a property the document does not name is refused."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import httpx
import jsonschema_rs
from apiserver import ApiServer

from shouhou.api import create_app
from shouhou.testing import evidence_file
from shouhou.worker import Worker

PNG = evidence_file("image/png")


def strict(schemas: dict[str, Any]) -> dict[str, Any]:
    """The schemas with every object that names its properties closed to all others."""
    closed = copy.deepcopy(schemas)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(closed)
    return closed


def validator(api: ApiServer, schema: str) -> Any:
    """A validator of the answers documented as ``schema`` in the app's OpenAPI document."""
    components = create_app(api.engine).openapi()["components"]
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{schema}", "components": strict(components)}
    )


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def rich_case(api: ApiServer) -> list[Any]:
    """The case views answered along a case that is modified, offered a remedy, disputed with
    evidence and ruled on: every field of the view is filled in by one of them."""
    api.order("o1", freight_insurance=True)
    buyer, seller, agent = (api.client(w) for w in ("buyer:b1", "seller:s1", "agent:a1"))
    views = [api.case("o1", kind="refund_only")]
    act = f"/v1/cases/{views[0]['id']}/actions"
    views.append(ok(buyer.post(f"{act}/modify", json={"amount": 15000, "note": "half used"})))
    remedy = {"type": "partial_refund", "amount": 3000}
    views.append(ok(seller.post(f"{act}/propose_remedy", json=remedy)))
    views.append(ok(buyer.post(f"{act}/decline_remedy")))
    views.append(ok(seller.post(f"{act}/refuse", json={"reason": "used"})))
    views.append(ok(buyer.post(f"{act}/request_intervention", json={"note": "it is broken"})))
    photo = ok(buyer.post("/v1/attachments", content=PNG, headers={"content-type": "image/png"}))
    evidence = {"text": "photos of the crack", "attachments": [photo["sha256"]]}
    views.append(ok(buyer.post(f"{act}/submit_evidence", json=evidence)))
    views.append(ok(buyer.post(f"{act}/complete_evidence")))
    api.clock.advance(timedelta(days=3))  # the seller lets the handling stage pass
    worker = Worker(api.engine)
    try:
        worker.run_once(api.clock.now())
    finally:
        worker.close()
    views.append(ok(agent.get(f"/v1/cases/{views[0]['id']}")))
    ruling = {"outcome": "refund", "liable": "seller", "reason": "crack visible", "amount": 15000}
    views.append(ok(agent.post(f"{act}/rule", json=ruling)))
    return views


def test_every_field_of_the_case_view_a_client_gets_is_declared(api: ApiServer) -> None:
    views = rich_case(api)
    case_view = validator(api, "CaseView")

    errors = [str(error) for view in views for error in case_view.iter_errors(view)]

    assert errors == []
    assert any(view["remedy"] for view in views)
    assert any(view["modifications"] for view in views)
    assert any(view["evidence"] and view["evidence"][0]["attachments"] for view in views)
    assert views[-1]["liable"] == "seller"
    assert views[-1]["freight"] is not None
    assert "An agent ruled" in views[-1]["explanation"]["en"]


def test_every_field_of_the_order_view_and_of_a_case_in_a_list_is_declared(
    api: ApiServer,
) -> None:
    rich_case(api)
    platform = api.client("platform")
    order = ok(platform.get("/v1/orders/o1"))
    cases = ok(platform.get("/v1/cases"))["items"]

    assert list(validator(api, "OrderView").iter_errors(order)) == []
    assert cases and list(validator(api, "CaseSummary").iter_errors(cases[0])) == []


def test_the_strict_reading_refuses_a_field_the_document_does_not_name(api: ApiServer) -> None:
    view = api.case(api.order("o1")["id"])

    assert validator(api, "CaseView").is_valid(view)
    assert not validator(api, "CaseView").is_valid({**view, "undeclared": 1})
    assert not validator(api, "CaseView").is_valid(
        {**view, "deadline": {**view["deadline"], "undeclared": 1}}
    )
