"""The policy lab's views of rulebooks: the state diagram and the rule-by-rule diff (SPEC §10)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shouhou.cli import app
from shouhou.domain.model import CaseStatus
from shouhou.policy.diagram import FORMATS, build, render
from shouhou.policy.diff import diff
from shouhou.policy.loader import Registry
from shouhou.policy.schema import CASE_DEADLINES, ORDER_DEADLINES, BasePack
from shouhou.policy.selection import registry_for, select

EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"
runner = CliRunner()


def _durations(pack: BasePack, name: str) -> list[str]:
    spec = pack.deadlines[name].duration
    return [spec] if isinstance(spec, str) else list(spec.values())


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_diagram_names_every_status_and_every_deadline_with_its_duration(fmt: str) -> None:
    registry = Registry.default()
    chosen = select(registry, "tmall-standard+cny-2022")
    base = chosen.packs[0].pack
    assert isinstance(base, BasePack)
    text = render(build(chosen.packs[0], list(chosen.packs[1:])), fmt)
    for status in CaseStatus:
        assert status.value in text
    for name in [*CASE_DEADLINES, *ORDER_DEADLINES]:
        assert name in text
        for duration in _durations(base, name):
            # the duration follows the deadline's name on the same label, before its outcome
            assert re.search(rf"{name} [^→\n]*\b{duration}\b[^→\n]*→", text), (name, duration)
    # the holiday overlay is a note with its own durations
    assert "cny-2022@1/review: seller_respond 15d" in text
    assert "buyer_ship_return 20d" in text


def test_a_diagram_shows_the_durations_of_the_pack_it_draws(tmp_path: Path) -> None:
    slow = EXAMPLES / "patient-sellers.yaml"
    registry = registry_for([str(slow)])
    chosen = select(registry, str(slow))
    text = render(build(chosen.packs[0], []), "mermaid")
    assert "seller_respond 7d" in text
    assert "seller_respond 5d" not in text


def test_the_svg_diagram_is_well_formed_xml_with_a_box_per_status() -> None:
    chosen = select(Registry.default(), "tmall-standard+cny-2020")
    text = render(build(chosen.packs[0], list(chosen.packs[1:])), "svg")
    root = ET.fromstring(text.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for status in CaseStatus:
        assert any(label.startswith(status.value) for label in labels)


def test_policy_diagram_writes_the_chosen_format(tmp_path: Path) -> None:
    out = tmp_path / "d.dot"
    result = runner.invoke(
        app, ["policy", "diagram", "cny-2022", "--format", "dot", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("digraph")
    bad = runner.invoke(app, ["policy", "diagram", "tmall-standard", "--format", "png"])
    assert bad.exit_code == 2


def test_diff_of_two_base_packs_lists_changed_values_with_provenance() -> None:
    registry = Registry.default()
    changes = diff(select(registry, "tmall-standard").packs, select(registry, "taobao").packs)
    assert [c.key for c in changes] == ["compensation"]
    (change,) = changes
    assert change.change == "changed"
    assert change.fields["rate"] == ("0.30", "0.05")
    assert change.fields["maximum"] == ("500.00", "30.00")
    assert change.before is not None and change.before.source == "tmall-standard@1"
    assert change.after is not None and change.after.short.startswith("sec")


def test_diff_includes_holiday_overlays_added_and_removed() -> None:
    registry = Registry.default()
    changes = {
        c.key: c
        for c in diff(select(registry, "cny-2020").packs, select(registry, "cny-2022").packs)
    }
    assert changes["holiday cny-2022/review"].change == "added"
    assert changes["window cny-2022"].change == "added"
    assert changes["holiday cny-2020/evidence"].change == "removed"
    assert all(not key.startswith(("deadline", "limit", "reason")) for key in changes)


def test_diff_of_a_pack_with_itself_is_empty() -> None:
    registry = Registry.default()
    same = select(registry, "tmall-standard+cny-2022").packs
    assert diff(same, same) == []


def test_policy_diff_prints_json_with_both_sides() -> None:
    result = runner.invoke(
        app, ["policy", "diff", "tmall-standard", str(EXAMPLES / "patient-sellers.yaml"), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rules = {c["rule"]: c for c in data["changes"]}
    respond = rules["deadline seller_respond"]
    assert respond["change"] == "changed"
    assert respond["fields"]["duration"] == {"from": "5d", "to": "7d"}
    assert respond["from"]["pack"] == "tmall-standard@1"
    assert respond["to"]["pack"] == "patient-sellers@1"
    text = runner.invoke(app, ["policy", "diff", "tmall-standard", "taobao"])
    assert text.exit_code == 0
    assert "rate: 0.30 → 0.05" in text.output
