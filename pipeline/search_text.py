"""The searchable form of an article and of a query: the classifier's folding, as tokens.

Archive search (`veille search`, the web view's search box) must fold both sides the
same way the classifier does, so "securite" finds "Sécurité", "hammouchi" finds
"HAMMOUCHI" and "المديريه العامه للامن" finds "والمديرية العامة للأمن". Both functions
here reuse `pipeline.normalize` (case, accents, Arabic letter variants and diacritics,
the article and its proclitics) and return plain space-separated tokens that the
storage layer indexes as they are (SQLite FTS5, PostgreSQL `tsvector` 'simple').
"""

from __future__ import annotations

import re

from veille.pipeline.normalize import _variant, tokens

# "exact phrase" or a bare word; an unclosed quote runs to the end of the query
_QUERY_TERM_RE = re.compile(r'"([^"]*)"?|([^\s"]+)')
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "«": '"', "»": '"'})


def document_text(title: str, text: str) -> str:
    """The folded tokens of an article's title then text, as one string to index.

    An Arabic word with a bare proclitic (وفرنسا) is indexed as written, and its form
    without it (فرنسا) is appended once at the end, as the classifier's `TokenIndex` keys
    it: a query for فرنسا finds the article; a phrase query sees the words as written.
    """
    words = tokens(title) + tokens(text)
    variants = dict.fromkeys(v for t in words if (v := _variant(t)) is not None and v != t)
    return " ".join([*words, *variants])


def query_text(query: str) -> str:
    """A user's query folded like the documents: `Sécurité "Al-Amn al-Watani"` →
    `securite "al amn al watani"`.

    Words are ANDed; text in double quotes (also “…” and «…») is a phrase, and so is a
    single word that folds to several tokens ("l'État" → "l etat"). Returns "" when
    nothing searchable is left (punctuation only).
    """
    terms: list[str] = []
    for match in _QUERY_TERM_RE.finditer(query.translate(_QUOTES)):
        phrase, word = match.groups()
        words = tokens(phrase if phrase is not None else word)
        if not words:
            continue
        term = words[0] if len(words) == 1 else '"' + " ".join(words) + '"'
        if term not in terms:
            terms.append(term)
    return " ".join(terms)
