"""The seller's workbench from the command line: a shop with a few cases on a SQLite file,
then ``shouhou shop metrics``, ``shouhou shop report`` and ``shouhou case replies`` as real
processes reading it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Item, Order
from shouhou.domain.values import SHANGHAI, format_yuan
from shouhou.services.views import shop_view

T0 = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)
H = timedelta(hours=1)
D = timedelta(days=1)
#: When the report is read: every case but c5 has ended.
AT = T0 + 8 * D
MUG = Item(sku="MUG-1", title="Blue mug", unit_price=9900)
POT = Item(sku="POT-2", title="Teapot", unit_price=9900)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_DAYS = 14


@dataclass
class Shop:
    url: str
    tmp: Path
    metrics: dict[str, Any]


def _order(order_id: str, items: tuple[Item, ...], state: str) -> Order:
    times = {
        "paid": {"paid_at": T0 - H},
        "shipped": {"paid_at": T0 - 2 * D, "shipped_at": T0 - D},
        "delivered": {
            "paid_at": T0 - 3 * D,
            "shipped_at": T0 - 2 * D,
            "delivered_at": T0 - D,
        },
    }[state]
    # an order's total is what its lines cost (SPEC §1); without items, one line of 99.00
    total = sum(item.unit_price * item.quantity for item in items) or 9900
    return Order(
        id=order_id, shop="s1", buyer="b1", total=total, items=items, created_at=T0 - 4 * D, **times
    )


def _build(engine: Engine, clock: VirtualClock) -> None:
    def act(action: str, actor: str, case: str, **params: Any) -> None:
        engine.execute(engine.build(action, actor=actor, target={"case_id": case}, params=params))

    def complaint(action: str, actor: str, key: str, **params: Any) -> None:
        target = {"complaint_id": key}
        engine.execute(engine.build(action, actor=actor, target=target, params=params))

    for order in (
        _order("o1", (MUG,), "paid"),
        _order("o2", (POT,), "delivered"),
        _order("o3", (), "shipped"),  # no items: its cases are about an "unknown" product
        _order("o4", (MUG, POT), "delivered"),
        _order("o5", (MUG,), "shipped"),
        _order("o6", (POT,), "paid"),
        _order("o7", (POT,), "delivered"),
    ):
        engine.place_order(order)
    clock.advance(H)
    for case, order, kind, reason in (
        ("c1", "o1", "refund_only", "no_reason"),
        ("c2", "o2", "return_refund", "damaged"),
        ("c3", "o3", "refund_only", "not_received"),
        ("c4", "o4", "refund_only", "quality"),
        ("c6", "o6", "refund_only", "out_of_stock"),
        ("c7", "o7", "refund_only", "not_as_described"),
    ):
        act("apply", "buyer:b1", case, order=order, kind=kind, reason=reason, amount=9900)
    act("note", "seller:s1", "c1", step="contacted", text="asked why; changed their mind")
    act("note", "seller:s1", "c2", step="contacted", text="called the buyer")
    act("note", "seller:s1", "c2", step="verified", text="photos show a crushed box")
    act("note", "seller:s1", "c2", step="apologised", text="apologised for the damage")
    complaint(
        "file_complaint",
        "buyer:b1",
        "k1",
        order="o7",
        type="not_as_described",
        subtype="affects_use",
        case="c7",
    )
    clock.advance(2 * H)
    act("agree", "seller:s1", "c1")
    act("agree", "seller:s1", "c6")  # out of stock: the buyer is compensated (SPEC §7)
    act("agree", "seller:s1", "c7")
    act("refuse", "seller:s1", "c4", reason="no fault found")
    act("propose_remedy", "seller:s1", "c2", type="partial_refund", amount=3000)
    act("note", "seller:s1", "c2", step="remedy", text="offered 30 yuan back to keep it")
    clock.advance(H)
    act("accept_remedy", "buyer:b1", "c2")
    act("request_intervention", "buyer:b1", "c4")
    complaint("rule_complaint", "agent:a1", "k1", decision="upheld", reason="colour differs")
    clock.advance(6 * D)
    engine.run_due(clock.now())  # c3: the seller stayed silent; c4 reaches review
    act("rule", "agent:a1", "c4", outcome="refund", liable="seller", reason="cracked on arrival")
    clock.advance(H)
    for case, category, cause in (
        ("c1", "changed mind", "buyer_preference"),
        ("c2", "crushed box", "logistics"),
        ("c4", "cracked glaze", "product_quality"),
        ("c6", "stock count wrong", "service"),
        ("c7", "colour differs", "description"),
    ):
        act("classify", "seller:s1", case, category=category, cause=cause)
    act("note", "seller:s1", "c3", step="follow_up", text="refund done by timeout")
    clock.set(AT - D)
    act("apply", "buyer:b1", "c5", order="o5", kind="refund_only", reason="not_received", amount=99)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("shop")
    url = f"sqlite:///{tmp / 'shop.db'}"
    clock = VirtualClock(T0)
    engine = Engine.open(url, clock=clock)
    try:
        _build(engine, clock)
        clock.set(AT)
        metrics = shop_view("s1", engine.shop_metrics("s1", AT), money=format_yuan)
    finally:
        engine.close()
    yield Shop(url=url, tmp=tmp, metrics=metrics)


def shouhou(shop: Shop, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COLUMNS": "200",
        "SHOUHOU_LANG": "en",  # whatever the locale of the machine running the tests
        "SHOUHOU_ATTACHMENTS_DIR": str(shop.tmp / "files"),
    }
    return subprocess.run(
        [sys.executable, "-m", "shouhou", *args, "--db", shop.url],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=shop.tmp,
    )


def test_shop_metrics_prints_the_spec_metrics_as_json(shop: Shop) -> None:
    done = shouhou(shop, "shop", "metrics", "s1", "--at", AT.isoformat(), "--json")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert metrics == shop.metrics
    assert metrics["paid_orders"] == 7
    assert metrics["refunds"] == 6  # c1, c2, c3 (timeout), c4 (ruling), c6, c7
    assert metrics["disputes"] == 1  # c4: an agent ruled the seller liable
    assert metrics["dispute_rate"] == pytest.approx(1 / 7, abs=1e-6)
    assert metrics["refund_rate"] == pytest.approx(6 / 7, abs=1e-6)
    assert metrics["self_completion_rate"] == pytest.approx(4 / 6, abs=1e-6)
    assert metrics["penalty_points"] == 6  # not as described, affects use
    assert metrics["compensation_paid"] == "29.70"  # 30% of 99.00 for c6
    assert set(metrics["avg_completion_hours"]) == {"refund_only", "return_refund"}
    for name in ("dispute_rate", "self_completion_rate", "within_72h_rate", "refund_rate"):
        assert 0 <= metrics[name] <= 1


def test_shop_metrics_reads_a_time_without_offset_as_beijing_time(shop: Shop) -> None:
    naive = AT.replace(tzinfo=None).isoformat()
    done = shouhou(shop, "shop", "metrics", "s1", "--at", naive)
    assert done.returncode == 0, done.stderr
    assert "dispute_rate" in done.stdout and "0.1429" in done.stdout
    assert "7 paid orders, 6 refunds, 1 disputes" in done.stdout
    bad = shouhou(shop, "shop", "metrics", "s1", "--at", "yesterday")
    assert bad.returncode == 2
    assert "ISO 8601" in bad.stderr


def test_shop_report_summarises_by_product_and_cause_and_draws_the_chart(shop: Shop) -> None:
    out = shop.tmp / "report"
    done = shouhou(
        shop,
        "shop",
        "report",
        "s1",
        "--at",
        AT.isoformat(),
        "--days",
        str(REPORT_DAYS),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "classified cases by product and cause (5)" in text
    assert "MUG-1" in text and "POT-2" in text and "Teapot" in text
    assert "ended cases waiting for a classification (1)" in text
    waiting = next(line for line in text.splitlines() if " c3 " in line)
    assert "not_received" in waiting and "unknown" in waiting
    report = json.loads((out / "shop-s1-report.json").read_text(encoding="utf-8"))
    assert report["metrics"] == shop.metrics
    assert report["classified"] == 5
    assert report["by_cause"] == {
        "product_quality": 1,
        "description": 1,
        "logistics": 1,
        "service": 1,
        "buyer_preference": 1,
    }
    lines = {line["sku"]: line for line in report["by_product"]}
    assert lines["POT-2"]["cases"] == 3  # c2, c6, c7
    assert lines["POT-2"]["causes"] == {"description": 1, "logistics": 1, "service": 1}
    assert lines["MUG-1"]["causes"] == {"product_quality": 1, "buyer_preference": 1}
    assert [(u["case"], u["sku"]) for u in report["unclassified"]] == [("c3", "unknown")]
    series = report["series"]
    assert len(series) == REPORT_DAYS
    assert series[-1]["until"] == AT.isoformat()
    assert series[-1]["dispute_rate"] == shop.metrics["dispute_rate"]
    assert series[0]["refund_rate"] == 0.0  # two weeks back nothing had happened yet
    png = (out / "shop-s1-metrics.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    root = ET.parse(out / "shop-s1-metrics.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "wrote" in text and str(out / "shop-s1-metrics.svg") in text


def test_case_replies_suggests_persuading_the_buyer_to_wait_for_a_parcel_in_transit(
    shop: Shop,
) -> None:
    done = shouhou(shop, "case", "replies", "c5", "--json", "--lang", "zh")
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    names = [r["situation"] for r in replies]
    assert names[0] == "ask_reason" and "in_transit_wait" in names
    assert all(r["lang"] == "zh-Hans" and "亲" in r["text"] for r in replies)
    english = shouhou(shop, "case", "replies", "c5", "--lang", "en")
    assert english.returncode == 0, english.stderr
    assert "awaiting_seller · order shipped" in english.stdout
    assert "your parcel is on its way" in english.stdout


def test_case_replies_marks_steps_already_logged_and_refuses_unknown_input(shop: Shop) -> None:
    done = shouhou(shop, "case", "replies", "c3", "--json")
    assert done.returncode == 0, done.stderr
    [reply] = [json.loads(line) for line in done.stdout.splitlines()]
    assert reply["situation"] == "follow_up_refunded" and reply["noted"] is True
    assert "¥99.00" in reply["text"]
    assert shouhou(shop, "case", "replies", "c3", "--lang", "fr").returncode == 2
    missing = shouhou(shop, "case", "replies", "nope")
    assert missing.returncode == 1 and "no case nope" in missing.stderr
