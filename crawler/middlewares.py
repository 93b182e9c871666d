"""Recognising what went wrong with a request, in words a user can act on.

- `is_challenge`: a 403, or a Cloudflare-style bot challenge (503/429 with `cf-ray`,
  `server: cloudflare`, "Just a moment..."): the outlet is *blocked*, not down.
- `ChallengeMiddleware`: a downloader middleware that stops Scrapy's RetryMiddleware
  from re-asking a challenge (retrying a 503 challenge only earns more challenges) and
  counts it (`veille/challenge`). It sits just above RetryMiddleware (550).
- `RedirectGuardMiddleware`: the spider sends its requests with `dont_filter` (it
  de-duplicates URLs itself, and Scrapy's dupefilter would silently drop a redirect to a
  page already requested), which also exempts them from OffsiteMiddleware; this guard
  gives redirects their check back — the outlet's own scheme, host *and port*
  (`crawler.origin`) — and names redirect loops. With a shared
  queue it also refuses a redirect to an article URL another worker claimed
  (`RedirectClaimed`; the spider folds the redirecting URL into it instead).
- `RobotsTxtMiddleware`: Scrapy's, except that every request waiting for a site's
  robots.txt gets its rules. Scrapy >= 2.13 awaits the shared Deferred from each
  waiting request (`maybe_deferred_to_future`, scrapy/scrapy#6802); under the asyncio
  reactor the first waiter consumes the result and the others get None, i.e. "no
  robots.txt, allow everything". Without a queue the first requests of a site are its
  few sources, so this went unnoticed; a worker of a shared queue takes article
  requests for a site whose robots.txt it is still fetching, and fetched disallowed
  pages.
- `AddressGuardMiddleware`: refuses a request whose host resolves to a private,
  loopback or link-local address (unless the outlet's own URL names one), resolving
  each host once per crawl and pinning the checked address in Scrapy's DNS cache.
- `SharedPaceMiddleware`: with a shared queue, each request waits for its site's turn
  across all workers (`Frontier.pace`), so N workers are as polite as one.
- `describe_failure`: a Twisted failure (timeout, DNS, HttpError, robots, offsite,
  truncated body, size limit...) as a one-line reason for the crawl-run record.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as _ScrapyRobotsTxt
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.resolver import dnscache
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from veille.crawler.canonical import canonical_url
from veille.crawler.origin import AddressCheck

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.robotstxt import RobotParser
    from twisted.python.failure import Failure

CHALLENGE_STATUSES = frozenset({403, 429, 503})
_CHALLENGE_BODY = re.compile(
    rb"just a moment\.\.\.|cf-chl-|challenge-platform|attention required! \| cloudflare"
    rb"|enable javascript and cookies to continue|ddos-guard|captcha-delivery",
    re.IGNORECASE,
)

# Exception class names across Scrapy/Twisted versions -> reason
_NAMED_REASONS = {
    "TimeoutError": "timeout",
    "DownloadTimeoutError": "timeout",
    "TCPTimedOutError": "timeout",
    "UserTimeoutError": "timeout",
    "DNSLookupError": "DNS lookup failed",
    "CannotResolveHostError": "DNS lookup failed",
    "ConnectionRefusedError": "connection refused",
    "DownloadConnectionRefusedError": "connection refused",
    "ConnectError": "connection failed",
    "ConnectionLost": "connection lost",
    "ConnectionDone": "connection closed by the server",
    "ResponseDataLossError": "truncated body (connection closed before the end)",
    "_DataLoss": "truncated body (connection closed before the end)",
    "ResponseFailed": "response failed (truncated or malformed)",
    "ResponseNeverReceived": "no response received",
    "DownloadFailedError": "download failed",
}


def _header(headers: Any, name: str) -> str:
    value = headers.get(name) if headers is not None else None
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value or "")


def is_challenge(status: int, headers: Any, body: bytes) -> bool:
    """True for an answer that means "you are blocked", not "we are down".

    Args:
        status: the HTTP status.
        headers: a mapping (Scrapy Headers or a dict with lower-case names).
        body: the (start of the) body.
    """
    if _header(headers, "cf-mitigated").lower() == "challenge":
        return True
    if status == 403:
        return True
    if status not in CHALLENGE_STATUSES:
        return False
    cloudflare = bool(_header(headers, "cf-ray")) or "cloudflare" in _header(headers, "server").lower()
    return cloudflare or bool(_CHALLENGE_BODY.search(body[:20_000]))


class ChallengeMiddleware:
    """Do not retry bot challenges; mark them so the spider reports the outlet blocked."""

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ChallengeMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response,
                         spider: Any = None) -> Response:
        if response.status >= 400 and is_challenge(response.status, response.headers, response.body):
            request.meta["dont_retry"] = True
            if self.stats is not None:
                self.stats.inc_value("veille/challenge")
        return response


class RedirectClaimed(IgnoreRequest):
    """A redirect towards an article URL that another request (or worker) fetches."""

    def __init__(self, alias: str, target: str) -> None:
        super().__init__(f"redirects to {target}, fetched by another request")
        self.alias, self.target = alias, target


class OffOrigin(IgnoreRequest):
    """Refused by the outlet's origin rules: another host, port or scheme, or a private address."""


class RedirectGuardMiddleware:
    """Refuse a redirect that leaves the outlet's site, or comes back to a URL already visited."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedirectGuardMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        previous = request.meta.get("redirect_urls")
        if not previous:
            return
        if request.url in previous:
            raise IgnoreRequest("redirect loop")
        origin = getattr(self.crawler.spider, "origin", None)
        if origin is not None and not request.meta.get("allow_offsite"):
            url, why = origin.adopt(request.url)
            if url != request.url:  # an upgrade to https is the site's to make, not ours
                why = why or f"other scheme {urlparse_cached(request).scheme}"
                raise OffOrigin(f"off-site redirect to {urlparse_cached(request).netloc} ({why})")
        claim = getattr(self.crawler.spider, "claim_redirect", None)
        if claim is not None and not claim(request):
            raise RedirectClaimed(previous[0], canonical_url(request.url) or request.url)


class RobotsTxtMiddleware(_ScrapyRobotsTxt):
    """Scrapy's robots.txt middleware; every waiting request gets the parsed rules."""

    async def robot_parser(self, request: Request) -> RobotParser | None:
        parser = await super().robot_parser(request)
        # once robots.txt is settled, the cache holds its rules (None if it failed: allow)
        settled = self._parsers.get(urlparse_cached(request).netloc, parser)
        return parser if isinstance(settled, Deferred) else settled


class AddressGuardMiddleware:
    """No request to a host that resolves to a non-public address (see crawler.origin)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.addresses = AddressCheck()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if getattr(self.crawler.spider, "private_ok", True):
            return  # the outlet itself lives on a private address (the replay), or not ours
        host = urlparse_cached(request).hostname or ""
        verdict = self.addresses.cached(host)
        if verdict is None:  # a DNS lookup: off the reactor thread, once per host
            verdict = await asyncio.to_thread(self.addresses.check, host)
        if verdict.refused:
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("veille/refused/private_address")
            raise OffOrigin(verdict.refused)
        if verdict.address:  # Scrapy's resolver connects to the address just checked
            dnscache[host] = verdict.address


class SharedPaceMiddleware:
    """One request per `crawl.download_delay` per site, from all workers together."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.spacing = crawler.settings.getfloat("VEILLE_SHARED_DELAY")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPaceMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        context = getattr(self.crawler.spider, "context", None)
        frontier = getattr(context, "frontier", None)
        if frontier is None or self.spacing <= 0:
            return
        site = urlparse_cached(request).netloc  # host, and port if any
        while (wait := frontier.pace(site, self.spacing)) > 0:
            await asyncio.sleep(wait)


class FailureInfo(NamedTuple):
    reason: str  # one line, for the run record and the log
    blocked: bool  # 403 / bot challenge
    transient: bool  # worth retrying next run (timeouts, 5xx, network), unlike a 404


def describe_failure(failure: Failure, timeout: float | None = None) -> FailureInfo:
    """What went wrong with a request, in words.

    Args:
        failure: what Scrapy passed to the errback.
        timeout: the configured download timeout, to say how long was waited.
    """
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        blocked = is_challenge(status, exc.response.headers, exc.response.body)
        note = " (bot challenge)" if blocked and status != 403 else ""
        transient = status >= 500 or status in (408, 429)
        return FailureInfo(f"HTTP {status}{note}", blocked, transient and not blocked)
    text = _first_line(str(exc))
    if isinstance(exc, IgnoreRequest):
        m = re.search(r"offsite request to '?([^'\s]+)", text)
        if m:
            return FailureInfo(f"off-site URL {m.group(1)}", False, False)
        if "max redirections" in text:
            return FailureInfo("too many redirects (redirect loop?)", False, False)
        return FailureInfo(text or "request ignored", False, False)
    name = type(exc).__name__
    if name in _NAMED_REASONS:
        reason = _NAMED_REASONS[name]
        if reason == "timeout" and timeout:
            reason = f"timeout after {timeout:g}s"
        return FailureInfo(reason, False, True)
    if name in ("CancelledError", "DownloadCancelledError"):
        if "max size" in text or "maxsize" in text.lower():
            return FailureInfo("body larger than the size limit (crawl.max_page_bytes)", False, False)
        return FailureInfo(f"download cancelled{': ' + text if text else ''}", False, True)
    return FailureInfo(f"{name}: {text}" if text else name, False, True)


def _first_line(text: str) -> str:
    """The first line that says something: a reason is one line of the run record."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def is_robots_refusal(failure: Failure) -> bool:
    exc = failure.value
    return isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc)
