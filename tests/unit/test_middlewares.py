"""crawler/middlewares without a server, as Scrapy's own middleware tests do it.

Each middleware is built by Scrapy from `get_crawler()` with the crawl's settings and handed
inline `Request` / `Response` objects; the spider is a small one carrying what ours carry
(`origin`, `claim_redirect`, `private_ok`, `context`). Where a middleware works with one of
Scrapy's (RetryMiddleware after ChallengeMiddleware) the real one is used. The robots.txt
download is answered by a stand-in engine, as Scrapy's robots.txt tests do, so three
requests can wait on one robots.txt. `describe_failure` gets the exceptions Scrapy and
Twisted raise, and hypothesis checks its reason is one line whatever the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.resolver import dnscache
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils._download_handlers import get_maxsize_msg
from scrapy.utils.test import get_crawler
from twisted.internet import error as tx_error
from twisted.python.failure import Failure

from veille.crawler.middlewares import (
    AddressGuardMiddleware,
    ChallengeMiddleware,
    OffOrigin,
    RedirectClaimed,
    RedirectGuardMiddleware,
    RobotsTxtMiddleware,
    SharedPaceMiddleware,
    describe_failure,
    is_robots_refusal,
)
from veille.crawler.origin import Origin
from veille.crawler.settings import build_settings
from veille.pipeline.config import CrawlConfig

SITE = "https://www.example.ma"


class OutletLike(Spider):
    """What the middlewares read of an outlet spider (crawler.spiders.outlet)."""

    name = "exemple"
    origin = Origin.of(SITE + "/")
    private_ok = False
    context: Any = None
    claimed: set[str] = set()

    def claim_redirect(self, request: Request) -> bool:
        return request.url not in self.claimed


def crawler(spider: type[Spider] = OutletLike, **crawl: Any) -> Crawler:
    """A crawler with the run's settings and its spider created, as a crawl has them."""
    c = get_crawler(spider, build_settings(CrawlConfig(**crawl)))
    c.spider = c._create_spider()
    return c


def redirected(url: str, *previous: str, **meta: Any) -> Request:
    """The request RedirectMiddleware makes for a redirect after `previous` URLs."""
    return Request(url, meta={"redirect_urls": list(previous), **meta}, dont_filter=True)


def response(request: Request, status: int = 200, headers: dict[str, str] | None = None,
             body: bytes = b"<html></html>") -> Response:
    return HtmlResponse(request.url, status=status, headers=headers, body=body, request=request)


# --------------------------------------------------------------------------- challenges


def test_a_bot_challenge_is_not_retried_and_is_counted() -> None:
    c = crawler(retries=2)
    challenge, retry = ChallengeMiddleware.from_crawler(c), RetryMiddleware.from_crawler(c)
    request = Request(SITE + "/politique/a-12345.html")
    answer = response(request, 503, {"server": "cloudflare", "cf-ray": "8f3a-CDG"})
    assert retry.process_response(request, challenge.process_response(request, answer)) is answer
    assert c.stats is not None and c.stats.get_value("veille/challenge") == 1


def test_a_server_that_is_down_is_still_retried() -> None:
    c = crawler(retries=2)
    challenge, retry = ChallengeMiddleware.from_crawler(c), RetryMiddleware.from_crawler(c)
    request = Request(SITE + "/politique/a-12345.html")
    answer = response(request, 503, {"server": "nginx"}, b"Service Unavailable")
    again = retry.process_response(request, challenge.process_response(request, answer))
    assert isinstance(again, Request) and again.url == request.url
    assert c.stats is not None and c.stats.get_value("veille/challenge") is None


def test_a_challenge_header_on_a_page_that_came_through_is_left_alone() -> None:
    c = crawler()
    request = Request(SITE + "/")
    ChallengeMiddleware.from_crawler(c).process_response(request, response(request, 200, {"cf-mitigated": "challenge"}))
    assert "dont_retry" not in request.meta


# --------------------------------------------------------------------------- redirects


def test_the_first_request_of_a_url_is_not_a_redirect_to_judge() -> None:
    guard = RedirectGuardMiddleware.from_crawler(crawler())
    assert guard.process_request(Request("https://elsewhere.example/")) is None


def test_a_redirect_back_to_a_url_already_visited_is_a_loop() -> None:
    guard = RedirectGuardMiddleware.from_crawler(crawler())
    with pytest.raises(IgnoreRequest, match="redirect loop"):
        guard.process_request(redirected(SITE + "/a", SITE + "/a", SITE + "/b"))


@pytest.mark.parametrize(("target", "why"), [
    ("https://tracker.example.net/a", "other host tracker.example.net"),
    ("https://www.example.ma:8443/admin", "other port 8443"),
    ("http://www.example.ma/a", "other scheme http"),  # a downgrade is refused, not upgraded
])
def test_a_redirect_off_the_outlets_origin_is_refused_with_its_reason(target: str, why: str) -> None:
    guard = RedirectGuardMiddleware.from_crawler(crawler())
    with pytest.raises(OffOrigin) as refused:
        guard.process_request(redirected(target, SITE + "/politique/a-12345.html"))
    assert why in str(refused.value)


def test_a_redirect_on_the_origin_passes_with_or_without_www() -> None:
    guard = RedirectGuardMiddleware.from_crawler(crawler())
    for target in (SITE + "/politique/b-1.html", "https://example.ma/politique/b-1.html"):
        assert guard.process_request(redirected(target, SITE + "/a")) is None
    # a request allowed off-site (a Google News item leaving news.google.com) is not judged
    assert guard.process_request(redirected("https://elsewhere.example/", SITE + "/a",
                                            allow_offsite=True)) is None


def test_a_redirect_to_an_article_claimed_elsewhere_names_both_urls() -> None:
    c = crawler()
    assert isinstance(c.spider, OutletLike)
    c.spider.claimed = {SITE + "/politique/b-1.html?utm_source=rss"}
    guard = RedirectGuardMiddleware.from_crawler(c)
    with pytest.raises(RedirectClaimed) as claimed:
        guard.process_request(redirected(SITE + "/politique/b-1.html?utm_source=rss", SITE + "/?p=1"))
    assert claimed.value.alias == SITE + "/?p=1"
    assert claimed.value.target == SITE + "/politique/b-1.html"  # canonical: tracking gone


# --------------------------------------------------------------------------- robots.txt


class RobotsTxt:
    """Stands in for the engine's download of robots.txt (`download_async`), held until
    `gate` is set, remembering what was asked."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.asked: list[str] = []
        self.gate = asyncio.Event()

    async def fetch(self, request: Request) -> Response:
        self.asked.append(request.url)
        await self.gate.wait()
        return TextResponse(request.url, body=self.body, request=request)


def test_every_request_waiting_for_robots_txt_gets_its_rules() -> None:
    """Scrapy hands the rules to the first waiter only (the others are let through as if
    there were no robots.txt): with three requests waiting, all three must be refused."""
    c = crawler()
    engine = RobotsTxt(b"User-agent: *\nDisallow: /private/\n")
    c.engine = SimpleNamespace(download_async=engine.fetch)  # type: ignore[assignment]
    robots = RobotsTxtMiddleware.from_crawler(c)

    async def three_at_once() -> list[BaseException | None]:
        tasks = [asyncio.ensure_future(robots.process_request(Request(f"{SITE}/private/{i}")))
                 for i in range(3)]
        while not engine.asked:
            await asyncio.sleep(0)
        engine.gate.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    outcomes = asyncio.run(three_at_once())
    assert engine.asked == [SITE + "/robots.txt"]  # fetched once for the site
    assert all(isinstance(o, IgnoreRequest) for o in outcomes), outcomes
    allowed = asyncio.run(robots.process_request(Request(SITE + "/politique/a-1.html")))
    assert allowed is None


# --------------------------------------------------------------------------- addresses


@pytest.fixture()
def clean_dnscache() -> Iterator[None]:
    before = dict(dnscache)
    yield
    dnscache.clear()
    dnscache.update(before)


@pytest.mark.usefixtures("clean_dnscache")
def test_a_host_resolving_to_a_private_address_is_refused_and_resolved_once() -> None:
    c = crawler()
    guard = AddressGuardMiddleware.from_crawler(c)
    for path in ("/admin", "/other"):
        with pytest.raises(OffOrigin, match=r"^localhost resolves to a non-public address \((127\.0\.0\.1|::1)\)$"):
            asyncio.run(guard.process_request(Request("http://localhost:8080" + path)))
    assert c.stats is not None and c.stats.get_value("veille/refused/private_address") == 2
    assert guard.addresses.cached("localhost") is not None
    assert "localhost" not in dnscache


@pytest.mark.usefixtures("clean_dnscache")
def test_a_public_address_is_pinned_for_the_download() -> None:
    guard = AddressGuardMiddleware.from_crawler(crawler())
    assert asyncio.run(guard.process_request(Request("http://93.184.216.34/a"))) is None
    assert dnscache["93.184.216.34"] == "93.184.216.34"


@pytest.mark.usefixtures("clean_dnscache")
def test_an_outlet_on_a_private_address_and_other_spiders_are_not_checked() -> None:
    class Replay(OutletLike):
        private_ok = True

    class NotOurs(Spider):
        name = "other"

    for spider in (Replay, NotOurs):
        guard = AddressGuardMiddleware.from_crawler(crawler(spider))
        assert asyncio.run(guard.process_request(Request("http://10.0.0.5/a"))) is None
        assert guard.addresses.cached("10.0.0.5") is None


# --------------------------------------------------------------------------- shared pace


class Turns:
    """A frontier's `pace`: how long each call says to wait, then 0 (our turn)."""

    def __init__(self, *waits: float) -> None:
        self.waits = list(waits)
        self.asked: list[tuple[str, float]] = []

    def pace(self, site: str, spacing: float) -> float:
        self.asked.append((site, spacing))
        return self.waits.pop(0) if self.waits else 0.0


class Context:
    def __init__(self, frontier: Turns | None) -> None:
        self.frontier = frontier


def test_a_request_waits_until_its_sites_turn_across_workers() -> None:
    c = crawler(queue="redis://127.0.0.1:1/0", download_delay=1.5)
    turns = Turns(0.001, 0.001)
    assert isinstance(c.spider, OutletLike)
    c.spider.context = Context(turns)
    pace = SharedPaceMiddleware.from_crawler(c)
    asyncio.run(pace.process_request(Request("http://127.0.0.1:8080/a")))
    assert turns.asked == [("127.0.0.1:8080", 1.5)] * 3  # the site is host and port


def test_without_a_frontier_or_a_delay_nothing_waits() -> None:
    turns = Turns(1000.0)  # asked, it would hold the request for ever
    for delay, context in ((0.0, Context(turns)), (2.0, Context(None)), (2.0, None)):
        c = crawler(queue="redis://127.0.0.1:1/0", download_delay=delay)
        assert isinstance(c.spider, OutletLike)
        c.spider.context = context
        asyncio.run(SharedPaceMiddleware.from_crawler(c).process_request(Request(SITE + "/")))
    assert turns.asked == []


# --------------------------------------------------------------------------- failures


def http_error(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Failure:
    request = Request(SITE + "/a")
    return Failure(HttpError(response(request, status, headers, body), "Ignoring non-200 response"))


@pytest.mark.parametrize(("failure", "reason", "blocked", "transient"), [
    (http_error(404), "HTTP 404", False, False),
    (http_error(500), "HTTP 500", False, True),
    (http_error(429), "HTTP 429", False, True),
    (http_error(403), "HTTP 403", True, False),
    (http_error(503, {"cf-ray": "1"}), "HTTP 503 (bot challenge)", True, False),
    (Failure(DownloadTimeoutError("Getting https://x took longer than 30 seconds.")),
     "timeout after 30s", False, True),
    (Failure(tx_error.DNSLookupError("no such host")), "DNS lookup failed", False, True),
    (Failure(tx_error.ConnectionRefusedError()), "connection refused", False, True),
    (Failure(IgnoreRequest("Forbidden by robots.txt")), "Forbidden by robots.txt", False, False),
    (Failure(IgnoreRequest("Filtered offsite request to 'evil.example'")),
     "off-site URL evil.example", False, False),
    (Failure(IgnoreRequest("max redirections reached")), "too many redirects (redirect loop?)", False, False),
    (Failure(DownloadCancelledError(get_maxsize_msg(9_000_000, 5_000_000, Request(SITE), expected=True))),
     "body larger than the size limit (crawl.max_page_bytes)", False, False),
    (Failure(ValueError("bad chunk\nat byte 12")), "ValueError: bad chunk", False, True),
    (Failure(ValueError()), "ValueError", False, True),
])
def test_a_failure_is_told_in_words_with_whether_to_retry_next_run(
        failure: Failure, reason: str, blocked: bool, transient: bool) -> None:
    info = describe_failure(failure, timeout=30)
    assert (info.reason, info.blocked, info.transient) == (reason, blocked, transient)


def test_robots_refusals_are_told_apart_from_other_ignored_requests() -> None:
    assert is_robots_refusal(Failure(IgnoreRequest("Forbidden by robots.txt")))
    assert not is_robots_refusal(Failure(OffOrigin("off-site redirect to x (other host x)")))
    assert not is_robots_refusal(http_error(403))


EXCEPTIONS = [IgnoreRequest, OffOrigin, DownloadCancelledError, DownloadTimeoutError, ValueError,
              tx_error.ConnectionLost, RuntimeError]


@given(st.sampled_from(EXCEPTIONS),
       st.text(st.characters(codec="utf-8") | st.sampled_from("\n\r\x0b\x85\u2028"), max_size=200))
def test_a_reason_is_one_line_whatever_the_message(kind: type[Exception], message: str) -> None:
    """The reason goes into the run record and one log line, after the URL."""
    reason = describe_failure(Failure(kind(message)), timeout=5).reason
    assert reason and len(reason.splitlines()) == 1
