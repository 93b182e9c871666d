"""An outlet's template, learnt from its own pages: lines that are the site, not the article.

trafilatura sees one page at a time, so a "Suivez-nous sur Google News" line, a "Les plus lus"
list or a teaser of another article placed *inside* the article node reads as text. Across
an outlet's pages it does not: a short line carried by many of its pages, or a line that is
the headline of another of its articles, is template. The evidence is kept per outlet
(`pipeline.learn`, `storage.templates`) and grows as pages arrive; with no history only the
generic rules apply (follow, newsletter and most-read/related lines in French, Arabic and
English). No per-site code: the outlet's own pages are the rule.

Everything here is pure: `Template` is a frozen snapshot of one outlet's evidence, handed to
the extraction workers with each page; `strip` only ever removes whole lines.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from veille.pipeline.dates import RELATED_HEAD_RE
from veille.pipeline.normalize import normalize
from veille.pipeline.types import Article

MAX_LINE = 200  # longer lines are paragraphs: never template, never counted
MIN_PAGES = 3  # a line is template once it recurs on this many distinct pages of the outlet...
MIN_SHARE = 0.1  # ...and on this share of the outlet's pages seen since it first appeared
MIN_TITLE = 20  # shorter headlines ("Éditorial") are too generic to recognise an article by
TITLE_SLACK = 30  # a teaser line may carry a label or a date beside the headline
TITLE_LINE = 160  # a line listed under a related/most-read heading is a title up to this length
RUN_MAX = 12  # ... and such a heading takes at most this many lines with it
GENERIC_LINE = 130  # follow/newsletter lines are short; a body sentence naming Facebook is not one

_PLATFORM_RE = re.compile(
    r"google\s*(?:news|actualit)|whats\s*app|facebook|instagram|twitter|telegram|t[ée]l[ée]gram"
    r"|tiktok|youtube|linkedin|threads|فيسبوك|فايسبوك|واتساب|واتس اب|تويتر|إنستغرام|انستغرام"
    r"|يوتيوب|تيليغرام|تلغرام|تيك توك|أخبار\s*(?:google|جوجل|غوغل)|(?:غوغل|جوجل)\s*نيوز",
    re.I)
_FOLLOW_RE = re.compile(
    r"\b(?:suivez|suivre|rejoignez|rejoindre|abonnez|retrouvez|follow|join|subscribe)\b"
    r"|تابعونا|تابعوا|تابع|انضموا|انضم|اشترك|اشتركوا", re.I)
_NEWSLETTER_RE = re.compile(
    r"\bnewsletters?\b|lettre d.information|dans votre bo[iî]te (?:mail|e-mail|aux lettres)"
    r"|النشرة (?:البريدية|اليومية|الإخبارية)|القائمة البريدية|بريدك الإلكتروني", re.I)
_SIGN_UP_RE = re.compile(
    r"inscri|abonne|recevez|subscribe|sign up|اشترك|سجل|توصل|لتصلك", re.I)
# headings of related and most-read lists, matched on `normalize`d lines (accents, hamza and
# ta marbuta folded); a few trailing words are allowed ("cette semaine", "هذا الاسبوع")
_HEADING_RE = re.compile(
    r"(?:sujets|articles) (?:associes|lies|similaires)|les plus (?:lus|populaires|partages|commentes)"
    r"|sur le meme (?:sujet|theme)|vous aimerez aussi|a lire (?:aussi|egalement)|lire aussi"
    r"|dans la meme rubrique|derniers articles|dernieres actualites"
    r"|most (?:read|popular|viewed)|trending|related(?: articles| stories| news)?|read (?:also|more)"
    r"|see also|you may also like|more from"
    r"|الاكثر (?:قراءه|مشاهده|تداولا|تعليقا)|(?:مقالات|اخبار|مواضيع) (?:ذات صله|مرتبطه|مشابهه)"
    r"|اقرا (?:ايضا|كذلك)|اخترنا لك|قد يهمك|اخر الاخبار")
_HEADING_TAIL = 3  # words allowed after a heading's phrase
_SENTENCE_END = (".", "…", ":")  # a paragraph or a lead-in, not a headline


@dataclass(frozen=True)
class DroppedLine:
    """A line taken out of an article's text as template, and why (shown by `veille extract`)."""

    line: str
    reason: str


@dataclass(frozen=True)
class Template:
    """A snapshot of one outlet's evidence (empty: the generic rules alone).

    `lines` holds only lines already on MIN_PAGES pages: fingerprint -> (pages carrying it,
    pages of the outlet seen before it first appeared). `titles` are normalised headlines of
    the outlet's recent articles.
    """

    outlet: str = ""
    pages: int = 0
    lines: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    titles: frozenset[str] = frozenset()


def line_key(line: str) -> str:
    """A line as compared across pages: folded, punctuation and list bullets gone."""
    return normalize(line)


def fingerprint(key: str) -> str:
    """16 hex characters naming a normalised line (what storage keeps, never the text)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def line_fingerprints(text: str) -> frozenset[str]:
    """The distinct short lines of a text, as the evidence counts them (one vote per page)."""
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if line and len(line) <= MAX_LINE and (key := line_key(line)):
            out.add(fingerprint(key))
    return frozenset(out)


def _generic(line: str) -> str | None:
    if len(line) > GENERIC_LINE:
        return None
    if _PLATFORM_RE.search(line) and _FOLLOW_RE.search(line):
        return "generic: follow line"
    if _NEWSLETTER_RE.search(line) and _SIGN_UP_RE.search(line):
        return "generic: newsletter line"
    return None


def _heading(line: str, key: str) -> bool:
    if len(line) > 60:
        return False
    found = _HEADING_RE.match(key)
    if found is not None:
        return len(key[found.end():].split()) <= _HEADING_TAIL
    return bool(RELATED_HEAD_RE.match(line))


def _title_like(line: str) -> bool:
    return len(line) <= TITLE_LINE and not line.rstrip().endswith(_SENTENCE_END)


def _other_title(key: str, own: str, titles: frozenset[str]) -> bool:
    """Whether the line is (or wraps, with a short label or date) another article's headline."""
    if not titles or len(key) > MAX_LINE:
        return False
    words = key.split()
    for i in range(len(words)):
        for j in range(len(words), i, -1):
            piece = " ".join(words[i:j])
            if len(piece) < MIN_TITLE or len(key) - len(piece) > TITLE_SLACK:
                break
            if piece in titles and piece != own:
                return True
    return False


def _recurs(key: str, template: Template) -> str | None:
    found = template.lines.get(fingerprint(key))
    if found is None:
        return None
    carried, since = found
    seen = max(template.pages - since, carried)
    if carried >= MIN_PAGES and carried >= MIN_SHARE * seen:
        return f"recurs on {carried} of {seen} pages of this outlet"
    return None


def strip(title: str, text: str, template: Template) -> tuple[str, tuple[DroppedLine, ...]]:
    """The text without its template lines, and the lines dropped with their reason.

    Only whole short lines go (never one over MAX_LINE characters); the article's own
    headline is not "another article's title"; a text that would lose every line is
    returned as it is (the evidence is wrong about this page, not the page).
    """
    own = line_key(title)
    kept: list[str] = []
    dropped: list[DroppedLine] = []
    heading, run = "", 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            kept.append(raw)
            continue
        key = line_key(line)
        reason = _generic(line)
        if reason is None and _heading(line, key):
            heading, run, reason = line, RUN_MAX, "generic: heading of a related or most-read list"
        elif reason is None and run and _title_like(line):
            run -= 1
            reason = f"generic: listed under {heading!r}"
        else:
            run = 0
        if reason is None and len(line) <= MAX_LINE:
            if _other_title(key, own, template.titles):
                reason = "title of another article of this outlet"
            else:
                reason = _recurs(key, template)
        if reason is None:
            kept.append(raw)
        else:
            dropped.append(DroppedLine(line, reason))
    if not dropped:
        return text, ()
    result = "\n".join(kept).strip()
    if not result:
        return text, ()
    return result, tuple(dropped)


def strip_article(article: Article, template: Template) -> tuple[Article, tuple[DroppedLine, ...]]:
    """`strip` applied to an extracted article (same article when nothing is template)."""
    text, dropped = strip(article.title, article.text, template)
    return (replace(article, text=text) if dropped else article), dropped
