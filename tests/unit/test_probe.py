"""The probe's pure half (crawler/probe.py): verdicts from answers, items from bodies.

Each verdict of `veille outlets check` — ok, blocked, moved, empty, dead, skipped — from
hand-made answers, without a server; the servers are in tests/integration/test_outlets.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from veille.crawler import discovery as d
from veille.crawler.origin import Origin
from veille.crawler.probe import (
    Answer,
    Parsed,
    SourceReport,
    judge,
    judge_robots,
    page_language,
    parse_source,
    site_root,
    slug_for,
    usable,
)

SITE = "https://www.site.ma"
ORIGIN = Origin.of(SITE + "/")
FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel>'
        b"<item><title>a</title><link>https://www.site.ma/2025/04/14/un-article-du-flux/</link>"
        b"<pubDate>Mon, 14 Apr 2025 18:30:00 GMT</pubDate></item>"
        b"<item><title>b</title><link>https://www.site.ma/2025/04/13/un-autre-article/</link>"
        b"<pubDate>Sun, 13 Apr 2025 08:00:00 GMT</pubDate></item>"
        b"<item><title>c</title><link>https://other.ma/2025/04/12/ailleurs/</link></item>"
        b"</channel></rss>")
INDEX = (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
         b"<sitemap><loc>https://www.site.ma/old.xml</loc><lastmod>2024-01-01</lastmod></sitemap>"
         b"<sitemap><loc>https://www.site.ma/new.xml</loc><lastmod>2025-04-14</lastmod></sitemap>"
         b"</sitemapindex>")


def ok(url: str = SITE + "/feed/", **kw: object) -> Answer:
    return Answer(url, 200, {"content-type": "application/rss+xml"}, FEED, **kw)  # type: ignore[arg-type]


def entries(n: int) -> Parsed:
    return Parsed([d.Entry(f"{SITE}/2025/04/14/article-{i}/") for i in range(n)])


# ------------------------------------------------------------------ verdicts


def test_an_answer_with_items_is_ok() -> None:
    assert judge([ok()], entries(3), ORIGIN) == ("ok", "")


@pytest.mark.parametrize("status", [401, 403, 429])
def test_refusing_statuses_are_blocked(status: int) -> None:
    verdict, note = judge([Answer(SITE + "/feed/", status)], None, ORIGIN)
    assert verdict == "blocked" and note.startswith(f"HTTP {status}")


def test_a_cloudflare_challenge_is_blocked_and_named() -> None:
    answer = Answer(SITE + "/feed/", 503, {"server": "cloudflare", "cf-ray": "8f3a-CDG"},
                    b"<title>Just a moment...</title>")
    assert judge([answer], None, ORIGIN) == ("blocked", "HTTP 503 Service Unavailable (bot challenge)")
    plain_403 = judge([Answer(SITE + "/feed/", 403, {}, b"Forbidden")], None, ORIGIN)
    assert plain_403 == ("blocked", "HTTP 403 Forbidden")


def test_robots_disallow_is_blocked_and_a_refusal_is_skipped() -> None:
    assert judge([Answer(SITE + "/prive/feed", robots=True)], None, ORIGIN) == (
        "blocked", "disallowed by robots.txt")
    why = "10.0.0.5 resolves to a non-public address (10.0.0.5)"
    assert judge([Answer(SITE + "/feed/", refused=why)], None, ORIGIN) == ("skipped", why)


@pytest.mark.parametrize(("answer", "note"), [
    (Answer(SITE + "/feed/", 404), "HTTP 404 Not Found"),
    (Answer(SITE + "/feed/", 500), "HTTP 500 Internal Server Error"),
    (Answer(SITE + "/feed/", error="timeout after 30s"), "timeout after 30s"),
    (Answer(SITE + "/feed/", error="DNS lookup failed"), "DNS lookup failed"),
    (Answer(SITE + "/feed/", 301), "HTTP 301 without a Location"),
])
def test_no_usable_answer_is_dead(answer: Answer, note: str) -> None:
    assert judge([answer], None, ORIGIN) == ("dead", note)


def test_a_redirect_to_another_host_is_moved_and_says_where() -> None:
    answer = Answer(SITE + "/feed/", 301, {"location": "https://feeds.example.org/site"})
    verdict, note = judge([answer], None, ORIGIN)
    assert verdict == "moved"
    assert note == "→ https://feeds.example.org/site (not followed: other host feeds.example.org)"


def test_a_redirect_followed_on_the_site_is_moved_with_its_items() -> None:
    chain = [Answer(SITE + "/feed/", 301, {"location": "/feed"}), ok(SITE + "/feed")]
    assert chain[0].location == SITE + "/feed"  # relative Location resolved
    assert judge(chain, entries(2), ORIGIN) == ("moved", f"→ {SITE}/feed")
    gone = [chain[0], Answer(SITE + "/feed", 404)]
    assert judge(gone, None, ORIGIN) == ("dead", f"→ {SITE}/feed: HTTP 404 Not Found")


def test_an_answer_without_items_is_empty() -> None:
    assert judge([ok()], Parsed(), ORIGIN) == ("empty", "no items")
    html = Answer(SITE + "/feed/", 200, {"content-type": "text/html; charset=utf-8"}, b"<html>")
    parsed = parse_source("feed", html.body, html.url, "site.ma")
    verdict, note = judge([html], parsed, ORIGIN)
    assert verdict == "empty" and note.startswith("not an RSS/Atom feed") and note.endswith("(text/html)")


def test_items_none_of_which_the_crawler_would_take_are_empty() -> None:
    assert judge([ok()], entries(4), ORIGIN, kept=0, patterned=True) == (
        "empty", "4 items, none on the outlet's site matching its article_pattern")
    assert judge([ok()], entries(4), ORIGIN, kept=3) == ("ok", "3 of them on the outlet's site")


def test_a_body_cut_at_the_byte_cap_says_so() -> None:
    assert judge([ok(truncated=True)], entries(1), ORIGIN) == ("ok", "body cut at the byte cap")


def test_robots_txt_missing_is_fine_blocked_is_not() -> None:
    assert judge_robots([Answer(SITE + "/robots.txt", 404)], ORIGIN, 0) == (
        "ok", "no robots.txt (HTTP 404): everything allowed")
    assert judge_robots([Answer(SITE + "/robots.txt", 200)], ORIGIN, 2) == ("ok", "2 Sitemap lines")
    assert judge_robots([Answer(SITE + "/robots.txt", 403)], ORIGIN, 0)[0] == "blocked"
    assert judge_robots([Answer(SITE + "/robots.txt", error="connection refused")], ORIGIN, 0) == (
        "dead", "connection refused")


# ------------------------------------------------------------------ items


def test_a_feed_is_read_by_the_crawlers_parser() -> None:
    parsed = parse_source("feed", FEED, SITE + "/feed/", "site.ma")
    assert parsed.problem is None and len(parsed.entries) == 3
    pattern = re.compile(r"/2025/04/1[34]/")
    assert usable(parsed.entries, ORIGIN, None) == 2  # other.ma is not the outlet's
    assert usable(parsed.entries, ORIGIN, pattern) == 2
    assert usable(parsed.entries, ORIGIN, re.compile(r"_[A-Z0-9]{26}/$")) == 0


def test_a_sitemap_index_gives_its_children_newest_first() -> None:
    parsed = parse_source("sitemap", INDEX, SITE + "/sitemap_index.xml", "site.ma")
    assert parsed.entries == [] and parsed.children == [SITE + "/new.xml", SITE + "/old.xml"]


def test_a_section_keeps_the_article_links_of_the_site() -> None:
    page = (b'<html><body><a href="/2025/04/14/un-long-titre-d-article-ici/">a</a>'
            b'<a href="/tag/maroc/">t</a><a href="https://other.ma/2025/04/14/ailleurs-et-long-titre/">x</a>'
            b"</body></html>")
    parsed = parse_source("section", page, SITE + "/politique/", "site.ma")
    assert [e.url for e in parsed.entries] == [SITE + "/2025/04/14/un-long-titre-d-article-ici/"]


def test_garbage_is_a_problem_not_an_exception() -> None:
    for kind in ("feed", "sitemap", "wp_json"):
        parsed = parse_source(kind, b"\x00\xff garbage", SITE + "/x", "site.ma")
        assert parsed.problem and not parsed.entries


# ------------------------------------------------------------------ reports and helpers


def test_a_source_works_when_a_crawl_gets_articles_from_it() -> None:
    when = datetime(2025, 4, 14, tzinfo=UTC)
    assert SourceReport("feed", "u", ("200",), "ok", items=3, usable=3, newest=when).working
    assert SourceReport("feed", "u", ("301", "200"), "moved", items=3, usable=3).working
    assert not SourceReport("feed", "u", ("301",), "moved", "→ elsewhere").working
    assert not SourceReport("robots", "u", ("200",), "ok").working
    assert not SourceReport("feed", "u", ("403",), "blocked").working
    report = SourceReport("feed", "u", ("200",), "ok", items=1, usable=1, newest=when).as_json()
    assert report["newest"] == "2025-04-14T00:00:00+00:00" and report["working"] is True


@pytest.mark.parametrize(("url", "slug"), [
    ("https://www.hespress.com/politique", "hespress"),
    ("https://fr.le360.ma/", "fr-le360"),
    ("http://127.0.0.1:8000/", "127-0-0-1"),
])
def test_a_site_gets_a_slug_and_a_root(url: str, slug: str) -> None:
    assert slug_for(url) == slug
    assert site_root(url).endswith("/") and site_root(url).count("/") == 3


def test_the_home_pages_language() -> None:
    assert page_language(b'<html lang="fr-FR"><body>x</body></html>') == "fr"
    assert page_language(b'<html dir="rtl" lang="ar"><body>x</body></html>') == "ar"
    assert page_language(b"<html><body>x</body></html>") is None
    assert page_language(b"") is None
