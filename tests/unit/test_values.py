"""Durations, money in fen and yuan, and percentages (shouhou.domain.values)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouhou.domain.values import (
    SHANGHAI,
    format_duration,
    format_yuan,
    parse_duration,
    parse_yuan,
    percent_of,
    require_aware,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("72h", timedelta(hours=72)),
        ("5d", timedelta(days=5)),
        ("1d12h", timedelta(hours=36)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_durations_are_read_as_written(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "5", "d", "5 days", "1.5h", "-5d", "12h1d", "5D", "5w", "1d 12h", "h12"],
)
def test_malformed_durations_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_a_duration_that_is_not_text_raises_value_error() -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=36), "1d12h"),
        (timedelta(days=15), "15d"),
    ],
)
def test_durations_are_written_in_their_shortest_spelling(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@settings(database=None)
@given(st.integers(min_value=0, max_value=10**8))
def test_a_written_duration_reads_back_as_the_same_duration(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [("199.00", 19900), ("0.01", 1), ("199", 19900), ("12.5", 1250), (" 3.20 ", 320)],
)
def test_yuan_strings_become_fen(yuan: str, fen: int) -> None:
    assert parse_yuan(yuan) == fen


@pytest.mark.parametrize("yuan", ["1.999", "0.001", "abc", "", "NaN", "Infinity"])
def test_bad_yuan_amounts_raise_value_error(yuan: str) -> None:
    with pytest.raises(ValueError, match="bad amount"):
        parse_yuan(yuan)


@pytest.mark.parametrize(
    ("fen", "yuan"), [(19900, "199.00"), (5, "0.05"), (0, "0.00"), (-150, "-1.50")]
)
def test_fen_are_written_as_yuan_with_two_decimals(fen: int, yuan: str) -> None:
    assert format_yuan(fen) == yuan


@settings(database=None)
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_fen_written_as_yuan_read_back_unchanged(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen


@pytest.mark.parametrize(
    ("fen", "rate", "expected"),
    [
        (10000, "0.3", 3000),
        (1001, "0.3", 300),  # 300.3 rounds down
        (1005, "0.3", 302),  # 301.5 rounds half up
        (5, "0.5", 3),  # 2.5 rounds half up, not to even
        (15, "0.05", 1),  # 0.75 rounds up
        (9, "0.05", 0),  # 0.45 rounds down
    ],
)
def test_a_percentage_of_an_amount_rounds_half_up_to_the_fen(
    fen: int, rate: str, expected: int
) -> None:
    assert percent_of(fen, Decimal(rate)) == expected


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        require_aware(datetime(2023, 3, 1, 10, 0))


def test_aware_times_pass_through() -> None:
    moment = datetime(2023, 3, 1, 10, 0, tzinfo=SHANGHAI)
    assert require_aware(moment) is moment


def test_evolve_gives_what_dataclasses_replace_gives_and_refuses_unknown_fields() -> None:
    from dataclasses import replace

    from shouhou.domain.model import Case, CaseKind, CaseStatus, Phase, Reason, evolve

    case = Case(
        id="c1",
        order_id="o1",
        shop="s1",
        buyer="b1",
        kind=CaseKind.REFUND_ONLY,
        phase=Phase.IN_SALE,
        reason=Reason.QUALITY,
        requested_amount=100,
        opened_at=datetime(2024, 3, 1),
    )
    changed = evolve(case, status=CaseStatus.REFUNDED, refund_amount=100)
    assert changed == replace(case, status=CaseStatus.REFUNDED, refund_amount=100)
    assert hash(changed) == hash(replace(case, status=CaseStatus.REFUNDED, refund_amount=100))
    assert case.status == CaseStatus.AWAITING_SELLER  # the original is untouched
    with pytest.raises(TypeError, match="no field colour"):
        evolve(case, colour="red")
    with pytest.raises(AttributeError):
        changed.status = CaseStatus.CLOSED  # type: ignore[misc]  # still frozen
