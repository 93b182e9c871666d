"""pipeline.search_text: documents and queries fold the same way, as the classifier folds."""

from __future__ import annotations

import pytest

from veille.pipeline.search_text import document_text, query_text


def _words(folded_query: str) -> set[str]:
    return set(folded_query.replace('"', " ").split())


@pytest.mark.parametrize("written, typed", [
    ("Sécurité", "securite"),
    ("SÉCURITÉ", "Securite"),
    ("HAMMOUCHI", "hammouchi"),
    ("Cœur", "coeur"),
    ("l’Intérieur", "l'interieur"),
    ("الأمن", "الامن"),  # alef with hamza above / bare alef
    ("إسبانيا", "اسبانيا"),  # alef with hamza below
    ("العامة", "العامه"),  # ta marbuta / ha
    ("مستشفى", "مستشفي"),  # alef maqsura / ya
    ("الأَمْن", "امن"),  # diacritics, and the article
    ("والمديرية", "المديرية"),  # wa + article
    ("للأمن", "الأمن"),  # li + article (its alef dropped)
    ("بالرباط", "رباط"),
    ("٢٠٢٤", "2024"),  # Arabic-Indic digits
])
def test_a_query_folds_like_the_text_it_should_find(written: str, typed: str) -> None:
    assert _words(query_text(typed)) <= set(document_text("", written).split())


def test_a_bare_proclitic_is_indexed_with_and_without_it() -> None:
    """وفرنسا is found by فرنسا (the classifier's secondary key) and by itself."""
    doc = document_text("", "المغرب وفرنسا")
    assert doc.split()[:2] == ["مغرب", "وفرنسا"]
    assert "فرنسا" in doc.split()[2:]  # appended after the words as written: phrases stay whole
    assert query_text("فرنسا") in doc.split() and query_text("وفرنسا") in doc.split()


def test_the_title_comes_first_then_the_text() -> None:
    assert document_text("Le DGSN", "recrute") == "le dgsn recrute"


def test_words_are_anded_and_quotes_make_phrases() -> None:
    assert query_text('Hammouchi "Sûreté nationale" Rabat') == 'hammouchi "surete nationale" rabat'
    assert query_text("“Sûreté nationale”") == query_text("«Sûreté nationale»") == '"surete nationale"'
    assert query_text('"al amn') == '"al amn"'  # an unclosed quote runs to the end


def test_a_word_that_folds_to_several_tokens_is_a_phrase() -> None:
    assert query_text("l'État covid-19") == '"l etat" "covid 19"'


def test_nothing_searchable_is_empty_and_repeats_go() -> None:
    assert query_text(" !!! « » ") == ""
    assert query_text('"" dgsn DGSN') == "dgsn"
