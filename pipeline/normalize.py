"""Text normalisation for matching only; stored text stays as published.

``normalize`` folds case, French accents and ligatures, Arabic letter variants and
diacritics, Arabic/Persian digits and punctuation, so that "Sécurité", "SECURITE" and
"sécurité" compare equal, and so do "الأمن", "الامن" and "الأَمْن".
``tokens`` splits normalised text into words and strips Arabic proclitics + article
(والمغرب → مغرب). ``TokenIndex`` counts (multi-word) terms in one text quickly.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

# applied after NFKC + casefold + NFD and removal of combining marks
_FOLD = {
    "œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "ı": "i",
    "\u0640": "",  # tatweel
    "ٱ": "ا", "ى": "ي", "ة": "ه", "ی": "ي", "ک": "ك",
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "´": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
}
FOLD_TABLE = str.maketrans(
    {**_FOLD, **{chr(0x0660 + i): str(i) for i in range(10)},
     **{chr(0x06F0 + i): str(i) for i in range(10)}}
)
NON_WORD_RE = re.compile(r"[\W_]+")
ARABIC_RE = re.compile(r"[\u0600-\u06ff]")
# proclitic (و ف ب ك, or ل whose alef is dropped: لل) + article, longest first
ARTICLE_PREFIXES = ("وبال", "وكال", "فبال", "فكال", "وال", "فال", "بال", "كال", "ولل", "فلل", "لل", "ال")
CLITICS = "وفبلك"
MIN_STEM = 2  # الأمن → امن, but والي (wali) stays
MIN_VARIANT = 3  # وفرنسا → فرنسا only as a secondary index key, never "ومن" → "من"


def _mark_class() -> re.Pattern[str]:
    """One character class of the non-spacing marks (category Mn) of the BMP."""
    ranges: list[str] = []
    start = prev = -2
    for cp in range(0x10000):  # the Basic Multilingual Plane covers our scripts
        if unicodedata.category(chr(cp)) != "Mn":
            continue
        if cp != prev + 1:
            if start >= 0:
                ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
            start = cp
        prev = cp
    ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
    return re.compile(f"[{''.join(ranges)}]+")


MARKS_RE = _mark_class()  # harakat, tanwin, shadda, sukun, superscript alef, Latin accents


def normalize(text: str) -> str:
    """Fold a text for matching.

    Args:
        text: any text, French, Arabic or English.

    Returns:
        Lower-case text without accents, Arabic diacritics, tatweel or punctuation;
        alef variants → ا, ى → ي, ة → ه, ؤ → و, ئ → ي; digits in ASCII; single spaces.
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = MARKS_RE.sub("", unicodedata.normalize("NFD", text))
    text = NON_WORD_RE.sub(" ", text.translate(FOLD_TABLE))
    return unicodedata.normalize("NFC", text).strip()


def stem_ar(token: str) -> str:
    """Strip the article and its proclitics from a normalised Arabic token.

    Conservative: only the article (ال) and a proclitic glued to it are removed, and
    only when at least two letters remain (بالمغرب → مغرب, للامن → امن, فرنسا → فرنسا).
    """
    for prefix in ARTICLE_PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= MIN_STEM:
            return token[len(prefix):]
    return token


def tokens(text: str) -> list[str]:
    """Word tokens of the normalised text; Arabic tokens stemmed with ``stem_ar``."""
    return [stem_ar(t) if ARABIC_RE.match(t) else t for t in normalize(text).split()]


def _variant(token: str) -> str | None:
    """Secondary key of an Arabic token with a bare proclitic: وفرنسا → فرنسا, بفرنسا → فرنسا."""
    if token[:1] in CLITICS and len(token) - 1 >= MIN_VARIANT:
        return token[1:]
    return None


Phrase = tuple[str, ...]


@lru_cache(maxsize=8192)
def phrase_pattern(term: str) -> Phrase:
    """Compile a configured term (one or more words) into the token sequence to look for.

    Cached: the classifier asks for the same configured terms on every article.
    """
    return tuple(tokens(term))


def find_term(term: str | Phrase, normalized_tokens: list[str]) -> int:
    """Count occurrences of ``term`` in a token list from ``tokens`` (one-off use).

    For many terms on one text, build a ``TokenIndex`` once instead.
    """
    return TokenIndex(normalized_tokens).count(term)


class TokenIndex:
    """Token → positions index of one text, for counting many terms on it.

    Example:
        >>> TokenIndex.from_text("Le Maroc et la France; المغرب وفرنسا").count("فرنسا")
        1
    """

    __slots__ = ("_keys", "_positions")

    def __init__(self, normalized_tokens: Iterable[str]) -> None:
        self._positions: dict[str, list[int]] = defaultdict(list)
        self._keys: list[tuple[str, str | None]] = []
        for pos, token in enumerate(normalized_tokens):
            variant = _variant(token)
            self._keys.append((token, variant))
            self._positions[token].append(pos)
            if variant and variant != token:
                self._positions[variant].append(pos)

    @classmethod
    def from_text(cls, text: str) -> TokenIndex:
        return cls(tokens(text))

    def __len__(self) -> int:
        return len(self._keys)

    def count(self, term: str | Phrase) -> int:
        """Non-overlapping occurrences of a term, matched on whole tokens.

        Args:
            term: the term as configured (normalised here) or a ``phrase_pattern``.

        Returns:
            How many times the term's token sequence occurs in the text.
        """
        phrase = phrase_pattern(term) if isinstance(term, str) else term
        if not phrase:
            return 0
        starts = self._positions.get(phrase[0])
        if not starts:
            return 0
        keys, found, next_free = self._keys, 0, 0
        size = len(phrase)
        for start in starts:
            if start < next_free or start + size > len(keys):
                continue
            if all(phrase[i] in keys[start + i] for i in range(1, size)):
                found += 1
                next_free = start + size
        return found
