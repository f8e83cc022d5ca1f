"""Schemathesis against the API's own OpenAPI document, sent to a real server: no input makes
it fail with a 5xx, and every answer matches the status codes, media type and schema it
documents.

The operations come from the app's schema at collection time (one test each); each runs a
bounded Hypothesis search, so the whole file stays well under two minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from apiserver import ApiServer, serving
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from shouhou.api import create_app
from shouhou.bootstrap import Engine

#: Examples generated per API operation.
EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _document() -> dict[str, Any]:
    engine = Engine.open("sqlite:///:memory:")
    try:
        return create_app(engine).openapi()
    finally:
        engine.close()


SCHEMA = schemathesis.openapi.from_dict(_document())
OPERATIONS = sorted(op.ok().label for op in SCHEMA.get_all_operations())


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Iterator[ApiServer]:
    """One server for the whole run, with an order and a case for requests to find."""
    with serving(tmp_path_factory.mktemp("fuzz") / "api.db", migrated_db) as server:
        server.order("o1001")
        server.case("o1001")
        yield server


def test_the_schema_documents_every_route_of_the_api() -> None:
    assert "POST /v1/cases" in OPERATIONS
    assert "POST /v1/cases/{case_id}/actions/agree" in OPERATIONS
    assert "POST /v1/webhooks/events/{event_id}/replay" in OPERATIONS
    assert len(OPERATIONS) >= 30


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_request_makes_the_api_fail_and_answers_match_the_schema(
    label: str, fuzzed: ApiServer
) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    assert operation is not None
    headers = {"Authorization": f"Bearer {fuzzed.key('platform')}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=fuzzed.url, headers=headers, checks=CHECKS)

    run()
