"""The scenario files in examples/scenarios hold, and the runner reports bad files and failures.

Every file runs on in-memory SQLite (the default of :func:`run_files`), so these tests are fast.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from shouhou.sim.scenario import run_files

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "examples" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))
#: Files written with a comment block naming their rule (the first example predates it).
COMMENTED = [p for p in FILES if not p.name.startswith("01_")]

HEADER = """\
name: runner check
policy: [tmall-standard]
start: "2023-03-01T10:00:00+08:00"
orders:
  - {id: o1, shop: s1, buyer: b1, total: "199.00", paid_at: "2023-03-01T10:00:00+08:00"}
steps:
"""


def run(path: Path) -> tuple[int, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    code = run_files([path], records.append)
    return code, records


def write(tmp_path: Path, steps: str, header: str = HEADER) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(header + textwrap.dedent(steps), encoding="utf-8")
    return path


def failures(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed actions and expectations, and invalid-file reports (not the per-file result)."""
    return [
        r
        for r in records
        if r["event"] == "invalid" or (r["event"] != "result" and r.get("ok") is False)
    ]


def test_there_are_scenario_files() -> None:
    assert len(FILES) >= 17


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_scenario_holds(path: Path) -> None:
    code, records = run(path)
    assert failures(records) == []
    assert code == 0
    assert records[0]["event"] == "scenario"
    assert records[-1] == {"event": "result", "file": str(path), "ok": True}
    assert any(r["event"] == "expect" for r in records), "a scenario should check something"


@pytest.mark.parametrize("path", COMMENTED, ids=[p.name for p in COMMENTED])
def test_scenario_starts_with_a_comment_naming_its_rule(path: Path) -> None:
    header = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert text.startswith("# Rule:")
    assert "seed" in text.lower()


# --- invalid files: exit code 2 with the line -------------------------------------------


def _invalid(tmp_path: Path, steps: str, header: str = HEADER) -> dict[str, Any]:
    code, records = run(write(tmp_path, steps, header))
    assert code == 2
    invalid = [r for r in records if r["event"] == "invalid"]
    assert len(invalid) == 1, records
    # nothing ran: a file is checked whole before its first step
    assert not any(r["event"] in ("action", "expect", "result") for r in records)
    return invalid[0]


def test_unknown_action_is_invalid_with_its_line(tmp_path: Path) -> None:
    record = _invalid(
        tmp_path,
        """\
          - {at: "2023-03-01T11:00:00+08:00", actor: buyer:b1, action: apply, case: c1,
             params: {order: o1, kind: refund_only, reason: other, amount: "10.00"}}
          - {after: 1h, actor: seller:s1, action: teleport, case: c1}
        """,
    )
    assert record["line"] == 9
    assert "teleport" in record["error"]


def test_time_going_backwards_is_invalid_with_its_line(tmp_path: Path) -> None:
    record = _invalid(
        tmp_path,
        """\
          - at: "2023-03-02T10:00:00+08:00"
          - expect: {order: o1, status: paid}
          - at: "2023-03-01T12:00:00+08:00"
            actor: buyer:b1
            action: apply
            case: c1
            params: {order: o1, kind: refund_only, reason: other, amount: "10.00"}
        """,
    )
    assert record["line"] == 9
    assert "backwards" in record["error"]


@pytest.mark.parametrize("duration", ["5x", "1d2", "d", "-5d", "5 days"])
def test_bad_duration_is_invalid_with_its_line(tmp_path: Path, duration: str) -> None:
    record = _invalid(
        tmp_path,
        f"""\
          - after: 1h
          - expect: {{order: o1, status: paid}}
          - after: {duration}
        """,
    )
    assert record["line"] == 9
    assert "duration" in record["error"]


def test_unknown_step_key_is_invalid_with_its_line(tmp_path: Path) -> None:
    record = _invalid(
        tmp_path,
        """\
          - after: 1h
          - actor: buyer:b1
            action: apply
            case: c1
            parms: {order: o1, kind: refund_only, reason: other, amount: "10.00"}
        """,
    )
    assert record["line"] == 11, "the line of the unknown key itself"
    assert "parms" in record["error"]


def test_a_shop_with_an_unknown_key_is_invalid_with_its_line(tmp_path: Path) -> None:
    header = HEADER.replace("orders:\n", "shops:\n  - {id: s1, address: somewhere}\norders:\n", 1)
    record = _invalid(tmp_path, "  - after: 1h\n", header)
    assert record["line"] == 5
    assert "address" in record["error"] and "return_address" in record["error"]


def test_unknown_top_level_key_is_reported_at_its_own_line(tmp_path: Path) -> None:
    header = HEADER.replace("steps:\n", "colour: red\nsteps:\n")
    record = _invalid(tmp_path, "  - after: 1h\n", header)
    assert record["line"] == 6
    assert "colour" in record["error"]


def test_available_actions_are_those_of_the_party_named_by_as(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - actor: buyer:b1
    action: apply
    case: c1
    params: {order: o1, kind: refund_only, reason: other, amount: "10.00"}
  - expect:
      case: c1
      as: "seller:s1"
      available_actions: [agree, refuse, propose_remedy]
  - expect: {case: c1, as: "buyer:b1", available_actions: [modify, withdraw]}
  - expect: {case: c1, as: "buyer:b2", available_actions: []}
""",
    )
    code, records = run(path)
    assert code == 0, records


def test_unknown_order_key_is_invalid_with_its_line(tmp_path: Path) -> None:
    header = HEADER.replace('paid_at: "2023-03-01T10:00:00+08:00"}', "colour: red}")
    record = _invalid(tmp_path, "  - after: 1h\n", header)
    assert record["line"] == 5
    assert "colour" in record["error"]


def test_unknown_expect_field_is_invalid_with_its_line(tmp_path: Path) -> None:
    record = _invalid(
        tmp_path,
        """\
          - after: 1h
          - expect: {order: o1, colour: red}
        """,
    )
    assert record["line"] == 8
    assert "colour" in record["error"]


# --- failed expectations: exit code 1 with a diff ---------------------------------------


def test_false_expectation_fails_with_a_diff_naming_the_field(tmp_path: Path) -> None:
    code, records = run(
        write(
            tmp_path,
            """\
              - {at: "2023-03-01T11:00:00+08:00", actor: buyer:b1, action: apply, case: c1,
                 params: {order: o1, kind: refund_only, reason: other, amount: "199.00"}}
              - expect: {case: c1, status: refunded, kind: refund_only,
                         deadline: {name: seller_respond, due_at: "2023-03-06T11:00:00+08:00"}}
              - expect: {case: c1, status: awaiting_seller}
            """,
        )
    )
    assert code == 1
    failed = failures(records)
    assert len(failed) == 1
    record = failed[0]
    assert record["event"] == "expect"
    assert record["line"] == 9
    assert record["case"] == "c1"
    assert record["diff"] == {"status": {"expected": "refunded", "actual": "awaiting_seller"}}
    # the first failed expectation stops the file
    assert records[-1]["event"] == "result"
    assert records[-1]["ok"] is False
    assert sum(1 for r in records if r["event"] == "expect") == 1


def test_wrong_deadline_is_reported_in_the_diff(tmp_path: Path) -> None:
    code, records = run(
        write(
            tmp_path,
            """\
              - {at: "2023-03-01T11:00:00+08:00", actor: buyer:b1, action: apply, case: c1,
                 params: {order: o1, kind: refund_only, reason: other, amount: "199.00"}}
              - expect: {case: c1,
                         deadline: {name: seller_respond, due_at: "2023-03-07T11:00:00+08:00"}}
            """,
        )
    )
    assert code == 1
    (record,) = failures(records)
    assert set(record["diff"]) == {"deadline"}
    assert record["diff"]["deadline"]["actual"]["rule_id"] == "tmall-standard/seller_respond"


def test_unexpected_success_and_wrong_error_code_fail(tmp_path: Path) -> None:
    code, records = run(
        write(
            tmp_path,
            """\
              - {at: "2023-03-01T11:00:00+08:00", actor: buyer:b1, action: apply, case: c1,
                 params: {order: o1, kind: refund_only, reason: other, amount: "199.00"},
                 expect_error: invalid}
            """,
        )
    )
    assert code == 1
    (record,) = failures(records)
    assert record["event"] == "action"
    assert record["expected"] == "invalid"

    code, records = run(
        write(
            tmp_path,
            """\
              - {at: "2023-03-01T11:00:00+08:00", actor: buyer:b1, action: apply, case: c1,
                 params: {order: o1, kind: refund_only, reason: other, amount: "999.00"},
                 expect_error: forbidden}
            """,
        )
    )
    assert code == 1
    (record,) = failures(records)
    assert record["error"]["code"] == "invalid"
    assert record["expected"] == "forbidden"


def test_worst_code_wins_over_several_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEADER + "  - after: 5x\n", encoding="utf-8")
    records: list[dict[str, Any]] = []
    assert run_files([FILES[0], bad], records.append) == 2
    results = [r for r in records if r["event"] == "result"]
    assert results == [{"event": "result", "file": str(FILES[0]), "ok": True}]


# --- the command line -------------------------------------------------------------------


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("shouhou")
    if script.exists():
        return [str(script)]
    found = shutil.which("shouhou")
    return [found] if found else [sys.executable, "-m", "shouhou"]


def test_cli_runs_two_files_and_prints_json_lines() -> None:
    chosen = [FILES[0], FILES[-1]]
    proc = subprocess.run(
        [*_cli(), "scenario", "run", *map(str, chosen)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) and "event" in r for r in records)
    assert [r["file"] for r in records if r["event"] == "scenario"] == [str(p) for p in chosen]
    assert [r["ok"] for r in records if r["event"] == "result"] == [True, True]
    assert any(r["event"] == "timeout" and r.get("rule_id") for r in records)
