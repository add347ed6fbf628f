"""The page's languages: gettext catalogs managed with Babel, and numbers formatted for each language.

English source strings are the msgids; each other language has `locale/<lang>/LC_MESSAGES/messages.po`
(committed), compiled in memory on first use (no .mo file in git). vg_core never imports streamlit and never
translates: it marks strings and the page translates them at the edge, as Python's gettext documents for
deferred translation:

- a fixed text is marked with `N_("...")` (returns it unchanged; the extractor finds it) and the page shows
  `translator(lang).gettext(text)`;
- a sentence with numbers is a `Message`, built with `message("... {ratio:.2g} ...", ratio=r)` or
  `plural_message(singular, plural, n, ...)`: a msgid and raw values, never a finished English sentence.
  `Translator.render` translates the msgid and fills in the values, formatted for the language
  (a format spec as in Python's str.format: `{x:,.0f}`, `{x:.1%}`, `{x:.2g}`, `{x:.1e}`, `{n:d}`).

Maintainers: `python -m vg_core.i18n update` extracts every marked string (babel.cfg says from which files)
and merges it into each catalog; translate the new entries in the .po files (a text editor or Poedit), and
`python -m pytest tests/test_i18n.py` fails while any message lacks a translation.
"""

from __future__ import annotations

import decimal
import functools
import io
import math
import numbers
import re
import string
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel import numbers as babel_numbers
from babel.messages import mofile, pofile
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "id")  # English (the msgids) first: the default
DEFAULT_LANGUAGE = LANGUAGES[0]
LANGUAGE_NAMES = {"en": "English", "id": "Bahasa Indonesia"}  # each in its own language, for the picker
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).parent / "locale"
REPO = Path(__file__).resolve().parents[1]
MAPPING_FILE = REPO / "babel.cfg"  # which source files the extractor reads
# The calls whose string arguments are msgids: gettext's usual names plus this module's two constructors.
KEYWORDS = {**DEFAULT_KEYWORDS, "message": None, "plural_message": (1, 2)}


def N_(text: str) -> str:
    """Mark `text` for translation without translating it (it is translated where it is shown)."""
    return text


@dataclass(frozen=True)
class Message:
    """A text still to translate: a msgid (a str.format template in English) and the raw values it shows."""

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)
    plural: str = ""  # the English plural template, chosen by ngettext with `n` ("" for none)
    n: int = 1


def message(msgid: str, **params: Any) -> Message:
    """A sentence with values, e.g. message("Final test accuracy {acc:.1%}.", acc=0.873)."""
    return Message(msgid, params)


def plural_message(singular: str, plural: str, n: int, **params: Any) -> Message:
    """A sentence whose wording depends on the count `n` (also available to the template as {n})."""
    return Message(singular, {"n": n, **params}, plural, n)


# ---------------------------------------------------------------- numbers for a language

_SPEC = re.compile(r"(?P<group>,)?(?:\.(?P<digits>\d+))?(?P<kind>[dfeg%]?)")


def format_number(value: float, spec: str, lang: str) -> str:
    """`value` as str.format's `spec` would write it in English, with the language's separators and signs.

    Supported specs: "" (like g), d, .Nf, .N%, .Ne, .Ng, each with an optional "," for digit grouping.
    Rounding is Python's (half to even on the float's exact value), so English output equals str.format's
    except for exponents (1.2E-7 rather than 1.2e-07).
    """
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ValueError(f"format spec {spec!r} is not one of d, .Nf, .N%, .Ne, .Ng (optionally with ',')")
    locale = Locale.parse(lang)
    group = bool(match["group"])
    kind = match["kind"] or ("d" if isinstance(value, numbers.Integral) else "g")
    digits = int(match["digits"]) if match["digits"] is not None else (0 if kind == "d" else 6)
    if isinstance(value, numbers.Integral) and kind == "d":
        return babel_numbers.format_decimal(int(value), _pattern(group, ""), locale, group_separator=group)
    value = float(value)
    if not math.isfinite(value):
        return babel_numbers.format_decimal(value, "0", locale)
    with decimal.localcontext() as context:
        context.prec = 1000  # exact: a float's decimal expansion has at most ~770 significant digits
        if kind == "g":
            significant = max(digits, 1)
            value = float(f"{value:.{significant}g}")  # Python's rounding to significant digits
            exponent = math.floor(math.log10(abs(value))) if value else 0
            if not -4 <= exponent < significant:
                return babel_numbers.format_scientific(value, "0." + "#" * (significant - 1) + "E0", locale)
            pattern = _pattern(group, "#" * max(significant - 1 - exponent, 0))
            return babel_numbers.format_decimal(Decimal(value), pattern, locale, group_separator=group)
        if kind == "e":
            return babel_numbers.format_scientific(value, "0." + "0" * digits + "E0" if digits else "0E0", locale)
        if kind == "%":
            # Python multiplies the float by 100 before rounding; babel multiplies again, exactly
            number = Decimal(value * 100).scaleb(-2)
            locale_pattern = locale.percent_formats[None].pattern  # where the sign goes, and any space before it
            pattern = re.sub(r"[#,0.]+", _pattern(group, "0" * digits), locale_pattern, count=1)
            return babel_numbers.format_percent(number, pattern, locale, group_separator=group)
        fraction = "0" * digits if kind == "f" else ""
        return babel_numbers.format_decimal(Decimal(value), _pattern(group, fraction), locale, group_separator=group)


def _pattern(group: bool, fraction: str) -> str:
    return ("#,##0" if group else "0") + (f".{fraction}" if fraction else "")


class _Formatter(string.Formatter):
    """str.format whose numbers are written for the language and whose Message values are rendered."""

    def __init__(self, translator: Translator) -> None:
        self.translator = translator

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Message):
            return format(self.translator.render(value), format_spec)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return format_number(value, format_spec, self.translator.lang)
        return super().format_field(value, format_spec)


# ---------------------------------------------------------------- translators


@dataclass(frozen=True)
class Translator:
    """One language: gettext/ngettext from its catalog, and Messages rendered with its number format."""

    lang: str
    catalog: NullTranslations

    def gettext(self, text: str) -> str:
        return self.catalog.gettext(text)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.catalog.ngettext(singular, plural, n)

    def render(self, item: Message | str) -> str:
        """A Message translated and filled in; a plain string just translated."""
        if isinstance(item, str):
            return self.gettext(item)
        template = self.ngettext(item.msgid, item.plural, item.n) if item.plural else self.gettext(item.msgid)
        return _Formatter(self).vformat(template, (), dict(item.params))

    def number(self, value: float, spec: str = "") -> str:
        return format_number(value, spec, self.lang)


def language(value: Any) -> str:
    """The language a `?lang=` value asks for, or the default for anything else (the page warns)."""
    text = str(value).strip().lower()
    return text if text in LANGUAGES else DEFAULT_LANGUAGE


@functools.cache
def translator(lang: str) -> Translator:
    """The translator of a language in LANGUAGES (its catalog compiled once per process)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
    if lang == DEFAULT_LANGUAGE:
        return Translator(lang, NullTranslations())
    compiled = io.BytesIO()
    mofile.write_mo(compiled, read_catalog(lang))  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Translator(lang, Translations(compiled, DOMAIN))


ENGLISH = translator(DEFAULT_LANGUAGE)  # the default of every function that writes a text: the CLI's language


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(lang: str) -> Catalog:
    with catalog_path(lang).open("rb") as file:
        return pofile.read_po(file, locale=lang, domain=DOMAIN)


# ---------------------------------------------------------------- extraction (maintainers and tests)


def extracted(root: Path = REPO) -> Catalog:
    """Every marked string in the sources babel.cfg names, as a template catalog (msgid -> where)."""
    with MAPPING_FILE.open() as file:
        method_map, options_map = parse_mapping_cfg(file, str(MAPPING_FILE))
    template = Catalog(domain=DOMAIN, project="Vanishing Gradient Explorer", charset="utf-8")
    found: Iterator = extract_from_dir(str(root), method_map, options_map, keywords=KEYWORDS)
    for filename, lineno, msgid, comments, context in found:
        template.add(msgid, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def placeholders(text: str) -> set[str]:
    """The fields a template fills in: '{name:spec}' and '%(name)s' forms, as written."""
    fields = {f"{{{name}{':' + spec if spec else ''}}}" for _, name, spec, _ in string.Formatter().parse(text) if name}
    return fields | set(re.findall(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]", text))


def update_catalogs() -> None:
    """Merge the extracted strings into each language's catalog: new ones untranslated, changed ones fuzzy,
    vanished ones kept as obsolete (#~), and an obsolete one that is marked again revived with its translation."""
    template = extracted()
    for lang in LANGUAGES[1:]:
        catalog = read_catalog(lang)
        for msgid, entry in list(catalog.obsolete.items()):
            if msgid in template:
                catalog[msgid] = entry
                del catalog.obsolete[msgid]
        catalog.update(template)
        with catalog_path(lang).open("wb") as file:
            pofile.write_po(file, catalog, width=120)


def main(argv: list[str]) -> int:
    if argv != ["update"]:
        print("vg_core: error: usage: python -m vg_core.i18n update", file=sys.stderr)
        return 2
    update_catalogs()
    print(f"updated {', '.join(str(catalog_path(lang)) for lang in LANGUAGES[1:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
