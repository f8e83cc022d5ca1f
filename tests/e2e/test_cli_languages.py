"""The command line in each language, and its tables at 80 columns: real processes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order
from shouhou.domain.values import SHANGHAI
from shouhou.hanzi import CHARACTERS
from shouhou.policy.loader import Registry
from shouhou.policy.schema import BasePack

T0 = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)
H = timedelta(hours=1)
#: Characters written only in Simplified Chinese: none may show in zh-Hant output.
SIMPLIFIED_ONLY = frozenset(CHARACTERS)


def shouhou(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shouhou", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **env},
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A shop with c1 awaiting the seller and c2 in platform intervention."""
    path = tmp_path_factory.mktemp("languages") / "shop.db"
    clock = VirtualClock(T0)
    engine = Engine.open(f"sqlite:///{path}", clock=clock)

    def act(action: str, actor: str, case: str, **params: Any) -> None:
        engine.execute(engine.build(action, actor=actor, target={"case_id": case}, params=params))

    try:
        for order in ("o1", "o2"):
            engine.place_order(
                Order(
                    id=order,
                    shop="s1",
                    buyer="b1",
                    total=9900,
                    created_at=T0 - 3 * H,
                    paid_at=T0 - 2 * H,
                )
            )
        clock.advance(H)
        act(
            "apply",
            "buyer:b1",
            "c1",
            order="o1",
            kind="refund_only",
            reason="no_reason",
            amount=9900,
        )
        act(
            "apply", "buyer:b1", "c2", order="o2", kind="refund_only", reason="quality", amount=5000
        )
        act("refuse", "seller:s1", "c2", reason="no fault found")
        act("request_intervention", "buyer:b1", "c2")
    finally:
        engine.close()
    yield str(path)


def _traditional_only(text: str) -> None:
    simplified = sorted(set(text) & SIMPLIFIED_ONLY)
    assert not simplified, f"simplified characters in zh-Hant output: {''.join(simplified)}"


def test_case_show_in_zh_hant_writes_traditional_characters(db: str) -> None:
    done = shouhou("case", "show", "c1", "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "售後單 c1" in out and "買家 b1" in out
    assert "僅退款 · 七天無理由 · 售中 · 等待賣家處理" in out
    assert "買家申請售後" in out and "時間線" in out
    assert "賣家需在" in out  # the explanation, converted from zh-Hans
    _traditional_only(out)


def test_case_show_in_zh_hans_and_en(db: str) -> None:
    hans = shouhou("case", "show", "c1", "--db", db, "--lang", "zh")
    assert hans.returncode == 0, hans.stderr
    assert "售后单 c1" in hans.stdout and "等待卖家处理" in hans.stdout
    en = shouhou("case", "show", "c1", "--db", db, "--lang", "EN")
    assert en.returncode == 0, en.stderr
    assert "case c1" in en.stdout and "awaiting_seller" in en.stdout and "Applied" in en.stdout
    assert not re.search(r"[\u4e00-\u9fff]", en.stdout.split("why")[0])


def test_case_replies_in_zh_hant_convert_the_zh_hans_replies(db: str) -> None:
    done = shouhou("case", "replies", "c1", "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    assert "等待賣家處理" in done.stdout and "聯繫買家" in done.stdout
    assert "親, 您好呀" in done.stdout
    _traditional_only(done.stdout)
    lines = shouhou("case", "replies", "c1", "--db", db, "--lang", "zh-hant", "--json").stdout
    assert lines and all('"lang": "zh-Hant"' in line for line in lines.splitlines())


def test_queue_interventions_in_zh_hant(db: str) -> None:
    done = shouhou("queue", "interventions", "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    assert "平台介入中的售後單" in done.stdout
    assert "c2" in done.stdout and "舉證" in done.stdout and "質量問題" in done.stdout
    assert "1 個售後單在平台介入中" in done.stdout
    _traditional_only(done.stdout)


def test_shop_metrics_in_zh_hant(db: str) -> None:
    at = (T0 + 2 * H).isoformat()
    done = shouhou("shop", "metrics", "s1", "--at", at, "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    assert "店鋪 s1" in done.stdout and "支付訂單 2 筆" in done.stdout
    assert "指標" in done.stdout and "退款糾紛率" in done.stdout
    _traditional_only(done.stdout)


def test_one_default_for_every_command_from_shouhou_lang_then_the_locale(db: str) -> None:
    for args in (("case", "show", "c1"), ("case", "explain", "c1"), ("queue", "interventions")):
        by_locale = shouhou(*args, "--db", db, LANG="zh_TW.UTF-8")
        assert by_locale.returncode == 0, by_locale.stderr
        _traditional_only(by_locale.stdout)
        assert "賣家" in by_locale.stdout or "售後" in by_locale.stdout
        by_setting = shouhou(*args, "--db", db, SHOUHOU_LANG="zh-Hans", LANG="zh_TW.UTF-8")
        assert "卖家" in by_setting.stdout or "售后" in by_setting.stdout
        plain = shouhou(*args, "--db", db)
        assert not re.search(r"[\u4e00-\u9fff]", plain.stdout.split("why")[0])


def test_the_global_lang_option_applies_and_a_command_option_overrides_it(db: str) -> None:
    glob = shouhou("--lang", "zh-Hant", "queue", "interventions", "--db", db)
    assert glob.returncode == 0, glob.stderr
    assert "售後單" in glob.stdout
    both = shouhou("--lang", "zh-Hant", "queue", "interventions", "--db", db, "--lang", "en")
    assert "1 case in intervention" in both.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("case", "show", "c1", "--lang", "fr"),
        ("--lang", "fr", "queue", "interventions"),
        ("shop", "metrics", "s1", "--lang", "fr"),
        ("policy", "show", "tmall-standard", "--lang", "fr"),
    ],
)
def test_an_unknown_language_exits_2_listing_the_choices(db: str, args: tuple[str, ...]) -> None:
    done = shouhou(*args, "--db", db) if args[0] != "policy" else shouhou(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "unknown language 'fr'" in done.stderr
    assert "en, zh-Hans, zh-Hant" in done.stderr


def test_an_unknown_shouhou_lang_exits_2_naming_the_variable(db: str) -> None:
    done = shouhou("case", "show", "c1", "--db", db, SHOUHOU_LANG="klingon")
    assert done.returncode == 2
    assert "SHOUHOU_LANG" in done.stderr and "en, zh-Hans, zh-Hant" in done.stderr
    assert "Traceback" not in done.stderr


# --- tables at 80 columns -------------------------------------------------------------------


def _fits(text: str, width: int = 80) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, wide[:3]
    for line in text.splitlines():  # a table cut at the screen's edge loses its right border
        if line[:1] in "┏┃┡│├└":
            assert line[-1] in "┓┃┩│┤┘", line


def test_keys_list_at_80_columns_shows_ids_that_keys_revoke_takes(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    created = []
    for principal in ("platform", "agent:agent-with-a-long-name", "seller:shop-0001", "buyer:b1"):
        done = shouhou("keys", "create", principal, "--name", "a key for the tests", "--db", db)
        assert done.returncode == 0, done.stderr
        created.append(done.stdout.split()[0])
    for lang in ("en", "zh-Hant"):
        listed = shouhou("keys", "list", "--db", db, "--lang", lang, COLUMNS="80")
        assert listed.returncode == 0, listed.stderr
        _fits(listed.stdout)
        shown = re.findall(r"key_[0-9a-f]+", listed.stdout)
        assert sorted(shown) == sorted(created)
    revoked = shouhou("keys", "revoke", shown[0], "--db", db, COLUMNS="80")
    assert revoked.returncode == 0, revoked.stderr


@pytest.mark.parametrize("lang", ["en", "zh-Hant"])
def test_policy_show_at_80_columns_shows_every_rule_id_whole_with_its_text(lang: str) -> None:
    done = shouhou("policy", "show", "tmall-standard", "--lang", lang, COLUMNS="80")
    assert done.returncode == 0, done.stderr
    _fits(done.stdout)
    pack = Registry.default().versions("tmall-standard")[-1].pack
    assert isinstance(pack, BasePack)
    for name in [*pack.deadlines, *pack.limits]:
        assert f"tmall-standard/{name}" in done.stdout
    said = "The seller must answer" if lang == "en" else "賣家需在5天內處理"
    assert said in done.stdout
