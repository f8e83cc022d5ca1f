"""Suggested replies (SPEC §8): the bundled book, and what the picker offers for a case."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from shouhou.domain.model import (
    Case,
    CaseKind,
    CaseStatus,
    Note,
    NoteStep,
    OrderStatus,
    Phase,
    Reason,
)
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Invalid, PolicyError
from shouhou.policy.replies import (
    LANGUAGES,
    STEPS,
    Lang,
    Reply,
    bundled_replies,
    language,
    parse_replies,
    pick,
)

T0 = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)
#: The warm particles of the second seed Ⅳ; every Chinese reply uses at least one.
WARM = ("亲", "哦", "呢")


def case(
    reason: Reason = Reason.OTHER,
    status: CaseStatus = CaseStatus.AWAITING_SELLER,
    kind: CaseKind = CaseKind.REFUND_ONLY,
    **extra: Any,
) -> Case:
    made = Case(
        id="c1",
        order_id="o1",
        shop="s1",
        buyer="b1",
        kind=kind,
        phase=Phase.IN_SALE,
        reason=reason,
        status=status,
        requested_amount=9900,
        opened_at=T0,
    )
    return replace(made, **extra)


def situations(found: list[Reply]) -> list[str]:
    return [reply.situation for reply in found]


def test_every_situation_speaks_both_languages_and_chinese_replies_are_warm() -> None:
    book = bundled_replies()
    assert len(book.situations) >= 10
    for name, situation in book.situations.items():
        assert set(situation.text) == set(LANGUAGES), name
        assert any(word in situation.text["zh-Hans"] for word in WARM), name
        assert "亲" not in situation.text["en"], name


def test_the_book_covers_every_step_of_the_service_log() -> None:
    steps = {situation.step for situation in bundled_replies().situations.values()}
    assert steps == set(STEPS)


def test_a_new_request_starts_by_asking_the_reason() -> None:
    found = pick(case(Reason.QUALITY))
    assert found[0].situation == "ask_reason"
    assert found[0].step == NoteStep.CONTACTED
    assert "什么问题" in found[0].text


def test_a_parcel_in_transit_gets_a_reply_persuading_the_buyer_to_wait() -> None:
    found = pick(case(Reason.NOT_RECEIVED), order_status=OrderStatus.SHIPPED, lang="en")
    assert "in_transit_wait" in situations(found)
    assert "delivered_check" not in situations(found)
    wait = next(r for r in found if r.situation == "in_transit_wait")
    assert wait.step == NoteStep.VERIFIED
    assert "on its way" in wait.text and "courier" in wait.text
    zh = pick(case(Reason.NOT_RECEIVED), order_status=OrderStatus.SHIPPED)
    text = next(r for r in zh if r.situation == "in_transit_wait").text
    assert "在路上" in text and "等一等" in text and "拦截" in text


def test_a_delivered_parcel_asks_the_buyer_to_look_for_it_instead() -> None:
    found = situations(pick(case(Reason.NOT_RECEIVED), order_status=OrderStatus.DELIVERED))
    assert "delivered_check" in found
    assert "in_transit_wait" not in found


def test_an_unshipped_order_asks_whether_the_buyer_still_wants_it() -> None:
    found = situations(pick(case(Reason.OTHER), order_status=OrderStatus.PAID))
    assert found[:2] == ["ask_reason", "ask_reason_unshipped"]


def test_a_conditioned_situation_is_not_offered_when_the_order_is_unknown() -> None:
    found = situations(pick(case(Reason.NOT_RECEIVED), order_status=None))
    assert "in_transit_wait" not in found and "delivered_check" not in found


@pytest.mark.parametrize(
    ("reason", "apology"),
    [
        (Reason.WRONG_ITEM, "apology_wrong_item"),
        (Reason.MISSING_ITEM, "apology_missing_item"),
        (Reason.DAMAGED, "apology_damaged"),
    ],
)
def test_a_seller_fault_gets_photos_an_apology_and_remedies_in_step_order(
    reason: Reason, apology: str
) -> None:
    found = pick(case(reason))
    names = situations(found)
    assert "ask_photos" in names and apology in names
    assert {"remedy_reship", "remedy_coupon"} <= set(names)
    steps = [STEPS.index(reply.step) for reply in found]
    assert steps == sorted(steps)
    assert "抱歉" in next(r.text for r in found if r.situation == apology)


def test_a_damaged_item_may_be_kept_for_a_partial_refund() -> None:
    found = pick(case(Reason.DAMAGED), lang="en")
    offer = next(r for r in found if r.situation == "remedy_partial_refund")
    assert offer.step == NoteStep.REMEDY and "keep" in offer.text


def test_a_no_reason_return_states_the_second_sale_conditions_and_no_apology() -> None:
    expected: dict[Lang, tuple[str, ...]] = {
        "zh-Hans": ("吊牌", "清洗", "使用"),
        "en": ("tags", "washed", "used"),
    }
    for lang, words in expected.items():
        found = pick(case(Reason.NO_REASON), lang=lang)
        names = situations(found)
        assert "no_reason_conditions" in names
        assert not [n for n in names if n.startswith(("apology", "remedy"))]
        text = next(r.text for r in found if r.situation == "no_reason_conditions")
        assert all(word in text for word in words), text


def test_the_return_conditions_are_repeated_while_the_buyer_has_to_send_it_back() -> None:
    found = situations(pick(case(Reason.NO_REASON, CaseStatus.AWAITING_BUYER_RETURN)))
    assert found == ["no_reason_conditions", "follow_up_return"]


@pytest.mark.parametrize("status", list(CaseStatus))
def test_every_status_has_a_follow_up(status: CaseStatus) -> None:
    found = pick(case(Reason.QUALITY, status))
    assert any(reply.step == NoteStep.FOLLOW_UP for reply in found)


def test_an_ended_case_gets_only_its_closing_follow_up_with_the_amount() -> None:
    done = case(Reason.DAMAGED, CaseStatus.REFUNDED, refund_amount=5000)
    [reply] = pick(done)
    assert reply.situation == "follow_up_refunded"
    assert "¥50.00" in reply.text


def test_replies_whose_step_is_already_in_the_service_log_are_marked() -> None:
    note = Note(step=NoteStep.CONTACTED, text="called", author="seller:s1", at=T0)
    found = pick(case(Reason.QUALITY, notes=(note,)))
    assert {r.situation: r.noted for r in found}["ask_reason"] is True
    assert not any(r.noted for r in found if r.step != NoteStep.CONTACTED)


@pytest.mark.parametrize(
    ("name", "lang"), [("zh", "zh-Hans"), ("ZH-Hans", "zh-Hans"), ("en", "en")]
)
def test_a_language_is_named_the_short_or_the_long_way(name: str, lang: str) -> None:
    assert language(name) == lang


def test_an_unknown_language_is_invalid() -> None:
    with pytest.raises(Invalid, match="unknown language 'fr'"):
        language("fr")


BOOK = """
version: 1
situations:
  hello:
    step: contacted
    source: test
    text: {zh-Hans: "亲, 您好", en: "Hello"}
"""


def test_a_minimal_book_parses_and_fits_every_case() -> None:
    book = parse_replies(BOOK)
    assert [r.text for r in pick(case(), lang="en", book=book)] == ["Hello"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('en: "Hello"', 'en: "Hello", fr: "Bonjour"'), "situations.hello.text.fr"),
        ((', en: "Hello"', ""), "needs a en text"),
        (('"Hello"', '"Hello {buyer_name}"'), "unknown placeholder"),
        (("source: test", "source: test\n    colour: red"), "situations.hello.colour"),
        (("step: contacted", "step: gossip"), "situations.hello.step"),
    ],
    ids=["unknown language", "missing language", "unknown placeholder", "unknown key", "bad step"],
)
def test_a_bad_book_is_refused_saying_where(change: tuple[str, str], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_replies(BOOK.replace(*change), "book.yaml")
