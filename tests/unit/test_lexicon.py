"""pipeline/lexicon: the word lists are data, so the tests check what the data must hold for
`pipeline.stories` to use it — every alias folds to words, no spelling names two things,
every entry is cross-lingual, months and stop words are in the folded form text comes in.

hypothesis: an alias written the ways outlets write it (capitals, accents dropped, Arabic
harakat and tatweel, punctuation around it) still folds to the alias's own words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veille.pipeline.lexicon import MONTHS, NAME_PARTS, NAMES, NOTIONS, STOP_WORDS
from veille.pipeline.normalize import tokens

ARABIC = re.compile(r"[\u0600-\u06ff]")
ENTRIES = [("x:" + ident, alias) for ident, aliases in NAMES.items() for alias in aliases] + [
    ("c:" + ident, alias) for ident, aliases in NOTIONS.items() for alias in aliases]
HARAKAT = "\u064e\u064f\u0650\u0651\u0652\u064b"  # fatha, damma, kasra, shadda, sukun, tanwin


def test_every_alias_folds_to_words_and_no_spelling_names_two_things() -> None:
    """An alias folding to nothing is silently never found; one folding like another entry's
    is found as whichever the table lists first."""
    owner: dict[tuple[str, ...], str] = {}
    clashes = []
    for ident, alias in ENTRIES:
        phrase = tuple(tokens(alias))
        assert phrase, f"{ident}: {alias!r} folds to no word"
        if owner.setdefault(phrase, ident) != ident:
            clashes.append(f"{alias!r} is both {owner[phrase]} and {ident}")
    assert not clashes


@pytest.mark.parametrize("table", [NAMES, NOTIONS], ids=["names", "notions"])
def test_every_entry_has_a_latin_and_an_arabic_spelling(table: dict[str, tuple[str, ...]]) -> None:
    """The lists exist so a French report and an Arabic one about the same event meet."""
    one_sided = {ident: aliases for ident, aliases in table.items()
                 if all(ARABIC.search(a) for a in aliases) or not any(ARABIC.search(a) for a in aliases)}
    assert not one_sided


def test_no_alias_is_only_stop_words() -> None:
    """A single-word alias that is also a stop word would be a feature of every article."""
    assert not [alias for _, alias in ENTRIES if all(t in STOP_WORDS for t in tokens(alias))]


def test_months_cover_the_year_in_each_language_in_folded_form() -> None:
    assert sorted(set(MONTHS.values())) == list(range(1, 13))
    assert all(tokens(name) == [name] for name in MONTHS)  # as a text's tokens come
    assert not set(MONTHS) & STOP_WORDS
    written = {"14 juillet 2025": 7, "14 July 2025": 7, "14 يوليوز 2025": 7, "14 يوليو 2025": 7,
               "3 Août": 8, "3 غشت": 8, "1er Février": 2, "1 فيفري": 2, "May 5": 5,
               "5 mai": 5, "2 Décembre": 12, "2 دجنبر": 12}
    for text, month in written.items():
        found = [MONTHS[t] for t in tokens(text) if t in MONTHS]
        assert found == [month], text


def test_stop_words_and_name_parts_are_folded_words() -> None:
    """Both are compared with a text's tokens: an accent or capital left in never matches."""
    for word in STOP_WORDS | NAME_PARTS:
        assert tokens(word) == [word], word
    # the Arabic lists hold folded forms, and the function words a sentence is made of
    assert {"في", "من", "علي", "ان"} <= STOP_WORDS
    assert {"securite", "surete", "directorate", "medaille"} <= NAME_PARTS


def _harakat_between(text: str, marks: list[str]) -> str:
    """Arabic letters of `text`, each followed by the next of `marks` (cycled)."""
    out, i = [], 0
    for ch in text:
        out.append(ch)
        if ARABIC.match(ch) and marks:
            out.append(marks[i % len(marks)])
            i += 1
    return "".join(out)


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


@given(entry=st.sampled_from(ENTRIES),
       case=st.sampled_from([str, str.upper, str.title, _without_accents]),
       marks=st.lists(st.sampled_from([*HARAKAT, "\u0640"]), max_size=4),
       before=st.sampled_from(["", "« ", "(", "— ", "\n"]), after=st.sampled_from(["", " »", ")", "،", "…"]))
def test_an_alias_spelled_as_outlets_spell_it_folds_to_its_own_words(
        entry: tuple[str, str], case: Callable[[str], str], marks: list[str], before: str,
        after: str) -> None:
    _, alias = entry
    variant = before + _harakat_between(case(alias), marks) + after
    assert tokens(variant) == tokens(alias)
