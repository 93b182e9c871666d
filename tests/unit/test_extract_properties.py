"""Property tests: no page, byte string, date or JSON-LD value can crash extraction.

`extract` turns any exception into a Skipped; these tests call the unguarded `_extract`
and the date parsers directly, so a crash inside shows up as a failure, not a skip.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veille.pipeline.dates import find_dates, parse_iso, url_day
from veille.pipeline.extract import _extract, page_date
from veille.pipeline.types import Article, RawPage, Skipped

PAGES = Path(__file__).parent / "pages"
SEED_PAGES = [(PAGES / name).read_bytes() for name in
              ("fr_article.html", "ar_article.html", "jsonld_date.html", "listing.html")]
FETCHED = datetime(2025, 11, 20, 10, tzinfo=UTC)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

date_text = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?\d{1,5}-\d{1,2}-\d{1,2}(T\d{1,2}:\d{1,2}(:\d{1,2})?(Z|[+-]\d{2}:?\d{2})?)?",
                  fullmatch=True),
    st.sampled_from(["0001-01-01T00:00:00Z", "0000-00-00", "9999-12-31T23:59:59-14:00",
                     "2024-02-30", "Mon, 32 Foo 2024", "١٢/٠٣/٢٠٢٤", "31 février 2024 à 25h61"]),
)


def raw(body: bytes, url: str = "https://example.org/actualite/article-123.html",
        ctype: str = "text/html") -> RawPage:
    return RawPage(url=url, final_url=url, outlet="test", status=200,
                   headers={"content-type": ctype}, body=body, fetched_at=FETCHED)


def check(page: RawPage) -> None:
    result = _extract(page, 150)  # raises if anything inside crashes
    assert isinstance(result, (Article, Skipped))
    if isinstance(result, Article):
        assert result.text.strip()
        assert result.published is None or result.published.year >= 1995
    page_date(page)


@SETTINGS
@given(st.binary(max_size=4000))
def test_random_bytes(body: bytes) -> None:
    check(raw(body))


@SETTINGS
@given(st.sampled_from(SEED_PAGES), st.lists(
    st.tuples(st.integers(0, 40_000), st.integers(0, 400), st.binary(max_size=60)), max_size=8))
def test_mutated_real_pages(page: bytes, cuts: list[tuple[int, int, bytes]]) -> None:
    body = bytearray(page)
    for at, length, insert in cuts:
        at %= max(1, len(body))
        body[at:at + length] = insert
    check(raw(bytes(body)))


@SETTINGS
@given(date_text, date_text, st.text(max_size=80), st.sampled_from(
    ["NewsArticle", "Article", ["NewsArticle", "WebPage"], "ItemList", 7, None]))
def test_hostile_jsonld(published: str, modified: str, headline: str, kind: object) -> None:
    data = {"@type": kind, "headline": headline, "datePublished": published,
            "dateModified": modified, "author": [{"name": headline}, headline, None]}
    ld = json.dumps(data).encode()
    page = SEED_PAGES[0].replace(b"</head>", b'<script type="application/ld+json">' + ld
                                 + b"</script></head>", 1)
    check(raw(page))


@SETTINGS
@given(date_text)
def test_date_parsers_never_raise(value: str) -> None:
    found = parse_iso(value)
    assert found is None or found.tzinfo is not None
    for _, when in find_dates(value):
        assert when.year >= 1995
    url_day(f"https://example.org/{value}/x")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
@SETTINGS
def test_clean_text_collapses_exactly_what_the_regex_whitespace_class_does(text: str) -> None:
    import re

    from veille.pipeline.dates import clean_text

    assert clean_text(text) == re.sub(r"\s+", " ", text).strip()


@given(st.lists(st.text(alphabet=st.sampled_from("ab \n\t\xa0é"), max_size=30), min_size=1, max_size=8),
       st.integers(min_value=1, max_value=90))
@SETTINGS
def test_short_text_is_the_clean_text_content_or_none_past_the_limit(pieces: list[str], limit: int) -> None:
    from lxml import html as lxml_html

    from veille.pipeline.dates import _short_text, clean_text

    el = lxml_html.fromstring("<div>x</div>")
    el.text = pieces[0]
    for piece in pieces[1:]:  # children with text and tails, nested one level
        child = lxml_html.Element("span")
        child.text, child.tail = piece, piece[::-1]
        el.append(child)
    full = clean_text(el.text_content())
    assert _short_text(el, limit) == (full if len(full) < limit else None)
