"""The policy lab's simulator and workload files (SPEC §10): the figures are the engine's,
the same seed gives the same run, and a bad workload names its line."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shouhou.cli import app
from shouhou.clock import VirtualClock
from shouhou.domain.values import format_yuan, local
from shouhou.errors import NotFound, ScenarioError
from shouhou.policy.selection import Selection, registry_for, select
from shouhou.sim import lab
from shouhou.sim.workload import parse

EXAMPLES = Path(__file__).parents[2] / "examples"
runner = CliRunner()

SMALL = """\
name: a small marketplace
seed: 11
start: "2023-03-06T00:00:00+08:00"
span: 2d
arrivals: {orders: 700}
logistics:
  ship: {p50: 20, p90: 60}
  transit: {min: 20, max: 70}
categories:
  - name: apparel
    share: 0.7
    price: ["39.00", "399.00"]
    free_shipping: 0.5
    shipping_fee: "8.00"
    cases:
      - {kind: return_refund, reason: no_reason, rate: 0.12}
      - {kind: exchange, reason: wrong_item, rate: 0.04, amount: 0}
      - {kind: refund_only, reason: out_of_stock, rate: 0.04}
      - {kind: refund_only, reason: late_shipment, rate: 0.03}
      - {kind: return_refund, reason: not_as_described, rate: 0.06}
  - name: fresh
    share: 0.3
    price: ["20.00", "90.00"]
    no_reason: ineligible
    cases:
      - {kind: return_refund, reason: no_reason, rate: 0.05}
      - {kind: refund_only, reason: damaged, rate: 0.1, amount: 0.5}
profiles:
  quick:
    seller: {respond: {p50: 10, p90: 40}, agree: 0.5, refuse: 0.25, remedy: 0.1, silence: 0.15,
             confirm_receipt: {p50: 30, p90: 100}, refuse_receipt: 0.1, receipt_silence: 0.2}
    buyer: &buyer
      ship_return: {p50: 30, p90: 150}
      dropout: 0.15
      after_refusal: {intervene: 0.5, modify: 0.2, withdraw: 0.1, silence: 0.2}
      intervene_unanswered: 0.5
      evidence_completion: 0.5
      accept_remedy: 0.5
  slow:
    seller: {respond: {p50: 60, p90: 200}, agree: 0.4, refuse: 0.2, remedy: 0.0, silence: 0.4,
             confirm_receipt: {p50: 90, p90: 300}, receipt_silence: 0.3}
    buyer: *buyer
agents: {rule: {p50: 10, p90: 40}, refund: 0.5, partial_refund: 0.2, reject: 0.3}
shops: {count: 3, zipf: 1.0, profiles: {quick: 0.5, slow: 0.5}}
complaints:
  filed: {not_as_described: 0.6, late_shipment: 0.5}
  subtypes: {not_as_described: {severe: 0.3, affects_use: 0.3, minor: 0.4}}
  rule: {p50: 30, p90: 90}
  uphold: 0.7
"""


def _selection(spec: str = "tmall-standard") -> Selection:
    return select(registry_for([spec]), spec)


def _day(at: str) -> str:
    return local(datetime.fromisoformat(at)).date().isoformat()


@pytest.fixture(scope="module")
def small_run() -> tuple[lab.Plan, lab.Run]:
    plan = lab.plan(parse(SMALL))
    return plan, lab.simulate(plan, _selection())


def test_the_simulators_figures_are_a_count_of_the_engines_case_views(
    small_run: tuple[lab.Plan, lab.Run],
) -> None:
    plan, run = small_run
    figures = lab.results(plan, run)
    views = [run.engine.view(case_id) for case_id in run.case_ids]
    assert len(views) > 60  # enough cases to mean something
    statuses = Counter(v["status"] for v in views)
    refunded = [v for v in views if v["status"] == "refunded"]
    # who made each refund: the actor of the case's Refunded event
    by_whom = Counter(
        next(t["actor"] for t in v["timeline"] if t["type"] == "Refunded").split(":")[0]
        for v in refunded
    )
    agents = Counter(
        _day(t["at"]) for v in views for t in v["timeline"] if t["type"] == "InterventionRequested"
    )
    assert figures["cases"] == len(views)
    assert figures["statuses"] == dict(sorted(statuses.items()))
    assert figures["refunds"]["count"] == len(refunded)
    assert figures["refunds"]["money"] == format_yuan(sum(v["refund_amount"] for v in refunded))
    assert figures["refunds"]["by_whom"] == dict(sorted(by_whom.items()))
    assert figures["refunds"]["by_timeout"] == by_whom["system"]
    assert figures["agents"]["per_day"] == dict(sorted(agents.items()))
    assert figures["agents"]["total"] == sum(agents.values()) > 0
    assert all(v["status"] in ("refunded", "closed", "completed") for v in views)
    # every kind of ending the workload asks for happened
    assert {"refunded", "closed", "completed"} <= set(statuses)
    assert by_whom["system"] > 0 and by_whom["seller"] > 0
    # the ineligible no-reason returns were refused by the engine, not by the simulator
    assert figures["applications_refused"].get("not_eligible", 0) > 0


def test_shop_figures_are_the_engines_metrics(small_run: tuple[lab.Plan, lab.Run]) -> None:
    plan, run = small_run
    figures = lab.results(plan, run)
    assert run.ended_at is not None
    for shop in figures["shops"]["each"]:
        metrics = run.engine.shop_metrics(
            shop["shop"], at=run.ended_at, window=run.ended_at - plan.workload.start
        )
        assert shop["refunds"] == metrics.refunds
        assert shop["disputes"] == metrics.disputes
        assert shop["self_completion_rate"] == metrics.self_completion_rate
    compensation = sum(s["compensation_paid"] for s in figures["shops"]["each"])
    assert figures["compensation"] == format_yuan(compensation)
    assert compensation > 0  # out-of-stock and late-shipment refunds compensate (SPEC §7)
    assert sum(s["orders"] for s in figures["shops"]["each"]) == 700


def test_penalty_points_are_the_points_of_the_complaints_the_engine_upheld(
    small_run: tuple[lab.Plan, lab.Run],
) -> None:
    plan, run = small_run
    figures = lab.results(plan, run)
    stored = [run.engine.complaint(k) for k in run.complaint_ids if _exists(run, k)]
    statuses = Counter(str(k.status) for k in stored)
    assert figures["complaints"]["filed"] == len(stored) > 10
    assert figures["complaints"]["by_status"] == dict(sorted(statuses.items()))
    assert set(statuses) == {"upheld", "dismissed"}  # every complaint ruled before the end
    upheld_points = sum(k.points for k in stored if str(k.status) == "upheld")
    assert figures["penalty_points"] == upheld_points > 0
    per_shop = Counter[str]()
    for k in stored:
        if str(k.status) == "upheld":
            per_shop[k.shop] += k.points
    for shop in figures["shops"]["each"]:
        assert shop["penalty_points"] == per_shop[shop["shop"]]


def _exists(run: lab.Run, complaint_id: str) -> bool:
    try:
        run.engine.complaint(complaint_id)
    except NotFound:
        return False
    return True


def _figures(text: str, spec: str = "tmall-standard") -> dict[str, Any]:
    plan = lab.plan(parse(text))
    return lab.results(plan, lab.simulate(plan, _selection(spec)))


def test_the_same_seed_gives_the_same_figures_and_another_seed_others(
    small_run: tuple[lab.Plan, lab.Run],
) -> None:
    plan, run = small_run
    first = lab.results(plan, run)
    again = _figures(SMALL)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    other = _figures(SMALL.replace("seed: 11", "seed: 12"))
    assert json.dumps(first, sort_keys=True) != json.dumps(other, sort_keys=True)


def test_a_longer_seller_deadline_changes_the_outcome_of_the_same_cases(
    small_run: tuple[lab.Plan, lab.Run],
) -> None:
    plan, run = small_run
    base = lab.results(plan, run)
    patient = _figures(SMALL, str(EXAMPLES / "policies" / "patient-sellers.yaml"))
    assert patient["cases"] == base["cases"]
    assert patient["policy"] == "patient-sellers"
    # the same cases, so the difference is the rulebook's: sellers' silence lasts longer
    assert patient["resolution_hours"] != base["resolution_hours"]


def test_a_simulation_on_a_database_keeps_its_cases(tmp_path: Path) -> None:
    from shouhou.bootstrap import Engine

    text = SMALL.replace("orders: 700", "orders: 120")
    plan = lab.plan(parse(text))
    chosen = _selection()
    clock = VirtualClock(plan.workload.start)
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    engine = Engine.open(url, clock=clock, registry=chosen.registry(), policies=chosen.names)
    try:
        run = lab.simulate(plan, chosen, engine=engine, clock=clock)
        on_db = lab.results(plan, run)
    finally:
        engine.close()
    assert on_db == lab.results(plan, lab.simulate(plan, chosen))
    kept = Engine.open(url)
    try:
        assert kept.case(run.case_ids[0]).terminal
    finally:
        kept.close()


def _line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        ("    share: 0.3\n", "    share: 0.4\n", "categories:", "category shares add up to 1.1"),
        ("shops: {count: 3,", "shops: {count: 0,", "shops: {count", "shops.count"),
        ("      dropout: 0.15\n", "      dropout: 1.5\n", "dropout", "dropout"),
        ("agents: {rule: {p50: 10", "agents: {rule: {p50: 10, min: 3", "agents:", "agents.rule"),
    ],
)
def test_a_workload_with_an_error_names_its_line(
    old: str, new: str, where: str, words: str
) -> None:
    broken = SMALL.replace(old, new)
    assert broken != SMALL
    with pytest.raises(ScenarioError) as caught:
        parse(broken, "w.yaml")
    assert caught.value.line == _line_of(broken, where), caught.value
    assert words in str(caught.value)


def test_a_workload_refuses_an_unknown_key_at_its_line() -> None:
    text = SMALL.replace("  ship: {p50: 20, p90: 60}\n", "  ship: {p50: 20, p90: 60}\n  boat: 3\n")
    with pytest.raises(ScenarioError) as caught:
        parse(text, "w.yaml")
    assert caught.value.line == _line_of(text, "boat")
    assert "boat" in str(caught.value)


def test_the_example_workloads_are_valid() -> None:
    names = sorted(p.name for p in (EXAMPLES / "workloads").glob("*.yaml"))
    assert names == ["double-11.yaml", "ordinary-week.yaml", "spring-festival-2022.yaml"]
    for name in names:
        workload = parse((EXAMPLES / "workloads" / name).read_text(), name)
        assert workload.seed


def test_simulate_prints_json_and_writes_a_self_contained_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOUHOU_TIMEZONE", "Asia/Kolkata")
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("orders: 700", "orders: 150"), encoding="utf-8")
    out = tmp_path / "out"
    args = ["simulate", str(path), "--policy", "tmall-standard", "--policy", "taobao"]
    result = runner.invoke(app, [*args, "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert [p["policy"] for p in data["policies"]] == ["tmall-standard", "taobao"]
    for figures in data["policies"]:  # the one time format, in the marketplace's zone
        ended = figures["engine"]["ended_at"]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30$", ended)
    for name in ("agent-load", "resolution-cdf", "timeout-refunds"):
        assert (out / f"{name}.png").stat().st_size > 0
        assert (out / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 3
    assert "src=" not in page and 'href="http' not in page  # nothing to fetch


def test_simulate_exits_2_with_the_line_of_a_bad_workload(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SMALL.replace("span: 2d", "span: two days"), encoding="utf-8")
    result = runner.invoke(app, ["simulate", str(path), "--policy", "tmall-standard"])
    assert result.exit_code == 2
    assert f"bad.yaml:{_line_of(SMALL, 'span:')}" in result.output


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", ["penalty points", "orders"]), ("zh-Hant", ["扣分", "訂單", "規則投訴"])],
)
def test_simulate_prints_its_table_in_the_chosen_language(
    tmp_path: Path, lang: str, words: list[str]
) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("orders: 700", "orders: 120"), encoding="utf-8")
    result = runner.invoke(
        app, ["simulate", str(path), "--policy", "tmall-standard", "--lang", lang]
    )
    assert result.exit_code == 0, result.output
    for word in words:
        assert word in result.stdout
