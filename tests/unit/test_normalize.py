"""normalize / tokens / stem_ar / TokenIndex: folding for matching."""

from __future__ import annotations

import pytest

from veille.pipeline.normalize import (
    TokenIndex,
    find_term,
    normalize,
    phrase_pattern,
    stem_ar,
    tokens,
)


@pytest.mark.parametrize("text, expected", [
    ("Sécurité", "securite"),
    ("SÉCURITÉ SECURITE sécurité", "securite securite securite"),
    ("Cœur, Ça, Œuvre, ÆSOP", "coeur ca oeuvre aesop"),
    ("l’Intérieur — Maroc-France « coopération »", "l interieur maroc france cooperation"),
    ("d'Interpol … (DGSI) ; 2e", "d interpol dgsi 2e"),
    ("  plusieurs\n\tespaces  ", "plusieurs espaces"),
    ("ﬁn", "fin"),  # NFKC ligature
])
def test_normalize_french(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("الأَمْنُ", "الامن"),  # harakat + sukun
    ("الأمـــن", "الامن"),  # tatweel
    ("إدارة آمنة ٱلحموشي أمن", "اداره امنه الحموشي امن"),  # alef variants, ة → ه
    ("مستشفى", "مستشفي"),  # ى → ي
    ("مسؤول قائد", "مسوول قايد"),  # ؤ → و, ئ → ي
    ("كتابٌ مُدَرِّسٍ", "كتاب مدرس"),  # tanwin, shadda, kasra
    ("الرَّحْمٰن", "الرحمن"),  # superscript alef
    ("عام ٢٠٢٤ و۱۲", "عام 2024 و12"),  # Arabic-Indic and Persian digits
    ("المغرب، فرنسا؛ الأمن؟", "المغرب فرنسا الامن"),  # Arabic punctuation
])
def test_normalize_arabic(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize("token, expected", [
    ("والمغرب", "مغرب"),
    ("بالمغرب", "مغرب"),
    ("المغرب", "مغرب"),
    ("للامن", "امن"),
    ("الامن", "امن"),
    ("فرنسا", "فرنسا"),  # the ف is part of the word
    ("وزير", "وزير"),  # so is this و
    ("والي", "والي"),  # wali: "وال" + one letter is not a clitic
    ("الي", "الي"),  # إلى: too short once stripped
])
def test_stem_ar(token: str, expected: str) -> None:
    assert stem_ar(token) == expected


def test_tokens_mixed_text() -> None:
    assert tokens("La coopération sécuritaire, والمغرب بالمغرب للأمن فرنسا الأمن") == [
        "la", "cooperation", "securitaire", "مغرب", "مغرب", "امن", "فرنسا", "امن"]
    assert tokens("") == []
    assert phrase_pattern("التعاون الأمني") == ("تعاون", "امني")
    assert phrase_pattern("Coopération sécuritaire") == ("cooperation", "securitaire")


def test_token_index_counts_terms_on_token_boundaries() -> None:
    text = ("Le Maroc et la France : coopération sécuritaire. COOPERATION SECURITAIRE renforcée. "
            "Marocains et Français. التعاون الأمني بين المغرب وفرنسا، وأشاد بالتعاون الأمني "
            "مع فرنسا. بفرنسا")
    index = TokenIndex.from_text(text)
    assert index.count("coopération sécuritaire") == 2
    assert index.count("maroc") == 1  # not "marocains"
    assert index.count("marocain") == 0
    assert index.count("france") == 1  # not "français"
    assert index.count("التعاون الأمني") == 2  # التعاون / بالتعاون
    assert index.count("المغرب") == 1
    assert index.count("فرنسا") == 3  # وفرنسا, فرنسا, بفرنسا
    assert index.count("الأمن") == 0  # الأمني is another word
    assert index.count(phrase_pattern("sécuritaire")) == 2
    assert index.count("") == 0 and index.count("...") == 0
    assert index.count("la france coopération sécuritaire") == 1


def test_token_index_variants_do_not_invent_words() -> None:
    index = TokenIndex.from_text("وزير الداخلية ومن معه")
    assert index.count("وزير") == 1
    assert index.count("من") == 0  # ومن: too short to strip
    assert index.count("داخليه") == 1
    assert tokens("وزير ومن") == ["وزير", "ومن"]  # bare proclitics are only secondary keys


def test_find_term_agrees_with_index() -> None:
    toks = tokens("Hammouchi à Paris ; la DGSI et la DGSN. Hammouchi, encore Hammouchi")
    assert find_term("hammouchi", toks) == 3
    assert find_term("DGSI et la DGSN", toks) == 1
    assert find_term("dgse", toks) == 0


def test_overlapping_occurrences_are_counted_once() -> None:
    index = TokenIndex(tokens("a a a"))
    assert index.count("a a") == 1
    assert len(index) == 3
