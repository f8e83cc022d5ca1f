"""Languages and message catalogs: what a person reads, in zh-Hans, zh-Hant or en.

The catalogs are Babel ``.po`` files under ``shouhou/locale/<lang>/LC_MESSAGES/shouhou.po``,
read and compiled in memory the first time a language is asked for, so a fresh clone needs no
build step. Code marks a string with ``_()`` (``_ = translator(lang).gettext``) or, where it is
written before the language is known, with :func:`N_`; the domain's words (statuses, kinds,
reasons, …, event names) are extracted from the enums themselves by :func:`extract_vocabulary`
and looked up with :meth:`Translator.term`. ``make messages`` re-extracts and updates the files.

    from shouhou.i18n import translator
    _ = translator("zh-Hant").gettext
"""

from __future__ import annotations

import ast
import gettext as _gettext
import io
import os
from collections.abc import Collection, Iterator, Mapping
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import IO, Any, Literal

from shouhou.errors import Invalid

Lang = Literal["en", "zh-Hans", "zh-Hant"]
#: Every language shouhou speaks, in the order a user is offered them.
LANGUAGES: tuple[Lang, ...] = ("en", "zh-Hans", "zh-Hant")
#: What a user may type for a language, lower-cased: the tags, ``zh`` for zh-Hans, ``_`` for ``-``.
LANGUAGE_NAMES: dict[str, Lang] = {
    "en": "en",
    "zh": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-hant": "zh-Hant",
}
#: The language when nothing chooses one.
FALLBACK: Lang = "en"
#: Environment variables naming a locale, in POSIX order of precedence (the first set one wins).
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
#: Regions and scripts of a ``zh`` locale or language tag that mean Traditional characters.
TRADITIONAL = frozenset({"hant", "tw", "hk", "mo"})
#: The message catalogs; the directory names are the languages with ``_`` for ``-``.
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "shouhou"
#: The message context of an event name (an enum value's context is its class name).
EVENT_CONTEXT = "event"
#: Where :func:`extract_vocabulary` finds the enums and the events.
VOCABULARY_BASES = {"StrEnum": None, "Event": EVENT_CONTEXT}


def N_(msgid: str) -> str:
    """Mark ``msgid`` for the catalog where it is written, to be translated where it is shown."""
    return msgid


def parse_lang(name: str) -> Lang:
    """The language a user means by ``name``: ``en``, ``zh``, ``zh-Hans``, ``zh-Hant``, any case."""
    found = LANGUAGE_NAMES.get(name.strip().lower().replace("_", "-"))
    if found is None:
        raise Invalid(
            f"unknown language {name!r}; choose one of: {', '.join(LANGUAGES)} (zh means zh-Hans)"
        )
    return found


def from_locale(value: str) -> Lang | None:
    """The language of a POSIX locale (``zh_TW.UTF-8``) or a language tag (``zh-Hant-HK``);
    None for a language shouhou does not speak (``C``, ``fr_FR``)."""
    name = value.split(".")[0].split("@")[0]
    parts = name.replace("-", "_").lower().split("_")
    if parts[0] == "en":
        return "en"
    if parts[0] != "zh":
        return None
    return "zh-Hant" if TRADITIONAL.intersection(parts[1:]) else "zh-Hans"


def default_lang(environ: Mapping[str, str] | None = None) -> Lang:
    """The language when none is asked for: ``$SHOUHOU_LANG``, else the locale, else en."""
    env = os.environ if environ is None else environ
    chosen = env.get("SHOUHOU_LANG", "").strip()
    if chosen:
        try:
            return parse_lang(chosen)
        except Invalid as exc:
            raise Invalid(f"SHOUHOU_LANG: {exc.message}") from None
    for variable in LOCALE_VARIABLES:
        value = env.get(variable, "").strip()
        if value:
            return from_locale(value) or FALLBACK
    return FALLBACK


def negotiate(accept_language: str | None, default: Lang = FALLBACK) -> Lang:
    """The language to answer an HTTP ``Accept-Language`` header in: the acceptable one with
    the highest ``q`` (the first on a tie); ``default`` when none is spoken here."""
    best: tuple[float, Lang] | None = None
    for item in (accept_language or "").split(","):
        tag, _sep, params = item.strip().partition(";")
        found = from_locale(tag.strip()) if tag.strip() not in ("", "*") else None
        if found is None:
            continue
        quality = _quality(params)
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, found)
    return best[1] if best else default


def _quality(params: str) -> float:
    """The ``q`` of an Accept-Language item's parameters (1 when absent, 0 when malformed)."""
    for param in params.split(";"):
        key, _sep, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


class Translator:
    """The messages of one language; a message missing from its catalog shows as written."""

    def __init__(self, lang: Lang, catalog: _gettext.NullTranslations) -> None:
        self.lang = lang
        self._catalog = catalog

    def gettext(self, message: str) -> str:
        """``message`` in this language."""
        return self._catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form of a message for a count ``n`` (format it with ``n`` yourself)."""
        return self._catalog.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        """``message`` in this language where ``context`` tells apart the same English word."""
        return self._catalog.pgettext(context, message)

    def term(self, value: StrEnum | str, context: str | None = None) -> str:
        """A domain word in this language: an enum value (its class is the context), or a
        value of ``context`` (``CaseStatus``, ``event``) given as text; unknown text as is."""
        if isinstance(value, StrEnum):
            return self.pgettext(context or type(value).__name__, value.value)
        return self.pgettext(context, value) if context else value

    def pick(self, zh: str, en: str) -> str:
        """Of a text written in zh-Hans and en, the one for this language (zh-Hant converted)."""
        if self.lang == "en":
            return en
        if self.lang == "zh-Hant":
            from shouhou.hanzi import traditional

            return traditional(zh)
        return zh


def catalog_path(lang: Lang) -> Path:
    """Where the ``.po`` catalog of ``lang`` lives."""
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translator(lang: str) -> Translator:
    """The translator of a language (any name :func:`parse_lang` takes); read once, then cached."""
    chosen = parse_lang(lang)
    return Translator(chosen, _compiled(catalog_path(chosen)))


def _compiled(path: Path) -> _gettext.GNUTranslations:
    """A ``.po`` file compiled in memory, fuzzy and empty translations left out."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as po:
        catalog = read_po(po, locale=path.parents[1].name, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def extract_vocabulary(
    fileobj: IO[bytes],
    keywords: Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Babel extractor for the domain's words: every value of a ``StrEnum`` (its class name is
    the context) and the name of every ``Event`` subclass (context ``event``)."""
    tree = ast.parse(fileobj.read())
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
        for base in bases & VOCABULARY_BASES.keys():
            context = VOCABULARY_BASES[base]
            if context is not None:
                yield node.lineno, "pgettext", (context, node.name), []
                continue
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and isinstance(item.value, ast.Constant)
                    and isinstance(item.value.value, str)
                ):
                    yield item.lineno, "pgettext", (node.name, item.value.value), []
