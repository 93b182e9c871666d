"""The outlet spider without a server, as Scrapy's own tests/test_spider_sitemap.py does it.

The spider is built by `OutletSpider.from_crawler(get_crawler(...), outlet=..., context=...)`;
responses are `XmlResponse` / `HtmlResponse` built inline around the very requests it
yielded (so their meta is the spider's own), and the tests assert on what it yields back:
URLs, callbacks, priorities, and what it refuses (off-origin, already settled, too deep).
The only storage is a SQLite file in tmp_path (settled URLs, conditional-GET validators).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import HtmlResponse, Request, Response, TextResponse, XmlResponse
from scrapy.utils.test import get_crawler

from veille.crawler.canonical import canonical_url
from veille.crawler.items import Redirected
from veille.crawler.settings import SITEMAP_MAX_DEPTH
from veille.crawler.spiders.context import CrawlContext
from veille.crawler.spiders.outlet import (
    CHILD_SITEMAP_PRIORITY,
    SITEMAP_PRIORITY,
    SOURCE_PRIORITY,
    WP_POSTS,
    OutletSpider,
)
from veille.pipeline.config import config_from_dict
from veille.pipeline.types import RawPage
from veille.storage import pages as page_store
from veille.storage.db import Database

SITE = "https://www.example.ma"
FEED = f"{SITE}/feed/"
INDEX = f"{SITE}/sitemap_index.xml"
NEWS = f"{SITE}/sitemap-news.xml"
SECTION = f"{SITE}/politique/"
ROBOTS = f"{SITE}/robots.txt"
ARTICLE_PATTERN = r"/politique/[a-z0-9-]+-\d{5,}\.html$"


def article(slug: str, n: int) -> str:
    return f"{SITE}/politique/{slug}-{n}.html"


def outlet_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "exemple",
        "url": f"{SITE}/",
        "language": "fr",
        "feeds": [FEED],
        "sitemaps": [INDEX],
        "sections": [SECTION],
        "article_pattern": ARTICLE_PATTERN,
    }
    entry.update(overrides)
    return entry


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'spider.db'}")
    yield database
    database.dispose()


def make_spider(db: Database, *, settings: dict[str, Any] | None = None,
                crawl: dict[str, Any] | None = None, **outlet: Any) -> OutletSpider:
    cfg = config_from_dict({
        "database": {"url": db.url},
        "crawl": {"sitemap_max_age_days": 3650, **(crawl or {})},
        "outlets": [outlet_entry(**outlet)],
    })
    context = CrawlContext(cfg, db)
    crawler = get_crawler(OutletSpider, settings)
    spider = OutletSpider.from_crawler(crawler, outlet=cfg.outlets[0], context=context)
    assert isinstance(spider, OutletSpider)
    return spider


def start_requests(spider: OutletSpider) -> list[Request]:
    async def collect() -> list[Request]:
        return [r async for r in spider.start()]

    return asyncio.run(collect())


def source(spider: OutletSpider, url: str) -> Request:
    """The spider's own request for one of its configured sources."""
    found = [r for r in start_requests(spider) if r.url == url]
    assert len(found) == 1, f"{url} not among the start requests"
    return found[0]


def respond(request: Request, body: bytes | str, cls: type[TextResponse] = XmlResponse,
            status: int = 200, headers: dict[str, str] | None = None,
            url: str | None = None) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return cls(url=url or request.url, body=data, status=status, headers=headers,
               request=request, encoding="utf-8")


def spider_canonical(url: str) -> str:
    canon = canonical_url(url)
    assert canon is not None
    return canon


def urls(requests: list[Any]) -> list[str]:
    return [r.url for r in requests]


def rss(*items: tuple[str, str]) -> str:
    """An RSS 2.0 feed of (link, pubDate) items."""
    body = "".join(f"<item><title>t</title><link>{link}</link><pubDate>{date}</pubDate></item>"
                   for link, date in items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{body}</channel></rss>'


def sitemap_index(*locs: str) -> str:
    body = "".join(f"<sitemap><loc>{loc}</loc><lastmod>2025-04-14</lastmod></sitemap>" for loc in locs)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>')


def news_sitemap(*entries: tuple[str, str]) -> str:
    body = "".join(
        f"<url><loc>{loc}</loc><news:news><news:publication>"
        "<news:name>Exemple</news:name><news:language>fr</news:language></news:publication>"
        f"<news:publication_date>{date}</news:publication_date><news:title>t</news:title>"
        "</news:news></url>"
        for loc, date in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{body}</urlset>')


# -- sources -------------------------------------------------------------------------------


def test_start_requests_every_configured_source_feeds_first_sitemaps_after(db: Database) -> None:
    spider = make_spider(db, wp_json=True)
    requests = start_requests(spider)
    by_url = {r.url: r for r in requests}
    assert urls(requests) == [FEED, INDEX, SECTION, SITE + WP_POSTS]
    assert [by_url[u].meta["kind"] for u in urls(requests)] == ["feed", "sitemap", "section", "wp_json"]
    assert by_url[FEED].priority == by_url[SECTION].priority == SOURCE_PRIORITY
    assert by_url[INDEX].priority == SITEMAP_PRIORITY < SOURCE_PRIORITY
    for r in requests:
        assert r.callback == spider.parse_source and r.errback == spider.source_failed
        assert r.dont_filter and r.meta["allow_offsite"] is False
        assert r.meta["sitemap_depth"] == 0
        assert 304 in r.meta["handle_httpstatus_list"]
    assert spider.tally.sources == 4
    assert spider.allowed_domains == ["example.ma"]


def test_google_news_source_is_the_only_one_allowed_off_site(db: Database) -> None:
    spider = make_spider(db, feeds=[], sitemaps=[], sections=[], google_news=True)
    [request] = start_requests(spider)
    assert request.meta["kind"] == "google_news"
    assert request.meta["allow_offsite"] is True
    assert "news.google.com" in request.url and "example.ma" in request.url


def test_source_request_carries_the_stored_validators(db: Database) -> None:
    with db.transaction() as s:
        page_store.save_feed_validators(s, FEED, '"v1"', "Mon, 14 Apr 2025 17:42:00 GMT", full_fetch=True)
    spider = make_spider(db)
    feed = source(spider, FEED)
    assert feed.headers.get("If-None-Match") == b'"v1"'
    assert feed.headers.get("If-Modified-Since") == b"Mon, 14 Apr 2025 17:42:00 GMT"
    assert feed.meta["conditional"] is True
    assert source(make_spider(db), SECTION).meta["conditional"] is False  # nothing stored for it

    assert list(spider.parse_source(respond(feed, b"", status=304))) == []
    assert spider.tally.not_modified == 1 and FEED in spider.tally.touched


# -- a feed --------------------------------------------------------------------------------


def test_feed_articles_requested_newest_first_on_origin_only(db: Database) -> None:
    spider = make_spider(db)
    feed = source(spider, FEED)
    old, new = article("ancien", 11111), article("recent", 22222)
    body = rss(
        (old, "Sat, 12 Apr 2025 08:00:00 GMT"),
        (new + "?utm_source=rss#top", "Mon, 14 Apr 2025 08:00:00 GMT"),
        ("https://evil.example.com/politique/piege-33333.html", "Mon, 14 Apr 2025 09:00:00 GMT"),
        (f"{SITE}:8443/politique/autre-port-44444.html", "Mon, 14 Apr 2025 09:00:00 GMT"),
        (f"{SITE}/politique/declaration-55555.pdf", "Mon, 14 Apr 2025 09:00:00 GMT"),
        (f"{SITE}/tag/securite/", "Mon, 14 Apr 2025 09:00:00 GMT"),  # not the article pattern
    )
    requests = list(spider.parse_source(respond(feed, body)))
    assert urls(requests) == [new, old]  # tracking parameter and fragment gone
    assert [r.priority for r in requests] == [-1, -2]
    assert all(r.callback == spider.parse_article and r.errback == spider.article_failed
               for r in requests)
    assert [r.meta["source"] for r in requests] == [FEED, FEED]
    assert spider.tally.refused == 2  # the other host and the other port, counted and named
    assert any("evil.example.com" in e and "not on the outlet's origin" in e
               for e in spider.tally.counts.errors)
    assert spider.tally.counts.discovered == 2
    assert FEED in spider.tally.validators


def test_http_link_of_an_https_outlet_is_fetched_over_https(db: Database) -> None:
    spider = make_spider(db)
    feed = source(spider, FEED)
    link = article("clair", 12345).replace("https://", "http://")
    [request] = spider.parse_source(respond(feed, rss((link, "Mon, 14 Apr 2025 08:00:00 GMT"))))
    assert request.url == article("clair", 12345)
    assert spider.tally.refused == 0


def test_settled_and_already_requested_urls_are_not_requested_again(db: Database) -> None:
    settled, fresh, twice = article("connu", 10001), article("nouveau", 10002), article("double", 10003)
    spider = make_spider(db)
    with db.transaction() as s:
        outlet_id = page_store.ensure_outlet(s, "exemple", f"{SITE}/", "fr")
        page_store.record_page(s, spider_canonical(settled), outlet_id, "article")
    requests = start_requests(spider)
    feed = next(r for r in requests if r.url == FEED)
    first = list(spider.parse_source(respond(feed, rss(
        (settled, "Mon, 14 Apr 2025 08:00:00 GMT"),
        (fresh, "Mon, 14 Apr 2025 07:00:00 GMT"),
        (twice, "Mon, 14 Apr 2025 06:00:00 GMT"),
    ))))
    assert urls(first) == [fresh, twice]
    assert spider.tally.settled == 1

    section = next(r for r in requests if r.url == SECTION)  # the same article on a section page
    page = f'<html><body><a href="{twice}">encore</a><a href="/politique/autre-10004.html">x</a></body></html>'
    again = list(spider.parse_source(respond(section, page, HtmlResponse)))
    assert urls(again) == [article("autre", 10004)]


def test_budget_caps_article_requests_and_marks_the_source_cut_short(db: Database) -> None:
    spider = make_spider(db, crawl={"max_pages_per_outlet": 2})
    feed = source(spider, FEED)
    items = [(article(f"a{i}", 20000 + i), f"Mon, 14 Apr 2025 0{i}:00:00 GMT") for i in range(1, 4)]
    requests = list(spider.parse_source(respond(feed, rss(*items))))
    assert urls(requests) == [article("a3", 20003), article("a2", 20002)]
    assert spider.tally.over_budget == 1
    assert FEED in spider.tally.dirty  # its validators will not be saved: next run reads it whole


# -- a section page ------------------------------------------------------------------------


def test_section_page_yields_its_article_links_on_site_only(db: Database) -> None:
    spider = make_spider(db)
    section = source(spider, SECTION)
    page = f"""<html><body>
      <nav><a href="/">Accueil</a><a href="/tag/securite/">Sécurité</a></nav>
      <a href="/politique/hammouchi-a-paris-30001.html">Hammouchi à Paris</a>
      <a href="{SITE}/politique/dgsn-renforts-30002.html#comments">Renforts</a>
      <a href="https://autre.example.org/politique/ailleurs-30003.html">Ailleurs</a>
      <a href="/politique/hammouchi-a-paris-30001.html">Encore</a>
    </body></html>"""
    requests = list(spider.parse_source(respond(section, page, HtmlResponse)))
    assert urls(requests) == [article("hammouchi-a-paris", 30001), article("dgsn-renforts", 30002)]
    assert [r.priority for r in requests] == [-1, -2]
    assert all(r.meta["source"] == SECTION for r in requests)


def test_an_html_page_where_a_feed_was_expected_is_a_source_error(db: Database) -> None:
    spider = make_spider(db)
    feed = source(spider, FEED)
    page = "<html><head><title>Just a moment...</title></head><body>challenge</body></html>"
    assert list(spider.parse_source(respond(feed, page, HtmlResponse, status=200))) == []
    assert spider.tally.sources_failed == 1 and spider.tally.sources_ok == 0
    assert any(e.startswith(FEED) for e in spider.tally.counts.errors)


# -- sitemaps ------------------------------------------------------------------------------


def test_sitemap_index_children_wait_behind_articles_off_origin_refused(db: Database) -> None:
    spider = make_spider(db)
    index = source(spider, INDEX)
    body = sitemap_index(NEWS, f"{SITE}/sitemap-politique.xml", "https://cdn.elsewhere.net/sitemap.xml")
    requests = list(spider.parse_source(respond(index, body)))
    assert urls(requests) == [NEWS, f"{SITE}/sitemap-politique.xml"]
    for r in requests:
        assert r.meta["kind"] == "sitemap" and r.meta["sitemap_depth"] == 1
        assert r.priority == CHILD_SITEMAP_PRIORITY  # below every article (-1, -2, ...)
        assert r.callback == spider.parse_source
    assert spider.tally.refused == 1
    assert INDEX not in spider.tally.validators  # an index is never asked conditionally


def test_news_sitemap_yields_articles_and_drops_entries_past_the_age_cutoff(db: Database) -> None:
    spider = make_spider(db, crawl={"sitemap_max_age_days": 3}, sitemaps=[NEWS])
    news = source(spider, NEWS)
    body = news_sitemap(
        (article("vieux", 40001), "2024-07-21T10:00:00+00:00"),
        (article("hier", 40002), "2025-04-13T10:00:00+00:00"),
        (article("aujourdhui", 40003), "2025-04-14T10:00:00+00:00"),
        ("https://evil.example.com/politique/piege-40004.html", "2025-04-14T11:00:00+00:00"),
    )
    requests = list(spider.parse_source(respond(news, body)))
    assert urls(requests) == [article("aujourdhui", 40003), article("hier", 40002)]
    assert all(r.callback == spider.parse_article for r in requests)
    assert NEWS in spider.tally.validators  # a urlset keeps its validators


def test_sitemap_depth_is_bounded(db: Database) -> None:
    spider = make_spider(db, settings={"VEILLE_SITEMAP_MAX_DEPTH": 1})
    assert spider.sitemap_max_depth == 1
    index = source(spider, INDEX)
    [child] = spider.parse_source(respond(index, sitemap_index(f"{SITE}/sitemap-2.xml")))
    assert child.meta["sitemap_depth"] == 1

    nested = sitemap_index(f"{SITE}/sitemap-3.xml")  # an index below an index: one level too deep
    assert list(spider.parse_source(respond(child, nested))) == []
    assert spider.tally.sitemaps_truncated == ["depth limit (1 levels of index)"]
    assert spider.tally.counts.errors[0].startswith(f"{SITE}/sitemap-2.xml: sitemaps truncated")


def test_default_depth_follows_index_of_index_then_stops(db: Database) -> None:
    spider = make_spider(db)
    request = source(spider, INDEX)
    for level in range(1, SITEMAP_MAX_DEPTH + 1):
        [request] = spider.parse_source(respond(request, sitemap_index(f"{SITE}/level-{level}.xml")))
        assert request.meta["sitemap_depth"] == level
        assert request.priority == CHILD_SITEMAP_PRIORITY * level
    assert list(spider.parse_source(respond(request, sitemap_index(f"{SITE}/too-deep.xml")))) == []
    assert len(spider.tally.sitemaps_truncated) == 1


def test_sitemap_requests_are_capped_per_crawl(db: Database) -> None:
    spider = make_spider(db, settings={"VEILLE_SITEMAP_MAX_REQUESTS": 3})
    index = source(spider, INDEX)  # the configured index is request 1 of 3
    children = [f"{SITE}/sitemap-{i}.xml" for i in range(1, 6)]
    requests = list(spider.parse_source(respond(index, sitemap_index(*children))))
    assert len(requests) == 2
    assert spider.sitemap_requests == 3
    assert spider.tally.sitemaps_truncated == ["count limit (3 requests)"]


def test_robots_txt_sitemap_lines_count_as_configured_sitemaps(db: Database) -> None:
    spider = make_spider(db, feeds=[], sections=[], sitemaps=[ROBOTS])
    robots = source(spider, ROBOTS)
    body = ("User-agent: *\nDisallow: /prive/\n"
            f"Sitemap: {NEWS}\nSitemap: https://tracker.example.net/sitemap.xml\n")
    requests = list(spider.parse_source(respond(robots, body, TextResponse)))
    assert urls(requests) == [NEWS]
    assert requests[0].meta["kind"] == "sitemap" and requests[0].meta["sitemap_depth"] == 0
    assert requests[0].priority == SITEMAP_PRIORITY
    assert spider.tally.refused == 1


# -- articles ------------------------------------------------------------------------------


def test_article_response_becomes_a_raw_page_and_a_redirect_is_folded(db: Database) -> None:
    spider = make_spider(db)
    feed = source(spider, FEED)
    old, moved, plain = article("ancien-titre", 50001), article("nouveau-titre", 50002), article("x", 50003)
    requests = list(spider.parse_source(respond(feed, rss(
        (old, "Mon, 14 Apr 2025 08:00:00 GMT"), (plain, "Mon, 14 Apr 2025 07:00:00 GMT")))))
    assert urls(requests) == [old, plain]
    html = "<html><body><p>texte</p></body></html>"

    [page] = spider.parse_article(respond(requests[1], html, HtmlResponse,
                                          headers={"Content-Type": "text/html; charset=utf-8"}))
    assert isinstance(page, RawPage)
    assert (page.url, page.outlet, page.status, page.language_hint) == (spider_canonical(plain), "exemple", 200, "fr")
    assert page.headers["content-type"] == "text/html; charset=utf-8"

    [folded] = spider.parse_article(respond(requests[0], html, HtmlResponse, url=moved))
    assert isinstance(folded, Redirected)
    assert folded.page.url == spider_canonical(moved) and folded.page.final_url == moved
    assert spider_canonical(moved) in spider.seen  # never requested again in this run
    assert spider.tally.counts.fetched == 2
