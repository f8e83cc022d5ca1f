"""Languages and message catalogs: choosing a language, and catalogs with no gap."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

import shouhou
from shouhou.domain.model import CaseStatus, OrderStatus, Reason
from shouhou.errors import Invalid
from shouhou.hanzi import traditional
from shouhou.i18n import (
    LANGUAGES,
    LOCALE_DIR,
    _compiled,
    catalog_path,
    default_lang,
    from_locale,
    negotiate,
    parse_lang,
    translator,
)

PACKAGE = Path(shouhou.__file__).resolve().parent
ROOT = PACKAGE.parents[1]
POT = LOCALE_DIR / "messages.pot"

Key = tuple[str | None, str]


def _read(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po)


def _key(message: object) -> Key:
    msgid = message.id  # type: ignore[attr-defined]
    return (message.context, msgid if isinstance(msgid, str) else msgid[0])  # type: ignore[attr-defined]


def _entries(catalog: Catalog) -> dict[Key, object]:
    return {_key(m): m for m in catalog if m.id}


# --- choosing a language -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lang"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("zh", "zh-Hans"),
        ("zh-Hans", "zh-Hans"),
        ("zh-hans", "zh-Hans"),
        ("ZH_HANT", "zh-Hant"),
        (" zh-Hant ", "zh-Hant"),
    ],
)
def test_a_language_is_named_by_its_tag_in_any_case_and_zh_means_simplified(
    name: str, lang: str
) -> None:
    assert parse_lang(name) == lang


@pytest.mark.parametrize("name", ["fr", "zh-TW", "", "english"])
def test_an_unknown_language_is_refused_with_the_choices(name: str) -> None:
    with pytest.raises(Invalid, match="choose one of: en, zh-Hans, zh-Hant"):
        parse_lang(name)


@pytest.mark.parametrize(
    ("locale", "lang"),
    [
        ("zh_CN.UTF-8", "zh-Hans"),
        ("zh_SG", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh_TW.UTF-8", "zh-Hant"),
        ("zh_HK.Big5HKSCS", "zh-Hant"),
        ("zh_MO", "zh-Hant"),
        ("zh_Hant_TW", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("en_GB.UTF-8", "en"),
        ("C.UTF-8", None),
        ("POSIX", None),
        ("fr_FR@euro", None),
    ],
)
def test_a_locale_names_its_language_and_script(locale: str, lang: str | None) -> None:
    assert from_locale(locale) == lang


def test_the_default_is_shouhou_lang_then_the_locale_then_english() -> None:
    assert default_lang({}) == "en"
    assert default_lang({"LANG": "zh_TW.UTF-8"}) == "zh-Hant"
    assert default_lang({"LANG": "zh_TW.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}) == "zh-Hans"
    assert default_lang({"LC_MESSAGES": "zh_CN.UTF-8", "LC_ALL": "zh_HK.UTF-8"}) == "zh-Hant"
    assert default_lang({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}) == "zh-Hans"
    # The first locale variable set decides, even for a language shouhou does not speak.
    assert default_lang({"LC_ALL": "fr_FR.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert default_lang({"SHOUHOU_LANG": "zh", "LC_ALL": "zh_TW.UTF-8"}) == "zh-Hans"


def test_an_unknown_shouhou_lang_is_refused_naming_the_variable() -> None:
    with pytest.raises(Invalid, match="SHOUHOU_LANG: unknown language 'fr'"):
        default_lang({"SHOUHOU_LANG": "fr"})


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-TW,zh;q=0.8,en;q=0.5", "zh-Hant"),
        ("zh-CN;q=0.2, zh-HK;q=0.9, en;q=0.5", "zh-Hant"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh;q=0.3", "zh-Hans"),
        ("zh-Hant;q=0, zh-Hans;q=0.1", "zh-Hans"),
        ("zh-TW;q=oops, zh-CN;q=0.5", "zh-Hans"),
        ("fr, de", "en"),
        ("*", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_accept_language_picks_the_best_language_spoken_here(header: str | None, lang: str) -> None:
    assert negotiate(header) == lang


def test_accept_language_falls_back_to_the_default_given() -> None:
    assert negotiate("fr", default="zh-Hant") == "zh-Hant"


# --- translating ----------------------------------------------------------------------------


def test_a_message_reads_in_each_language() -> None:
    assert translator("en").gettext("case {case}") == "case {case}"
    assert translator("zh").gettext("case {case}") == "售后单 {case}"
    assert translator("zh-Hant").gettext("case {case}") == "售後單 {case}"


def test_a_domain_word_is_told_apart_by_its_enum() -> None:
    hant = translator("zh-Hant")
    assert hant.term(CaseStatus.CLOSED) == "售後關閉"
    assert hant.term(OrderStatus.CLOSED) == "交易關閉"
    assert hant.term("closed", "CaseStatus") == "售後關閉"
    assert hant.term(Reason.REFUSED_DELIVERY) == "拒簽"
    assert hant.term("Applied", "event") == "買家申請售後"
    assert translator("en").term(CaseStatus.AWAITING_SELLER) == "awaiting_seller"
    assert hant.term("no-such-word", "CaseStatus") == "no-such-word"
    assert hant.term("plain") == "plain"


def test_plurals_follow_the_language() -> None:
    one, many = "{n} case in intervention", "{n} cases in intervention"
    assert translator("en").ngettext(one, many, 1) == one
    assert translator("en").ngettext(one, many, 2) == many
    assert translator("zh-Hans").ngettext(one, many, 1) == "{n} 个售后单在平台介入中"
    assert translator("zh-Hant").ngettext(one, many, 5) == "{n} 個售後單在平台介入中"


def test_a_message_missing_from_the_catalog_reads_as_written() -> None:
    assert translator("zh-Hant").gettext("never translated") == "never translated"


def test_texts_written_in_two_languages_give_zh_hant_by_conversion() -> None:
    assert translator("en").pick("卖家已同意", "the seller agreed") == "the seller agreed"
    assert translator("zh-Hans").pick("卖家已同意", "the seller agreed") == "卖家已同意"
    assert translator("zh-Hant").pick("卖家已同意", "the seller agreed") == "賣家已同意"


def test_a_fuzzy_or_empty_translation_is_not_used(tmp_path: Path) -> None:
    po = tmp_path / "zh_Hant" / "LC_MESSAGES" / "shouhou.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        '#, fuzzy\nmsgid "guessed"\nmsgstr "猜的"\n\n'
        'msgid "blank"\nmsgstr ""\n\n'
        'msgid "known"\nmsgstr "已知"\n',
        encoding="utf-8",
    )
    compiled = _compiled(po)
    assert compiled.gettext("guessed") == "guessed"
    assert compiled.gettext("blank") == "blank"
    assert compiled.gettext("known") == "已知"


# --- the catalogs ---------------------------------------------------------------------------


def test_every_message_is_translated_in_both_chinese_catalogs() -> None:
    template = _entries(_read(POT))
    assert len(template) > 100
    for lang in ("zh-Hans", "zh-Hant"):
        catalog = _entries(_read(catalog_path(lang)))
        missing = sorted(str(k) for k in template.keys() - catalog.keys())
        assert not missing, f"{lang} lacks {missing}"
        for key in template:
            message = catalog[key]
            strings = [message.string] if isinstance(message.string, str) else message.string  # type: ignore[attr-defined]
            assert all(strings), f"{lang}: {key} has no translation"
            assert not message.fuzzy, f"{lang}: {key} is fuzzy"  # type: ignore[attr-defined]


def test_every_catalog_holds_exactly_the_messages_of_the_template() -> None:
    template = set(_entries(_read(POT)))
    for lang in LANGUAGES:
        assert set(_entries(_read(catalog_path(lang)))) == template, lang


def test_a_translation_keeps_the_placeholders_of_its_message() -> None:
    fields = string.Formatter()
    for lang in LANGUAGES:
        for message in _read(catalog_path(lang)):
            if not message.id or not message.string:
                continue
            ids = [message.id] if isinstance(message.id, str) else list(message.id)
            strings = [message.string] if isinstance(message.string, str) else message.string
            wanted = {name for _, name, _, _ in fields.parse(ids[-1]) if name}
            for text in filter(None, strings):  # en may leave a message as written
                got = {name for _, name, _, _ in fields.parse(text) if name}
                assert got == wanted, f"{lang}: {message.id!r} → {text!r}"


def test_the_zh_hant_catalog_is_written_in_traditional_characters() -> None:
    for message in _read(catalog_path("zh-Hant")):
        if message.id:
            strings = [message.string] if isinstance(message.string, str) else message.string
            for text in strings:
                assert traditional(text) == text, f"{message.id!r}: {text!r}"


def test_the_template_holds_every_marked_string_and_domain_word_of_the_sources() -> None:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    extracted: set[Key] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        extracted.add((context, message if isinstance(message, str) else message[0]))
    template = set(_entries(_read(POT)))
    assert ("CaseStatus", "awaiting_seller") in extracted
    assert ("event", "Applied") in extracted
    assert (None, "why") in extracted
    assert not extracted - template, f"run `make messages`: {sorted(extracted - template)}"
    assert not template - extracted, f"run `make messages`: {sorted(template - extracted)}"


def test_no_message_is_marked_inside_an_f_string() -> None:
    """Babel does not see calls inside f-strings before Python 3.12, so they would never be
    extracted; a message is translated first and then put into the f-string."""
    marked = {"_", "N_", "gettext", "ngettext", "pgettext"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                for call in ast.walk(node):
                    if isinstance(call, ast.Call):
                        func = call.func
                        name = (
                            func.attr
                            if isinstance(func, ast.Attribute)
                            else getattr(func, "id", "")
                        )
                        if name in marked:
                            found.append(f"{path.relative_to(PACKAGE)}:{call.lineno}")
    assert not found


def test_the_catalogs_are_package_data() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    line = next(line for line in pyproject.splitlines() if line.startswith("shouhou = ["))
    assert '"locale/*/LC_MESSAGES/*.po"' in line and '"locale/messages.pot"' in line
    assert re.search(r'"Babel>=[\d.]+,<\d+"', pyproject)
