"""Rulebook packs: strict validation, the registry, and holiday overrides (SPEC §2, §12)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from shouhou.domain import commands as c
from shouhou.domain.model import CaseKind, Mark, Reason, ShippingMethod
from shouhou.domain.rules import DeadlineContext, DeadlineRule
from shouhou.domain.values import SHANGHAI
from shouhou.errors import PolicyError
from shouhou.policy.loader import LoadedPack, Registry, bundled, line_of, parse_pack
from shouhou.policy.rulebook import Rulebook
from shouhou.policy.schema import BasePack

DAY = timedelta(days=1)
#: libyaml's loader and dumper when present: the tests read and write the packs many times.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.cache
def _bundled(name: str) -> LoadedPack:
    """A bundled pack, read once per session."""
    return next(p for p in bundled() if p.pack.name == name)


@functools.cache
def _data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(_bundled(name).text, Loader=LOADER)
    return data


def _edited(name: str, edit: Callable[[dict[str, Any]], None]) -> str:
    """The text of bundled pack ``name`` after ``edit`` changed (a copy of) its data."""
    data = copy.deepcopy(_data(name))
    edit(data)
    return yaml.dump(data, Dumper=DUMPER, allow_unicode=True, sort_keys=False)


def sh(*args: int) -> datetime:
    """A wall-clock time in Asia/Shanghai."""
    return datetime(*args, tzinfo=SHANGHAI)


# --- validation ------------------------------------------------------------------------------


def test_the_bundled_packs_validate() -> None:
    packs = {p.pack.name: p for p in bundled()}
    assert set(packs) == {"tmall-standard", "taobao", "cny-2020", "cny-2022"}
    assert packs["tmall-standard"].pack.kind == "base"
    assert {packs["cny-2020"].pack.kind, packs["cny-2022"].pack.kind} == {"holiday"}
    for loaded in packs.values():
        assert parse_pack(loaded.text, parents=packs).digest == loaded.digest


def test_a_pack_that_extends_another_inherits_all_it_does_not_say() -> None:
    packs = {p.pack.name: p.pack for p in bundled()}
    taobao, tmall = packs["taobao"], packs["tmall-standard"]
    assert isinstance(taobao, BasePack) and isinstance(tmall, BasePack)
    assert (taobao.compensation.rate, taobao.compensation.maximum) == ("0.05", "30.00")
    assert taobao.deadlines == tmall.deadlines
    assert taobao.complaints == tmall.complaints


def test_a_pack_extending_an_unknown_pack_is_refused() -> None:
    with pytest.raises(PolicyError, match="extends unknown pack"):
        parse_pack("name: x\nversion: 1\nkind: base\nextends: nowhere\n")


def test_the_default_selection_is_the_base_pack_then_every_holiday() -> None:
    selection = Registry.default().default_selection()
    assert selection == ["tmall-standard", "cny-2020", "cny-2022"]


def test_an_unknown_top_level_key_is_refused() -> None:
    text = _edited("tmall-standard", lambda d: d.update(colour="red"))
    with pytest.raises(PolicyError, match="colour"):
        parse_pack(text)


def test_an_unknown_key_inside_a_deadline_is_refused() -> None:
    text = _edited("tmall-standard", lambda d: d["deadlines"]["seller_respond"].update(grace="1h"))
    with pytest.raises(PolicyError, match=r"deadlines\.seller_respond\.grace"):
        parse_pack(text)


def test_an_unknown_key_in_a_holiday_rule_is_refused() -> None:
    text = _edited("cny-2020", lambda d: d["rules"][0].update(priority=1))
    with pytest.raises(PolicyError, match="priority"):
        parse_pack(text)


def test_a_base_pack_missing_a_deadline_is_refused() -> None:
    text = _edited("tmall-standard", lambda d: d["deadlines"].pop("seller_reship"))
    with pytest.raises(PolicyError, match="deadline seller_reship is missing"):
        parse_pack(text)


def test_a_base_pack_missing_a_limit_is_refused() -> None:
    text = _edited("tmall-standard", lambda d: d["limits"].pop("max_modifications"))
    with pytest.raises(PolicyError, match="limit max_modifications is missing"):
        parse_pack(text)


@pytest.mark.parametrize("bad", ["5 days", "5", "1.5d", "d5"])
def test_a_bad_deadline_duration_is_refused(bad: str) -> None:
    text = _edited(
        "tmall-standard", lambda d: d["deadlines"]["seller_respond"].update(duration=bad)
    )
    with pytest.raises(PolicyError, match="bad duration"):
        parse_pack(text)


def test_a_bad_duration_in_a_per_variant_deadline_is_refused() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["deadlines"]["auto_confirm"]["duration"]["post"] = "a month"

    with pytest.raises(PolicyError, match="bad duration"):
        parse_pack(_edited("tmall-standard", edit))


def test_a_bad_duration_limit_is_refused() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["limits"]["after_sale_window"]["value"] = "fifteen days"

    with pytest.raises(PolicyError, match="after_sale_window"):
        parse_pack(_edited("tmall-standard", edit))


def test_a_bad_duration_in_a_holiday_override_is_refused() -> None:
    text = _edited("cny-2020", lambda d: d["rules"][0]["set"].update(seller_respond="15 days"))
    with pytest.raises(PolicyError, match="bad duration"):
        parse_pack(text)


def test_an_expiry_action_a_deadline_can_not_take_is_refused() -> None:
    text = _edited("tmall-standard", lambda d: d["deadlines"]["ship_by"].update(on_expiry="close"))
    with pytest.raises(PolicyError, match="on_expiry 'close'"):
        parse_pack(text)


def test_a_holiday_window_that_ends_before_it_starts_is_refused() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["window"]["end"] = "2020-01-01T00:00:00"

    with pytest.raises(PolicyError, match="window end must come after its start"):
        parse_pack(_edited("cny-2020", edit))


def test_text_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(PolicyError, match="mapping"):
        parse_pack("- just\n- a list\n")


# --- the registry ----------------------------------------------------------------------------


def test_the_registry_refuses_two_texts_under_the_same_name_and_version() -> None:
    original = _bundled("tmall-standard")
    changed = parse_pack(original.text + "\n# a quiet edit\n", "elsewhere.yaml")
    with pytest.raises(PolicyError, match=r"tmall-standard@1 .* never changes"):
        Registry([original, changed])


def test_the_registry_accepts_the_same_text_twice() -> None:
    original = _bundled("tmall-standard")
    registry = Registry([original, parse_pack(original.text, "copy.yaml")])
    assert [v.ref for v in registry.versions("tmall-standard")] == ["tmall-standard@1"]


def test_the_registry_picks_the_newest_version_in_force_at_an_instant() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["version"] = 2
        data["effective_from"] = "2024-01-01T00:00:00+08:00"
        data["deadlines"]["seller_respond"]["duration"] = "3d"

    v2 = parse_pack(_edited("tmall-standard", edit))
    registry = Registry([_bundled("tmall-standard"), v2])
    assert registry.in_force("tmall-standard", sh(2023, 12, 31, 23, 59)).ref == "tmall-standard@1"
    assert registry.in_force("tmall-standard", sh(2024, 1, 1)).ref == "tmall-standard@2"


def test_an_effective_from_without_an_offset_is_shanghai_time() -> None:
    """As holiday windows are: it used to pass validation and break every selection."""

    def edit(data: dict[str, Any]) -> None:
        data["version"] = 2
        data["effective_from"] = "2024-01-01T00:00:00"

    registry = Registry([_bundled("tmall-standard"), parse_pack(_edited("tmall-standard", edit))])
    assert registry.in_force("tmall-standard", sh(2023, 12, 31, 23, 59)).ref == "tmall-standard@1"
    assert registry.in_force("tmall-standard", sh(2024, 1, 1)).ref == "tmall-standard@2"


def test_the_engine_hands_out_the_rulebook_in_force_at_each_instant() -> None:
    """``Engine.rules_at`` remembers a rulebook per period between version changes; the
    period starts at the new version's ``effective_from`` itself."""
    from shouhou.bootstrap import Engine
    from shouhou.testing import MemoryUnitOfWork

    def edit(data: dict[str, Any]) -> None:
        data["version"] = 2
        data["effective_from"] = "2024-01-01T00:00:00+08:00"

    registry = Registry([_bundled("tmall-standard"), parse_pack(_edited("tmall-standard", edit))])
    engine = Engine(MemoryUnitOfWork, registry=registry, policies=["tmall-standard"])
    before, boundary = sh(2023, 12, 31, 23, 59), sh(2024, 1, 1)
    for _ in range(2):  # the second round comes from what the engine remembered
        assert engine.rules_at(before).ref == "tmall-standard@1"
        assert engine.rules_at(boundary).ref == "tmall-standard@2"
        assert engine.rules_at(boundary - timedelta(microseconds=1)).ref == "tmall-standard@1"
        assert engine.rules_at(None).ref == "tmall-standard@2"


def test_an_unknown_pack_name_is_refused() -> None:
    with pytest.raises(PolicyError, match="unknown pack 'nope'"):
        Registry.default().versions("nope")


def test_a_holiday_pack_can_not_be_the_base_of_a_rulebook() -> None:
    with pytest.raises(PolicyError, match="not a base pack"):
        Rulebook.select(Registry.default(), ["cny-2020"])


# --- holiday resolution ----------------------------------------------------------------------


def resolve(
    rules: Rulebook,
    name: str,
    *,
    start: tuple[str, datetime],
    marks: tuple[tuple[str, datetime], ...] = (),
    kind: CaseKind = CaseKind.RETURN_REFUND,
    shipping_method: ShippingMethod = ShippingMethod.EXPRESS,
    return_method: ShippingMethod | None = None,
) -> DeadlineRule:
    """The rule a case deadline gets; ``start`` is its starting event, last of the marks."""
    history = (*marks, start)
    return rules.deadline(
        DeadlineContext(
            name=name,
            start_event=start[0],
            start_at=start[1],
            kind=kind,
            shipping_method=shipping_method,
            return_method=return_method,
            marks=tuple(Mark(event=ev, at=at) for ev, at in history),
        )
    )


def test_a_case_applied_in_the_cny_2020_window_gives_the_seller_15_days(rules: Rulebook) -> None:
    rule = resolve(rules, "seller_respond", start=("applied", sh(2020, 1, 20, 12)))
    assert (rule.duration, rule.rule_id, rule.policy) == (
        15 * DAY,
        "cny-2020/respond",
        "cny-2020@1",
    )
    assert rule.on_expiry == "agree"
    assert rule.source == "seed Ⅷ 1a"


@pytest.mark.parametrize(
    ("applied", "duration", "rule_id"),
    [
        (sh(2020, 1, 16, 23, 59, 59), 5 * DAY, "tmall-standard/seller_respond"),
        (sh(2020, 1, 17, 0, 0, 0), 15 * DAY, "cny-2020/respond"),
        (sh(2020, 2, 2, 23, 59, 59), 15 * DAY, "cny-2020/respond"),
        (sh(2020, 2, 3, 0, 0, 0), 5 * DAY, "tmall-standard/seller_respond"),
        (datetime(2020, 2, 2, 15, 59, 59, tzinfo=UTC), 15 * DAY, "cny-2020/respond"),
        (datetime(2020, 2, 2, 16, 0, 0, tzinfo=UTC), 5 * DAY, "tmall-standard/seller_respond"),
    ],
)
def test_the_cny_2020_window_edges_are_read_in_shanghai_time(
    rules: Rulebook, applied: datetime, duration: timedelta, rule_id: str
) -> None:
    rule = resolve(rules, "seller_respond", start=("applied", applied))
    assert (rule.duration, rule.rule_id) == (duration, rule_id)


def test_a_refusal_in_the_cny_2020_window_gives_the_buyer_15_days(rules: Rulebook) -> None:
    rule = resolve(
        rules,
        "buyer_respond_after_refusal",
        marks=(("applied", sh(2020, 1, 10)),),
        start=("seller_refused", sh(2020, 1, 18)),
    )
    assert (rule.duration, rule.rule_id) == (15 * DAY, "cny-2020/respond")


def test_cny_2020_is_case_level_so_later_deadlines_of_the_case_are_extended_too(
    rules: Rulebook,
) -> None:
    rule = resolve(
        rules,
        "seller_respond",
        marks=(("applied", sh(2020, 1, 20)),),
        start=("modified", sh(2020, 2, 20)),
    )
    assert (rule.duration, rule.rule_id) == (15 * DAY, "cny-2020/respond")


def test_a_case_with_nothing_in_the_cny_2020_window_keeps_the_standard_times(
    rules: Rulebook,
) -> None:
    rule = resolve(
        rules,
        "seller_respond",
        marks=(("applied", sh(2020, 1, 10)), ("seller_agreed", sh(2020, 1, 20))),
        start=("modified", sh(2020, 2, 20)),
    )
    assert (rule.duration, rule.rule_id) == (5 * DAY, "tmall-standard/seller_respond")


def test_cny_2020_gives_the_seller_20_days_to_confirm_an_express_return(rules: Rulebook) -> None:
    rule = resolve(
        rules,
        "seller_confirm_receipt",
        marks=(("applied", sh(2020, 1, 20)), ("seller_agreed", sh(2020, 1, 21))),
        start=("return_shipped", sh(2020, 1, 22)),
        return_method=ShippingMethod.EXPRESS,
    )
    assert (rule.duration, rule.rule_id) == (20 * DAY, "cny-2020/receipt")


def test_cny_2020_leaves_surface_post_returns_at_their_standard_30_days(rules: Rulebook) -> None:
    rule = resolve(
        rules,
        "seller_confirm_receipt",
        marks=(("applied", sh(2020, 1, 20)), ("seller_agreed", sh(2020, 1, 21))),
        start=("return_shipped", sh(2020, 1, 22)),
        return_method=ShippingMethod.POST,
    )
    assert (rule.duration, rule.rule_id) == (30 * DAY, "tmall-standard/seller_confirm_receipt")


def test_an_agreement_in_the_cny_2020_window_gives_the_buyer_25_days_to_ship(
    rules: Rulebook,
) -> None:
    rule = resolve(
        rules,
        "buyer_ship_return",
        marks=(("applied", sh(2020, 1, 10)),),
        start=("seller_agreed", sh(2020, 1, 25)),
    )
    assert (rule.duration, rule.rule_id) == (25 * DAY, "cny-2020/return-ship")


def test_an_agreement_after_the_cny_2020_window_keeps_7_days_even_if_applied_inside(
    rules: Rulebook,
) -> None:
    rule = resolve(
        rules,
        "buyer_ship_return",
        marks=(("applied", sh(2020, 1, 30)),),
        start=("seller_agreed", sh(2020, 2, 3, 0, 0, 0)),
    )
    assert (rule.duration, rule.rule_id) == (7 * DAY, "tmall-standard/buyer_ship_return")


def test_virtual_goods_keep_7_days_to_ship_a_return_in_the_cny_2020_window(
    rules: Rulebook,
) -> None:
    rule = resolve(
        rules,
        "buyer_ship_return",
        marks=(("applied", sh(2020, 1, 20)),),
        start=("seller_agreed", sh(2020, 1, 25)),
        shipping_method=ShippingMethod.VIRTUAL,
    )
    assert (rule.duration, rule.rule_id) == (7 * DAY, "tmall-standard/buyer_ship_return")


@pytest.mark.parametrize(
    ("kind", "duration", "rule_id"),
    [
        (CaseKind.REFUND_ONLY, 20 * DAY, "cny-2020/reshipped-confirm"),
        (CaseKind.EXCHANGE, 30 * DAY, "cny-2020/exchange-confirm"),
        (CaseKind.REPAIR, 30 * DAY, "cny-2020/exchange-confirm"),
    ],
)
def test_cny_2020_extends_the_buyers_confirmation_by_kind(
    rules: Rulebook, kind: CaseKind, duration: timedelta, rule_id: str
) -> None:
    rule = resolve(
        rules,
        "buyer_confirm_received",
        marks=(("applied", sh(2020, 1, 20)),),
        start=("reshipped", sh(2020, 2, 10)),
        kind=kind,
    )
    assert (rule.duration, rule.rule_id) == (duration, rule_id)


@pytest.mark.parametrize(
    ("kind", "duration", "rule_id"),
    [
        (CaseKind.RETURN_REFUND, 15 * DAY, "cny-2022/review"),
        (CaseKind.EXCHANGE, 15 * DAY, "cny-2022/review"),
        (CaseKind.REFUND_ONLY, 5 * DAY, "tmall-standard/seller_respond"),
        (CaseKind.REPAIR, 5 * DAY, "tmall-standard/seller_respond"),
    ],
)
def test_cny_2022_extends_the_sellers_review_only_for_returns_and_exchanges(
    rules: Rulebook, kind: CaseKind, duration: timedelta, rule_id: str
) -> None:
    rule = resolve(rules, "seller_respond", start=("applied", sh(2022, 1, 30)), kind=kind)
    assert (rule.duration, rule.rule_id) == (duration, rule_id)


def test_cny_2022_gives_20_days_to_ship_back_and_20_to_confirm_receipt(rules: Rulebook) -> None:
    applied = (("applied", sh(2022, 2, 8, 23, 59, 59)),)
    ship = resolve(
        rules, "buyer_ship_return", marks=applied, start=("seller_agreed", sh(2022, 2, 20))
    )
    receipt = resolve(
        rules,
        "seller_confirm_receipt",
        marks=(*applied, ("seller_agreed", sh(2022, 2, 20))),
        start=("return_shipped", sh(2022, 2, 21)),
    )
    assert (ship.duration, ship.rule_id) == (20 * DAY, "cny-2022/ship-back")
    assert (receipt.duration, receipt.rule_id, receipt.on_expiry) == (
        20 * DAY,
        "cny-2022/receipt",
        "refund",
    )


@pytest.mark.parametrize(
    "method", [ShippingMethod.EXPRESS, ShippingMethod.EMS, ShippingMethod.POST]
)
def test_cny_2022_gives_20_days_to_confirm_receipt_for_every_return_method(
    rules: Rulebook, method: ShippingMethod
) -> None:
    # Seed Ⅸ 3 names no exception for surface post in 2022 (unlike 2020's 平郵不變).
    rule = resolve(
        rules,
        "seller_confirm_receipt",
        marks=(("applied", sh(2022, 1, 30)), ("seller_agreed", sh(2022, 1, 31))),
        start=("return_shipped", sh(2022, 2, 1)),
        return_method=method,
    )
    assert (rule.duration, rule.rule_id) == (20 * DAY, "cny-2022/receipt")


def test_cny_2022_does_not_apply_to_a_return_applied_after_its_window(rules: Rulebook) -> None:
    rule = resolve(rules, "seller_respond", start=("applied", sh(2022, 2, 9, 0, 0, 0)))
    assert (rule.duration, rule.rule_id) == (5 * DAY, "tmall-standard/seller_respond")


def test_a_rulebook_without_holiday_packs_ignores_the_holidays() -> None:
    plain = Rulebook.select(Registry.default(), ["tmall-standard"])
    rule = resolve(plain, "seller_respond", start=("applied", sh(2020, 1, 20)))
    assert (rule.duration, rule.rule_id) == (5 * DAY, "tmall-standard/seller_respond")


def test_every_rule_id_a_rulebook_produces_is_described_with_its_provenance(
    rules: Rulebook,
) -> None:
    info = rules.describe("cny-2020/return-ship")
    assert info.source == "seed Ⅷ 2"
    assert "25" in info.text_en
    assert rules.describe("tmall-standard/after_sale_window").source == "seed Ⅲ, Ⅵ"


# --- holidays through the case aggregate -----------------------------------------------------


def test_a_case_applied_in_the_cny_2020_window_is_scheduled_with_the_holiday_rule(
    desk_for: Any,
) -> None:
    desk = desk_for("delivered", at=sh(2020, 1, 18))
    case = desk.apply(sh(2020, 1, 20, 12), kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)
    assert case.deadline is not None
    assert (case.deadline.name, case.deadline.due_at, case.deadline.rule_id) == (
        "seller_respond",
        sh(2020, 2, 4, 12),
        "cny-2020/respond",
    )
    assert case.deadline.policy == "cny-2020@1"
    agreed = desk.act(c.Agree, sh(2020, 1, 25, 9))
    assert agreed.deadline is not None
    assert (agreed.deadline.due_at, agreed.deadline.rule_id) == (
        sh(2020, 2, 19, 9),
        "cny-2020/return-ship",
    )


def test_a_holiday_agreement_by_timeout_also_gets_25_days_to_ship(desk_for: Any) -> None:
    desk = desk_for("delivered", at=sh(2020, 1, 1))
    desk.apply(sh(2020, 1, 13), kind=CaseKind.RETURN_REFUND, reason=Reason.QUALITY)
    case = desk.timeout()  # seller_respond (5d) fires on 2020-01-18, inside the window
    assert case.deadline is not None
    assert (case.deadline.name, case.deadline.due_at, case.deadline.rule_id) == (
        "buyer_ship_return",
        sh(2020, 1, 18) + 25 * DAY,
        "cny-2020/return-ship",
    )


# --- where a pack is wrong, and which packs an engine runs on ----------------------------


def test_line_of_finds_keys_and_list_items_and_falls_back_to_the_parent() -> None:
    text = "name: x\ndeadlines:\n  a:\n    duration: 5d\nlist:\n  - one\n  - two\n"

    assert line_of(text, ("deadlines", "a", "duration")) == 4
    assert line_of(text, ("list", 1)) == 7
    assert line_of(text, ("deadlines", "a", "missing")) == 3
    assert line_of(text, ("nowhere",)) is None


def test_an_invalid_pack_names_its_file_and_the_line_of_the_fault() -> None:
    original = _bundled("tmall-standard").text
    text = original.replace("  seller_respond:\n", "  seller_respond:\n    colour: red\n")
    line = text.splitlines().index("    colour: red") + 1

    with pytest.raises(PolicyError) as raised:
        parse_pack(text, "mine.yaml")

    assert str(raised.value).startswith(f"mine.yaml:{line}: invalid base pack")
    assert f"deadlines.seller_respond.colour (line {line})" in str(raised.value)


def test_a_selection_takes_one_base_pack_and_the_holiday_packs_named_or_all() -> None:
    registry = Registry.default()

    assert registry.selection(["taobao"]) == ["taobao", "cny-2020", "cny-2022"]
    assert registry.selection(["cny-2022"]) == ["tmall-standard", "cny-2022"]
    with pytest.raises(PolicyError, match="one base pack"):
        registry.selection(["taobao", "tmall-standard"])
    with pytest.raises(PolicyError, match="unknown pack 'nosuch'"):
        registry.selection(["nosuch"])
