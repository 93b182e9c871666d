"""The one generic outlet spider: discover article URLs from an outlet's config, fetch new ones.

One instance per outlet (`name` = the outlet slug, so Scrapy's stats are per outlet).
Discovery requests (feeds, sitemaps, sections, wp-json, Google News) are conditional GETs
from stored validators; their entries are canonicalised, filtered (same site,
`article_pattern`, already settled in storage) and only then requested, newest first,
at most `max_pages_per_outlet` per run. Article responses leave as items (`RawPage`, or
those of `crawler.items`) for `crawler.pipelines`. Parsing lives in `crawler.discovery`;
this module only builds requests and counts.

The spider de-duplicates URLs itself (canonical URLs), so its requests carry
`dont_filter`: Scrapy's dupefilter would otherwise silently drop a redirect towards a
page already requested. `RedirectGuardMiddleware` keeps redirects on the site.

Every URL an outlet hands us (feed item, sitemap entry or child sitemap, section link,
redirect) must be on the outlet's origin — scheme, host and port of its URL — and at a
public address unless the outlet's own URL is a private one (`crawler.origin`); a
refused URL is counted (`OutletTally.refused`) and logged with its reason.

Sitemap indexes can nest without end (a trap, or a broken CMS): an index is followed
at most `VEILLE_SITEMAP_MAX_DEPTH` levels below a configured sitemap, an outlet makes at
most `VEILLE_SITEMAP_MAX_REQUESTS` sitemap requests per crawl, and sitemaps wait behind
feeds, sections and wp-json (child sitemaps even behind the articles already found), so
a trap costs a bounded number of requests, never the outlet's articles. A truncation is noted in the run's
errors ("sitemaps truncated: ...") for the summary and `veille status`.
An article reached through a redirect is stored under its final (canonical) URL, and
the URL that redirected is folded into it (`Redirected`), so neither is fetched again.

With a shared queue (`crawl.queue`, see crawler.frontier) the same spider is a worker:
discovery requests stay local (meta LOCAL), each article URL is claimed in Redis before
it is requested (one worker fetches it, whichever discovered it first), and the spider
stays open while the shared queue may still receive requests from other workers.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Request, Response
from scrapy.utils.sitemap import sitemap_urls_from_robots
from twisted.python.failure import Failure

from veille.crawler import discovery as d
from veille.crawler.canonical import canonical_url, fetch_url, site_domain
from veille.crawler.frontier import LOCAL
from veille.crawler.items import ClaimedAlias, Redirected
from veille.crawler.middlewares import (
    OffOrigin,
    RedirectClaimed,
    describe_failure,
    is_challenge,
    is_robots_refusal,
)
from veille.crawler.origin import Origin, names_private_address
from veille.crawler.settings import SITEMAP_MAX_DEPTH, SITEMAP_MAX_REQUESTS
from veille.crawler.spiders.context import CrawlContext, OutletTally
from veille.pipeline.config import OutletConfig
from veille.pipeline.types import RawPage

SOURCE_PRIORITY = 100  # feeds, sections, wp-json, Google News: direct lists of articles
SITEMAP_PRIORITY = 50  # configured sitemaps: after feeds, before articles
CHILD_SITEMAP_PRIORITY = -1000  # per level of index: after the articles already found
REDIRECTS = [301, 302, 303, 307, 308]
MAX_CHILD_SITEMAPS = 20
WP_POSTS = "/wp-json/wp/v2/posts?per_page=50&_fields=link,date_gmt,title"


class OutletSpider(scrapy.Spider):
    name = "outlet"

    def __init__(self, outlet: OutletConfig, context: CrawlContext, **kwargs: Any) -> None:
        super().__init__(name=outlet.name, **kwargs)
        self.outlet = outlet
        self.context = context
        self.tally: OutletTally = context.tally(outlet.name)
        self.domain = site_domain(outlet.url)
        self.allowed_domains = [self.domain]
        self.origin = Origin.of(outlet.url)
        self.private_ok = names_private_address(outlet.url)  # read by AddressGuardMiddleware
        self.pattern = re.compile(outlet.article_pattern) if outlet.article_pattern else None
        crawl = context.cfg.crawl
        self.budget = crawl.max_pages_per_outlet
        self.max_age = crawl.sitemap_max_age_days
        self.timeout = crawl.timeout
        self.seen: set[str] = set()  # canonical article URLs requested in this run
        self.sources_seen: set[str] = set()
        self._idle_since: float | None = None  # shared queue: when this spider fell idle
        self._idle_mark = -1
        self.sitemap_max_depth = SITEMAP_MAX_DEPTH  # from_crawler reads the settings
        self.sitemap_max_requests = SITEMAP_MAX_REQUESTS
        self.sitemap_requests = 0  # made in this crawl

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> OutletSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.sitemap_max_depth = crawler.settings.getint("VEILLE_SITEMAP_MAX_DEPTH", SITEMAP_MAX_DEPTH)
        spider.sitemap_max_requests = crawler.settings.getint("VEILLE_SITEMAP_MAX_REQUESTS",
                                                              SITEMAP_MAX_REQUESTS)
        crawler.signals.connect(spider._spider_error, signal=signals.spider_error)
        if spider.context.frontier is not None:
            crawler.signals.connect(spider._spider_idle, signal=signals.spider_idle)
        return spider

    # sources ---------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Request]:
        o = self.outlet
        for kind, urls in (("feed", o.feeds), ("sitemap", o.sitemaps), ("section", o.sections)):
            for url in urls:
                for request in self.source_request(url, kind):
                    yield request
        if o.wp_json:
            for request in self.source_request(o.url.rstrip("/") + WP_POSTS, "wp_json"):
                yield request
        if o.google_news:
            url = d.google_news_search_url(site_domain(o.url), o.language)
            for request in self.source_request(url, "google_news", allow_offsite=True):
                yield request

    def source_request(self, url: str, kind: str, *, allow_offsite: bool = False,
                       depth: int = 0) -> Iterator[Request]:
        """A (conditional) request for a source; `depth`: levels of sitemap index above it."""
        if url in self.sources_seen:
            return
        priority = SOURCE_PRIORITY
        if kind == "sitemap":
            if self.sitemap_requests >= self.sitemap_max_requests:
                self.tally.truncate(url, f"count limit ({self.sitemap_max_requests} requests)")
                return
            self.sitemap_requests += 1
            priority = CHILD_SITEMAP_PRIORITY * depth if depth else SITEMAP_PRIORITY
        self.sources_seen.add(url)
        self.tally.sources += 1
        headers = self.context.conditional_headers(url)
        meta = {"kind": kind, "source": url, "conditional": bool(headers), "sitemap_depth": depth,
                "handle_httpstatus_list": [304], "allow_offsite": allow_offsite, LOCAL: True}
        yield Request(url, callback=self.parse_source, errback=self.source_failed,
                      headers=headers, meta=meta, priority=priority, dont_filter=True)

    def on_origin(self, url: str) -> str | None:
        """`url` (upgraded to https if the outlet is) when it is on the outlet's origin;
        otherwise None, and the refusal is counted and logged."""
        adopted, why = self.origin.adopt(url)
        if adopted is None:
            self.tally.refuse(url, f"not on the outlet's origin ({why})")
        return adopted

    def parse_source(self, response: Response) -> Iterator[Request]:
        kind, source = response.meta["kind"], response.meta["source"]
        if response.status == 304:
            self.tally.not_modified += 1
            self.tally.touched.add(source)
            self.crawler.stats.inc_value("veille/source_not_modified")
            return
        try:
            if kind == "sitemap":
                requests = list(self._sitemap(response))
            elif kind == "section":
                entries = d.parse_listing(response.body, response.url, self.domain, self.pattern)
            elif kind == "wp_json":
                entries = d.newest_first(d.parse_wp_json(response.body, response.url))
            else:  # feed, google_news
                entries = d.newest_first(d.parse_feed(response.body, response.url))
        except d.NotAFeed as exc:
            blocked = is_challenge(response.status, response.headers, response.body)
            self._source_error(source, f"{exc} ({_ctype(response) or 'no content type'})",
                               blocked=blocked)
            return
        self.tally.sources_ok += 1
        if kind == "sitemap":
            yield from requests
            return
        self._remember_validators(response)
        if kind == "google_news":
            yield from self._resolve_google(entries, source)
        else:
            yield from self.article_requests(entries, source, check_pattern=kind != "section")

    def _sitemap(self, response: Response) -> Iterator[Request]:
        """Child sitemaps of an index, or article requests of a urlset (validators kept)."""
        source, depth = response.meta["source"], response.meta.get("sitemap_depth", 0)
        if response.url.endswith("/robots.txt"):  # its sitemaps count as configured ones
            for url in sitemap_urls_from_robots(response.body, base_url=response.url):
                if (target := self.on_origin(url)) is not None:
                    yield from self.source_request(target, "sitemap", depth=depth)
            return
        doc = d.parse_sitemap(response.body, response.url,
                              max_size=self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
        entries = d.newest_first(doc.entries, self.max_age)
        if doc.kind == "sitemapindex":  # stays unconditional: its children may change alone
            if depth >= self.sitemap_max_depth:
                self.tally.truncate(source, f"depth limit ({self.sitemap_max_depth} levels of index)")
                return
            for child in entries[:MAX_CHILD_SITEMAPS]:
                if (target := self.on_origin(child.url)) is not None:
                    yield from self.source_request(target, "sitemap", depth=depth + 1)
            return
        self._remember_validators(response)
        yield from self.article_requests(entries, source, check_pattern=True)

    def _remember_validators(self, response: Response) -> None:
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        self.tally.validators[response.meta["source"]] = (
            etag.decode("latin-1") if etag else None,
            modified.decode("latin-1") if modified else None,
            not response.meta.get("conditional"),
        )

    def source_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        if isinstance(failure.value, OffOrigin):
            self.tally.refused += 1
        if is_robots_refusal(failure):
            self.tally.robots_forbidden += 1
            self._source_error(request.url, "disallowed by robots.txt")
            return
        info = describe_failure(failure, self.timeout)
        self._source_error(request.meta.get("source", request.url), info.reason, blocked=info.blocked)

    def _source_error(self, url: str, reason: str, *, blocked: bool = False) -> None:
        self.tally.sources_failed += 1
        self.tally.sources_blocked += blocked
        self.tally.error(url, reason)

    # Google News: item links are redirects to the outlet's article ---------------------
    def _resolve_google(self, entries: list[d.Entry], source: str) -> Iterator[Request]:
        for rank, entry in enumerate(entries[: self.budget]):
            yield Request(entry.url, callback=self._google_target, errback=self.article_failed,
                          priority=-rank, dont_filter=True, meta={
                              "source": source, "allow_offsite": True, "dont_redirect": True, LOCAL: True,
                              "handle_httpstatus_list": REDIRECTS, "canonical": entry.url})

    def _google_target(self, response: Response) -> Iterator[Request]:
        location = response.headers.get("Location")
        target = (urljoin(response.url, location.decode("latin-1")) if location else
                  d.google_news_target(response.body, self.domain))
        if not target:
            self.tally.error(response.url, "no link to the outlet in the Google News item")
            return
        yield from self.article_requests([d.Entry(target)], response.meta["source"],
                                         check_pattern=True)

    # articles ----------------------------------------------------------------------------
    def article_requests(self, entries: Iterable[d.Entry], source: str,
                         check_pattern: bool) -> Iterator[Request]:
        """Requests for the entries not seen in this run, not settled in storage and (with a
        shared queue) not claimed by another worker."""
        fresh: list[tuple[str, str]] = []
        for entry in entries:
            url = fetch_url(entry.url)
            if url is None or (url := self.on_origin(url)) is None:
                continue
            canon = canonical_url(url)
            if canon is None or canon in self.seen or d.NON_HTML_EXTENSION.search(url.split("?")[0]):
                continue
            if check_pattern and self.pattern is not None and not d.matches(self.pattern, url):
                continue
            self.seen.add(canon)
            fresh.append((url, canon))
        self.tally.counts.discovered += len(fresh)
        settled = self.context.settled(c for _, c in fresh) if fresh else set()
        self.tally.settled += len(settled)
        pending = [(u, c) for u, c in fresh if c not in settled]
        rank = 0
        while pending and self.budget > 0:
            batch, pending = pending[: self.budget], pending[self.budget:]
            mine = self.context.claim(c for _, c in batch)
            for url, canon in batch:
                if canon not in mine:  # another worker has it
                    self.tally.claimed_elsewhere += 1
                    continue
                self.budget -= 1
                rank += 1
                yield Request(url, callback=self.parse_article, errback=self.article_failed,
                              priority=-rank, dont_filter=True,
                              meta={"canonical": canon, "source": source})
        if rank:
            self.context.queued_articles(rank)
        if pending:
            self.tally.over_budget += len(pending)
            self.tally.dirty.add(source)

    def parse_article(self, response: Response) -> Iterator[RawPage | Redirected]:
        self.tally.counts.fetched += 1
        requested = response.meta["canonical"]
        final = canonical_url(response.url) or requested
        if final != requested and self.origin.adopt(response.url)[0] != response.url:
            final = requested  # allowed off-site (Google News): keep the outlet's URL
        self.seen.add(final)
        page = RawPage(
            url=final,
            final_url=response.url,
            outlet=self.outlet.name,
            status=response.status,
            headers={k.decode("latin-1").lower(): b", ".join(response.headers.getlist(k)).decode("latin-1")
                     for k in response.headers},
            body=response.body,
            fetched_at=datetime.now(UTC),
            language_hint=self.outlet.language,
        )
        yield page if final == requested else Redirected(page, requested)

    def claim_redirect(self, request: Request) -> bool:
        """With a shared queue: may this redirected article request be fetched here?

        A redirect to the URL requested (a slash, an escape) always; to another article
        URL only if this worker can claim it, otherwise its holder fetches it and the
        URL that redirected is folded into it when the run ends.
        """
        requested = request.meta.get("canonical")
        if self.context.frontier is None or requested is None:
            return True
        target = canonical_url(request.url)
        if target is None or target in (requested, request.meta.get("claimed")):
            return True
        if target in self.seen or not self.context.claim([target]):
            return False
        request.meta["claimed"] = target  # a retry of this request keeps its claim
        self.seen.add(target)
        return True

    def article_failed(self, failure: Failure) -> list[ClaimedAlias]:
        request = failure.request  # type: ignore[attr-defined]
        url = request.meta.get("canonical", request.url)
        if isinstance(failure.value, RedirectClaimed):
            self.tally.claimed_elsewhere += 1
            return [ClaimedAlias(self.outlet.name, url, failure.value.target)]
        if is_robots_refusal(failure):
            self.tally.robots_forbidden += 1
            self.crawler.stats.inc_value("veille/robots_forbidden")
            return []
        if isinstance(failure.value, OffOrigin):
            self.tally.refused += 1
        info = describe_failure(failure, self.timeout)
        self.tally.articles_failed += 1
        self.tally.articles_blocked += info.blocked
        if info.transient:  # retried next run: its source must then answer 200, not 304
            self.tally.articles_unreachable += 1
            self.tally.dirty.add(request.meta.get("source", ""))
            self.context.release(url, request.meta.get("claimed"))
        self.tally.error(url, info.reason)
        return []

    # signals -------------------------------------------------------------------------------
    def _spider_error(self, failure: Failure, response: Response, spider: scrapy.Spider) -> None:
        if spider is self:
            self.tally.error(response.url, f"crawler error: {failure.getErrorMessage()}")

    def _spider_idle(self, spider: scrapy.Spider) -> None:
        """Shared queue: stay open until it has been empty for `frontier.idle` seconds."""
        frontier = self.context.frontier
        if spider is not self or frontier is None:
            return
        now = time.monotonic()
        taken = self.crawler.stats.get_value("scheduler/dequeued/redis", 0)
        if taken != self._idle_mark or self._idle_since is None:  # work came since
            self._idle_mark, self._idle_since = taken, now
        if now - self._idle_since < frontier.idle:
            raise DontCloseSpider

    async def closed(self, reason: str) -> None:
        self.tally.close_reason = reason
        await self.context.close_outlet(self.tally, finished=reason == "finished")


def _ctype(response: Response) -> str:
    value = response.headers.get("Content-Type")
    return value.decode("latin-1").split(";")[0].strip() if value else ""
