"""The message catalogs (complete, placeholders intact, plural forms right) and numbers written per language."""

from __future__ import annotations

import pytest
from babel.messages.catalog import Catalog
from hypothesis import given
from hypothesis import strategies as st

from vg_core import i18n
from vg_core.i18n import (
    LANGUAGES,
    Message,
    extracted,
    format_number,
    language,
    message,
    placeholders,
    plural_message,
    read_catalog,
    translator,
)
from vg_core.presets import PRESETS
from vg_core.reproductions import REPRODUCTIONS

TRANSLATED = LANGUAGES[1:]  # English is the msgids themselves


def _forms(text: str | tuple[str, ...]) -> tuple[str, ...]:
    return text if isinstance(text, tuple) else (text,)


@pytest.fixture(scope="module")
def template():
    return extracted()


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_marked_message_has_a_translation(template, lang):
    catalog = read_catalog(lang)
    missing = []
    for entry in template:
        if not entry.id:
            continue
        found = catalog.get(entry.id)
        if found is None or found.fuzzy or not all(form.strip() for form in _forms(found.string)):
            missing.append(f"{entry.locations[0][0]}:{entry.locations[0][1]}: {_forms(entry.id)[0][:70]!r}")
    assert not missing, f"{len(missing)} message(s) without a {lang} translation:\n" + "\n".join(missing)


def test_the_extractor_finds_the_tour_glossary_and_message_calls(template):
    ids = {_forms(entry.id)[0] for entry in template if entry.id}
    assert "Why the first layers get almost no gradient" in ids  # N_(...)
    assert "fc{layer:d}: ×{factor:.2g}" in ids  # message(...)
    assert "weight gradient" in ids


def test_every_preset_and_paper_text_shown_is_a_marked_message(template):
    """What the page shows of a preset (its title and caption; a paper's title and claim) is extracted, hence
    translated (the test above); an unmarked one was shown in English on the Indonesian page."""
    ids = {_forms(entry.id)[0] for entry in template if entry.id}
    shown = [text for preset in PRESETS.values() if not preset.reproduction for text in (preset.title, preset.caption)]
    shown += [text for reproduction in REPRODUCTIONS for text in (reproduction.title, reproduction.claim)]
    assert [text for text in shown if text not in ids] == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_the_placeholders(lang):
    catalog = read_catalog(lang)
    wrong = []
    for entry in catalog:
        if not entry.id:
            continue
        expected = set().union(*(placeholders(text) for text in _forms(entry.id)))
        for form in _forms(entry.string):
            if placeholders(form) != expected:
                wrong.append(f"{_forms(entry.id)[0][:60]!r}: {sorted(placeholders(form))} != {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_no_translation_is_fuzzy_or_empty(lang):
    catalog = read_catalog(lang)
    bad = [entry.id for entry in catalog if entry.id and (entry.fuzzy or not all(_forms(entry.string)))]
    assert not bad


def test_placeholders_reads_both_styles():
    assert placeholders("{a} and {b:.1%} but {{not}} and %(c)s, %(d).2f") == {"{a}", "{b:.1%}", "%(c)s", "%(d).2f"}


def test_indonesian_has_one_plural_form_and_english_two():
    singular, plural = "Run {n:d} missing point", "Run {n:d} missing points"
    assert read_catalog("id").num_plurals == 1
    indonesian = translator("id")
    assert indonesian.ngettext(singular, plural, 1) == indonesian.ngettext(singular, plural, 7)
    assert indonesian.render(plural_message(singular, plural, 7)) == "Latih 7 titik yang belum ada"
    english = translator("en")
    assert english.render(plural_message(singular, plural, 1)) == "Run 1 missing point"
    assert english.render(plural_message(singular, plural, 1234)) == "Run 1234 missing points"


def test_a_message_is_translated_and_its_numbers_written_for_the_language():
    line = message("Training: step {step:,d} of {total:,d} (epoch {epoch:.1f})", step=1234, total=12345, epoch=2.5)
    assert translator("en").render(line) == "Training: step 1,234 of 12,345 (epoch 2.5)"
    assert translator("id").render(line) == "Pelatihan: langkah 1.234 dari 12.345 (epoch 2,5)"


def test_a_message_may_hold_another_message():
    outer = message("**{title}.** {caption}", title="x", caption=message("Run {index:d}", index=2))
    assert translator("id").render(outer) == "**x.** Jaringan 2"


def test_an_unknown_msgid_is_shown_as_it_is():
    assert translator("id").render("no such text {x}") == "no such text {x}"
    assert translator("id").render(Message("no such text {x:.1f}", {"x": 0.25})) == "no such text 0,2"


def test_catalog_is_compiled_once_per_language():
    assert translator("id") is translator("id")
    assert translator("id").catalog is not translator("en").catalog


def test_language_from_the_url():
    assert language("id") == "id"
    assert language(" ID ") == "id"
    assert language("fr") == "en"
    assert language(["id"]) == "en"  # anything but a plain code falls back to the default
    with pytest.raises(ValueError, match="not one of en, id"):
        translator("fr")


def test_numbers_per_language():
    assert format_number(1234.5, ",.1f", "en") == "1,234.5"
    assert format_number(1234.5, ",.1f", "id") == "1.234,5"
    assert format_number(0.123, ".1%", "en") == "12.3%"
    assert format_number(0.123, ".1%", "id") == "12,3%"
    assert format_number(1.2e-7, ".2g", "id") == "1,2E-7"
    assert format_number(float("nan"), ".2f", "id") == "NaN"
    assert format_number(12345, "", "id") == "12345"
    assert format_number(12345, ",d", "id") == "12.345"
    with pytest.raises(ValueError, match="format spec"):
        format_number(1.0, ">10", "en")


SPECS = [",.0f", ".2f", ",.3f", ".0%", ".1%", ",.2%", ".1g", ".3g", ",.4g", ""]


@given(value=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), spec=st.sampled_from(SPECS))
def test_english_numbers_are_pythons(value, spec):
    """The oracle: in English, format_number writes what str.format writes (outside scientific notation)."""
    expected = format(value, spec or "g")
    if "e" in expected:
        return  # exponents are written as babel writes them (1E-7, not 1e-07)
    assert format_number(value, spec, "en") == expected


@given(value=st.integers(min_value=-(10**12), max_value=10**12))
def test_english_integers_are_pythons(value):
    assert format_number(value, ",d", "en") == format(value, ",d")
    assert format_number(value, "", "en") == format(value, "")


@given(value=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), spec=st.sampled_from(SPECS))
def test_indonesian_numbers_swap_the_separators(value, spec):
    english = format_number(value, spec, "en")
    swapped = english.replace(",", "\0").replace(".", ",").replace("\0", ".")
    assert format_number(value, spec, "id") == swapped


def test_maintainer_command_refuses_anything_but_update(capsys):
    assert i18n.main(["frobnicate"]) == 2
    assert capsys.readouterr().err.strip() == "vg_core: error: usage: python -m vg_core.i18n update"


def test_update_merges_new_keeps_old_and_revives_what_comes_back(tmp_path, monkeypatch):
    """`python -m vg_core.i18n update` on a copy of the catalogs, with a stand-in for the extracted sources."""
    for lang in TRANSLATED:
        target = tmp_path / lang / "LC_MESSAGES"
        target.mkdir(parents=True)
        target.joinpath("messages.po").write_bytes(i18n.catalog_path(lang).read_bytes())
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    kept, dropped = "Why the first layers get almost no gradient", "Remedies"
    template = Catalog()
    template.add(kept, locations=[("vg_core/tour.py", 1)])
    template.add("a brand-new text", locations=[("app.py", 1)])
    monkeypatch.setattr(i18n, "extracted", lambda: template)

    assert i18n.main(["update"]) == 0
    catalog = read_catalog("id")
    assert catalog[kept].string == translator("id").gettext(kept)
    assert catalog["a brand-new text"].string == ""  # listed for the translator
    assert dropped not in catalog and dropped in catalog.obsolete

    template.add(dropped, locations=[("vg_core/tour.py", 2)])
    assert i18n.main(["update"]) == 0
    assert read_catalog("id")[dropped].string == "Cara mengatasinya"
