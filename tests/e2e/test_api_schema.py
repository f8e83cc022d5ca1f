"""Schemathesis against the API's own OpenAPI document, sent to a real server: no input makes
it fail with a 5xx, every answer matches the status codes, headers, media type and schema it
documents, schema-valid requests are not refused for their parameters, and schema-invalid
ones are refused.

Two runs: in process, one test per operation (from the app's schema at collection time) with
a bounded Hypothesis search of schema-valid requests; and the ``st run`` command line with
every check (``--checks all``) and its examples, coverage and fuzzing phases, with a bounded
number of examples, configured by tests/e2e/schemathesis.toml.
"""

from __future__ import annotations

import subprocess
import sys
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
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shouhou.api import create_app
from shouhou.bootstrap import Engine

#: Examples generated per API operation.
EXAMPLES_PER_OPERATION = 30
#: Examples per operation in the command-line run, whose coverage phase adds its own.
EXAMPLES_PER_OPERATION_CLI = 10
#: Safety net so a hung command-line run fails the test instead of hanging it, in seconds.
CLI_TIMEOUT_S = 300
CONFIG = Path(__file__).with_name("schemathesis.toml")


def parameters_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request is not refused for its parameters (``shouhou/parameters``): the
    schema promised them. An opaque cursor is the one parameter the schema cannot check."""
    if response.status_code not in (400, 422):
        return None
    error = response.json()["error"]
    refused_parameters = error.get("rule") == "shouhou/parameters"
    if refused_parameters and not error["message"].startswith("bad cursor"):
        raise AssertionError(f"a schema-valid request was refused: {error['message']}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    parameters_accepted,
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


def test_schemathesis_with_all_its_checks_finds_nothing(fuzzed: ApiServer, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file",
        str(CONFIG),
        "run",
        f"{fuzzed.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION_CLI),
        "--header",
        f"Authorization: Bearer {fuzzed.key('platform')}",
        "--seed",
        "15",
        "--workers",
        "2",
        "--no-color",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        cwd=tmp_path,  # where it keeps its cache
    )

    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "failures" not in summary.splitlines()[-1], summary
