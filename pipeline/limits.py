"""Caps on what one page may cost: the HTML handed to extraction, what is stored.

Outlets are untrusted: a 2 MB article took 30 s and 631 MB to extract and prepare, and a
100 KB title went into every digest that listed its story. The download itself is capped
by Scrapy (`crawl.max_page_bytes`, DOWNLOAD_MAXSIZE); past that, a page's HTML is cut
before extraction and its title and text before anything is derived from them (hashes,
MinHash, features, topics) or stored. Each cut is returned as a note for the caller to log
with the page's URL. Pure functions, no settings: the limits are far above any real
article (the replay's longest is ~10,000 characters).
"""

from __future__ import annotations

from dataclasses import replace

from veille.pipeline.types import Article, RawPage

MAX_HTML_BYTES = 1_000_000  # of a page's body handed to extraction
MAX_TITLE_CHARS = 500
MAX_TEXT_CHARS = 100_000
MAX_META_CHARS = 300  # author, site name: their columns' size


def cap_page(page: RawPage, limit: int = MAX_HTML_BYTES) -> tuple[RawPage, str | None]:
    """The page with its body cut to `limit` bytes at a tag's start, and a note if cut.

    Cutting before a "<" never splits a tag, nor a character of an ASCII-compatible
    encoding (UTF-8, windows-1256, ...); the parser closes what is left open.
    """
    if len(page.body) <= limit:
        return page, None
    cut = page.body.rfind(b"<", 0, limit + 1)
    body = page.body[: cut if cut > limit // 2 else limit]
    note = f"HTML of {len(page.body):,} bytes cut to {len(body):,} before extraction"
    return replace(page, body=body), note


def cap_article(article: Article) -> tuple[Article, tuple[str, ...]]:
    """The article with title, text, author and site name cut to their limits, and notes."""
    notes: list[str] = []
    title = _cut(article.title, MAX_TITLE_CHARS, "title", notes) or ""
    text = _cut(article.text, MAX_TEXT_CHARS, "text", notes) or ""
    author = _cut(article.author, MAX_META_CHARS, "author", notes)
    site = _cut(article.site_name, MAX_META_CHARS, "site name", notes)
    if not notes:
        return article, ()
    return replace(article, title=title, text=text, author=author, site_name=site), tuple(notes)


def shorten(value: str, limit: int) -> str:
    """`value` cut to at most `limit` characters, at a space when one is near, with "…"."""
    if len(value) <= limit:
        return value
    head = value[: limit - 1]
    space = head.rfind(" ")
    if space > limit * 0.8:
        head = head[:space]
    return head.rstrip() + "…"


def _cut(value: str | None, limit: int, what: str, notes: list[str]) -> str | None:
    if value is None or len(value) <= limit:
        return value
    notes.append(f"{what} of {len(value):,} characters cut to {limit:,}")
    return shorten(value, limit)
