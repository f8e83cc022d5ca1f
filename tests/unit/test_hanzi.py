"""zh-Hant from zh-Hans: every character shouhou writes in Chinese has been looked at."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from babel.messages.pofile import read_po

import shouhou
from shouhou.hanzi import CHARACTERS, UNCHANGED, WORDS, traditional
from shouhou.i18n import catalog_path

PACKAGE = Path(shouhou.__file__).resolve().parent
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
#: The modules whose string constants hold zh-Hans text shown to people.
ZH_MODULES = ("services/explanation.py", "domain/values.py", "policy/rulebook.py")


def _zh_values(data: Any) -> Iterator[str]:
    """The ``zh`` / ``zh-Hans`` texts of a pack or of the replies."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("zh", "zh-Hans") and isinstance(value, str):
                yield value
            else:
                yield from _zh_values(value)
    elif isinstance(data, list):
        for value in data:
            yield from _zh_values(value)


def _zh_texts() -> Iterator[str]:
    for path in [
        *sorted((PACKAGE / "policy/packs").glob("*.yaml")),
        PACKAGE / "policy/replies.yaml",
    ]:
        yield from _zh_values(yaml.safe_load(path.read_text(encoding="utf-8")))
    for name in ZH_MODULES:
        for node in ast.walk(ast.parse((PACKAGE / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield node.value
    with catalog_path("zh-Hans").open("rb") as po:
        for message in read_po(po):
            if message.id:
                yield from [message.string] if isinstance(message.string, str) else message.string


def test_every_chinese_character_of_the_zh_hans_texts_is_converted_or_known_unchanged() -> None:
    used = {ch for text in _zh_texts() for ch in HAN.findall(text)}
    assert len(used) > 300
    unknown = sorted(used - CHARACTERS.keys() - UNCHANGED)
    assert not unknown, f"add to hanzi.CHARACTERS or hanzi.UNCHANGED: {''.join(unknown)}"


def test_the_table_is_consistent() -> None:
    assert not CHARACTERS.keys() & UNCHANGED
    assert not set(CHARACTERS.values()) & CHARACTERS.keys(), "converting twice changes nothing"
    assert all(len(k) == 1 and len(v) == 1 and k != v for k, v in CHARACTERS.items())
    for simplified, traditional_form in WORDS.items():
        assert len(simplified) == len(traditional_form)


@pytest.mark.parametrize(
    ("zh_hans", "zh_hant"),
    [
        ("售后", "售後"),
        ("卖家", "賣家"),
        ("买家", "買家"),
        ("处理", "處理"),
        ("确认收货", "確認收貨"),
        ("退货退款", "退貨退款"),
        ("天猫", "天貓"),
        ("聚划算", "聚劃算"),
        ("平台客服介入", "平台客服介入"),
        ("质量问题", "質量問題"),
        ("请联系我们", "請聯繫我們"),
        ("系统自动退款", "系統自動退款"),
        ("没关系", "沒關係"),
        ("回复买家", "回覆買家"),
        ("恢复自动确认收货", "恢復自動確認收貨"),
        ("并注明理由", "並註明理由"),
        ("以系统记录时间为准", "以系統記錄時間為準"),
        ("详情里", "詳情裡"),
        (
            "卖家需在 2023-03-06 10:00:00 前处理 (5天, 规则 tmall-standard/seller_respond)",
            "賣家需在 2023-03-06 10:00:00 前處理 (5天, 規則 tmall-standard/seller_respond)",
        ),
    ],
)
def test_words_read_as_the_seed_and_taiwan_write_them(zh_hans: str, zh_hant: str) -> None:
    assert traditional(zh_hans) == zh_hant


def test_what_is_not_chinese_is_left_alone() -> None:
    text = "case c1: ¥199.00, rule tmall-standard/seller_respond → refund"
    assert traditional(text) == text
