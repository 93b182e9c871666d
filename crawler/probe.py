"""Probing an outlet's sources before its first crawl: what answers, with how many items.

`veille outlets check` and `veille outlets discover` (veille.outlets) stand on this.

- **Pure half** (unit-tested without a server): `parse_source` reads a body with the
  crawler's own parsers (crawler.discovery), `judge` / `judge_robots` turn what a source
  answered into a verdict: ok, blocked (401/403/429, a bot challenge, robots.txt
  disallow), moved (a redirect to another host or path: the report says where), empty
  (answers, but no items), dead (connection error, DNS, timeout, 404, 5xx), or skipped
  (not asked: the outlet's origin rules or the request cap said no).
- **I/O half**: `OutletProbe` makes one outlet's requests, `check_outlets` probes many
  in parallel, `discover` finds a site's feeds and sitemaps.

Politeness and safety are the crawler's: the configured user agent; robots.txt obeyed
for the crawler's own robots token (Protego, Scrapy's default parser); one request at a
time per host with `crawl.download_delay` between them (`Pacer`, shared by every
thread, so outlets on one host wait for each other); `crawl.timeout` per request, also
as a deadline for the whole body; at most `crawl.max_page_bytes` read per answer and
`MAX_REQUESTS` requests per outlet; the origin rules of crawler.origin (same scheme,
host and port as the outlet; a host resolving to a private or loopback address refused
unless the outlet's own URL names one; the connection goes to the address checked).
Redirects are followed only on the outlet's origin, and at most `MAX_REDIRECTS` hops.

Why http.client in a thread pool and not Scrapy: a probe makes a handful of requests
per outlet and must report each answer as it came — a redirect is a finding, not a
step to take silently, a 403 a verdict, not a retry. Scrapy's engine runs on a Twisted
reactor that starts once per process (the CLI would need a child process, as `veille
crawl` does) and its redirect, retry and robots middlewares would each have to be
turned off to see raw answers. One thread per outlet over http.client needs nothing
more and keeps every limit visible here.

Why not trafilatura's `find_feed_urls` / `sitemap_search` for discovery: they fetch
through trafilatura's own downloader, which neither reads robots.txt nor knows the
origin rules, sleeps between requests in the caller's thread, checks up to 1,000 feeds
and 10,000 sitemaps, and returns article links rather than the feed and sitemap URLs a
config needs. Their pure parts fit and are used: `trafilatura.feeds.determine_feed`
reads the home page we fetched (`<link rel="alternate">`, then feed-looking `<a>`
links), and `trafilatura.sitemaps.GUESSES` seeds the guessed sitemap paths.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html
from protego import Protego
from scrapy.utils.sitemap import sitemap_urls_from_robots
from trafilatura.feeds import FeedParameters, determine_feed
from trafilatura.sitemaps import GUESSES as TRAFILATURA_SITEMAP_GUESSES
from w3lib.url import safe_url_string

from veille.crawler import discovery as d
from veille.crawler.canonical import site_domain
from veille.crawler.middlewares import is_challenge
from veille.crawler.origin import AddressCheck, Origin, names_private_address
from veille.crawler.settings import SITEMAP_MAX_DEPTH, robots_token
from veille.pipeline.config import CrawlConfig, OutletConfig

Verdict = Literal["ok", "blocked", "moved", "empty", "dead", "skipped"]
VERDICTS: tuple[Verdict, ...] = ("ok", "blocked", "moved", "empty", "dead", "skipped")

MAX_REQUESTS = 40  # per outlet and probe: robots.txt, sources, redirects, index children
MAX_REDIRECTS = 3  # hops followed on the outlet's origin
INDEX_CHILDREN = 2  # child sitemaps read per index (the newest first)
ERROR_BODY_BYTES = 64_000  # what is read of a non-2xx answer (enough to see a challenge)
MAX_PARALLEL = 16  # outlets probed at once (threads; each waits on the network)
BLOCKED_STATUSES = frozenset({401, 403, 429})
ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
          "text/html;q=0.8, */*;q=0.5")

# discover: where sites commonly keep them (WordPress first), tried only when the robots.txt
# and the home page named none of that kind, in this order, until one answers with items
FEED_GUESSES = ("/feed/", "/rss", "/rss.xml", "/feed.xml", "/atom.xml")
SITEMAP_GUESSES = tuple(dict.fromkeys(
    ["/news-sitemap.xml", "/sitemap-news.xml", "/sitemap_index.xml", "/wp-sitemap.xml"]
    + ["/" + g for g in TRAFILATURA_SITEMAP_GUESSES]))
MAX_FOUND = 5  # feeds (and sitemaps) named by the home page (robots.txt) that are checked


# ------------------------------------------------------------------ answers and verdicts


@dataclass(frozen=True)
class Answer:
    """What one request got: an HTTP answer, no answer (`error`), or no request at all."""

    url: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    error: str | None = None  # no answer: "timeout after 30s", "DNS lookup failed", ...
    refused: str | None = None  # not asked: origin rules, a private address, the request cap
    robots: bool = False  # not asked: robots.txt disallows it
    truncated: bool = False  # the body was cut at the byte cap

    @property
    def location(self) -> str | None:
        """The absolute redirect target of a 3xx answer."""
        target = self.headers.get("location", "").strip()
        if self.status is None or not 300 <= self.status < 400 or not target:
            return None
        return urljoin(self.url, target)

    @property
    def short(self) -> str:
        """This answer in the table's "answer" column: `200`, `timeout`, `robots`, `-`."""
        if self.status is not None:
            return str(self.status)
        if self.robots:
            return "robots"
        if self.error:
            return "timeout" if self.error.startswith("timeout") else "error"
        return "-"


@dataclass(frozen=True)
class Parsed:
    """A body read as a source: its entries, or the child sitemaps of an index."""

    entries: list[d.Entry] = field(default_factory=list)
    children: list[str] = field(default_factory=list)  # a sitemap index's, newest first
    problem: str | None = None  # the body is not this kind of source: why
    note: str = ""


def parse_source(kind: str, body: bytes, url: str, domain: str,
                 pattern: re.Pattern[str] | None = None, max_size: int = 50_000_000) -> Parsed:
    """`body` read as a source of `kind` with the crawler's parsers (crawler.discovery).

    Args:
        kind: feed, google_news, sitemap, section or wp_json.
        url: where the body came from (relative links).
        domain: the outlet's site domain (section links elsewhere are dropped).
        pattern: the outlet's article_pattern; a section keeps only links matching it.
        max_size: a gzipped sitemap may not decompress beyond this.
    """
    try:
        if kind == "sitemap":
            doc = d.parse_sitemap(body, url, max_size=max_size)
            if doc.kind == "sitemapindex":
                return Parsed(children=[e.url for e in d.newest_first(doc.entries)])
            return Parsed(doc.entries)
        if kind == "section":
            return Parsed(d.parse_listing(body, url, domain, pattern))
        if kind == "wp_json":
            return Parsed(d.parse_wp_json(body, url))
        return Parsed(d.parse_feed(body, url))
    except (d.NotAFeed, ValueError, lxml.etree.LxmlError) as exc:
        return Parsed(problem=str(exc) or type(exc).__name__)


def usable(entries: Sequence[d.Entry], origin: Origin, pattern: re.Pattern[str] | None) -> int:
    """Entries the crawler would take: on the outlet's origin and matching `pattern`."""
    return sum(1 for e in entries
               if origin.adopt(e.url)[0] is not None and (pattern is None or d.matches(pattern, e.url)))


def newest(entries: Sequence[d.Entry]) -> datetime | None:
    return max((e.published for e in entries if e.published), default=None)


def _blocked(answer: Answer) -> bool:
    status = answer.status
    return status is not None and (status in BLOCKED_STATUSES
                                   or (status >= 400 and is_challenge(status, answer.headers, answer.body)))


def _failure(answer: Answer, origin: Origin) -> tuple[Verdict, str] | None:
    """The verdict of an answer that brought nothing to read, or None for a 2xx."""
    if answer.robots:
        return "blocked", "disallowed by robots.txt"
    if answer.refused:
        return "skipped", answer.refused
    if answer.error or answer.status is None:
        return "dead", answer.error or "no answer"
    status = answer.status
    if _blocked(answer):
        # a 403 is "blocked" whatever its body; the markers of a challenge page say more
        challenge = " (bot challenge)" if is_challenge(503, answer.headers, answer.body) else ""
        return "blocked", f"HTTP {status} {_reason(status)}{challenge}".rstrip()
    if 300 <= status < 400:
        target = answer.location
        if target is None:
            return "dead", f"HTTP {status} without a Location"
        why = origin.adopt(target)[1] or f"over {MAX_REDIRECTS} redirects"
        return "moved", f"→ {target} (not followed: {why})"
    if status >= 400 or status < 200:
        return "dead", f"HTTP {status} {_reason(status)}".rstrip()
    return None


def judge(chain: Sequence[Answer], parsed: Parsed | None, origin: Origin,
          kept: int | None = None, *, patterned: bool = False) -> tuple[Verdict, str]:
    """The verdict on one source and a note saying why (where it moved, what blocked it).

    Args:
        chain: the answers, the first request's first, each later one a redirect followed.
        parsed: the last answer's body read as the source (None when it brought none).
        origin: the outlet's origin, to say why a redirect was not followed.
        kept: how many entries the crawler would take (`usable`); None = all of them.
        patterned: the outlet has an article_pattern (the note then names it).
    """
    last = chain[-1]
    failed = _failure(last, origin)
    moved = len(chain) > 1
    where = f"→ {last.url}" if moved else ""
    if failed is not None:
        verdict, note = failed
        if moved and verdict != "moved":
            note = f"{where}: {note}"
        return verdict, note
    if parsed is None or parsed.problem:
        problem = parsed.problem if parsed is not None else "nothing read"
        ctype = last.headers.get("content-type", "").split(";")[0].strip() or "no content type"
        return "empty", _join(where, f"{problem} ({ctype})", parsed.note if parsed else "")
    count = len(parsed.entries)
    if count == 0:
        return "empty", _join(where, "no items", parsed.note)
    which = "on the outlet's site" + (" matching its article_pattern" if patterned else "")
    if kept is not None and kept == 0:
        return "empty", _join(where, f"{count} items, none {which}", parsed.note)
    extra = f"{kept} of them {which}" if kept is not None and kept < count else ""
    truncated = "body cut at the byte cap" if last.truncated else ""
    return ("moved" if moved else "ok"), _join(where, parsed.note, extra, truncated)


def judge_robots(chain: Sequence[Answer], origin: Origin, sitemaps: int) -> tuple[Verdict, str]:
    """The verdict on robots.txt: a missing one (404/410) is fine — everything is allowed."""
    last = chain[-1]
    if last.status in (404, 410):
        return "ok", _join(f"→ {last.url}" if len(chain) > 1 else "",
                           f"no robots.txt (HTTP {last.status}): everything allowed")
    failed = _failure(last, origin)
    if failed is not None:
        return failed
    lines = f"{sitemaps} Sitemap line{'s' if sitemaps != 1 else ''}"
    return ("moved" if len(chain) > 1 else "ok"), _join(f"→ {last.url}" if len(chain) > 1 else "", lines)


def _reason(status: int) -> str:
    return http.client.responses.get(status, "")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


@dataclass(frozen=True)
class SourceReport:
    """One source of an outlet as the probe found it."""

    kind: str  # robots, feed, sitemap, section, wp_json, google_news
    url: str
    answers: tuple[str, ...]  # every hop: ("301", "200"), ("timeout",), ("robots",)
    verdict: Verdict
    note: str = ""
    items: int | None = None  # entries read (a sitemap index: its children's)
    usable: int | None = None  # of them, on the outlet's origin and matching article_pattern
    newest: datetime | None = None
    final_url: str | None = None  # where redirects on the origin led

    @property
    def working(self) -> bool:
        """Would a crawl get articles from it (a redirect on the site is followed by the crawler)?"""
        return (self.kind != "robots" and self.verdict in ("ok", "moved")
                and bool(self.usable if self.usable is not None else self.items))

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "answers": list(self.answers),
                "verdict": self.verdict, "items": self.items, "usable": self.usable,
                "newest": self.newest.isoformat() if self.newest else None,
                "final_url": self.final_url, "working": self.working, "note": self.note}


@dataclass(frozen=True)
class OutletReport:
    name: str
    url: str
    sources: list[SourceReport]
    requests: int = 0

    @property
    def working(self) -> bool:
        """At least one feed, sitemap, section... a crawl gets articles from."""
        return any(s.working for s in self.sources)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "working": self.working,
                "requests": self.requests, "sources": [s.as_json() for s in self.sources]}


# ------------------------------------------------------------------ fetching


class Pacer:
    """One request at a time per host (scheme, host and port), `delay` seconds apart,
    across every thread of the probe."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, float] = {}

    @contextmanager
    def turn(self, site: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(site, threading.Lock())
        with lock:
            wait = self._last.get(site, float("-inf")) + self.delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # politeness is the point: this thread has nothing else to do
            try:
                yield
            finally:
                self._last[site] = time.monotonic()


class _HTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked (crawler.origin), not to a new lookup."""

    def __init__(self, host: str, port: int | None, address: str | None, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address or self.host, self.port), self.timeout)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, address: str | None, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address, self.tls = address, context

    def connect(self) -> None:
        sock = socket.create_connection((self.address or self.host, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


_TLS = ssl.create_default_context()


def http_get(url: str, *, address: str | None, user_agent: str, timeout: float,
             max_bytes: int) -> Answer:
    """One GET, redirects not followed, at most `max_bytes` of body, `timeout` per socket
    operation and for the whole answer. Failures come back as `Answer.error`, worded."""
    try:
        parts = urlsplit(safe_url_string(url))
        host, port = parts.hostname or "", parts.port
    except (ValueError, UnicodeError):
        return Answer(url, error="malformed URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection = (
        _HTTPSConnection(host, port, address, timeout, _TLS) if parts.scheme == "https"
        else _HTTPConnection(host, port, address, timeout))
    deadline = time.monotonic() + timeout
    try:
        conn.request("GET", target, headers={
            "User-Agent": user_agent, "Accept": ACCEPT, "Accept-Language": "fr,ar;q=0.9,en;q=0.8",
            "Accept-Encoding": "identity", "Connection": "close"})
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        limit = max_bytes if 200 <= response.status < 300 else min(max_bytes, ERROR_BODY_BYTES)
        body = bytearray()
        while len(body) <= limit:
            if time.monotonic() > deadline:
                raise TimeoutError
            chunk = response.read1(min(65_536, limit + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        truncated = len(body) > limit
        return Answer(url, response.status, headers, bytes(body[:limit]),
                      truncated=truncated and 200 <= response.status < 300)
    except TimeoutError:
        return Answer(url, error=f"timeout after {timeout:g}s")
    except socket.gaierror:
        return Answer(url, error="DNS lookup failed")
    except ConnectionRefusedError:
        return Answer(url, error="connection refused")
    except ssl.SSLError as exc:
        return Answer(url, error=f"TLS error ({exc.reason or type(exc).__name__})")
    except http.client.HTTPException as exc:
        return Answer(url, error=f"bad HTTP answer ({type(exc).__name__})")
    except (OSError, UnicodeError) as exc:
        return Answer(url, error=f"connection failed ({getattr(exc, 'strerror', None) or type(exc).__name__})")
    finally:
        conn.close()


class OutletProbe:
    """One outlet's requests, one after another: origin rules, robots.txt, the caps.

    Args:
        url: the outlet's URL (its origin bounds every request but Google News').
        crawl: the crawl settings (user agent, delay, timeout, byte cap, robots).
        pacer: shared by every outlet's probe, so a host gets one request at a time.
    """

    def __init__(self, url: str, crawl: CrawlConfig, pacer: Pacer,
                 max_requests: int = MAX_REQUESTS) -> None:
        self.url = url
        self.crawl = crawl
        self.pacer = pacer
        self.max_requests = max_requests
        self.origin = Origin.of(url)
        self.domain = site_domain(url)
        self.private_ok = names_private_address(url)
        self.addresses = AddressCheck()
        self.token = robots_token(crawl.user_agent)
        self.requests = 0
        self._rules: dict[str, Protego | None] = {}
        self.robots_chains: dict[str, list[Answer]] = {}

    # requests ------------------------------------------------------------------------
    def fetch(self, url: str, *, offsite: bool = False, robots: bool = True) -> Answer:
        """One request, if the rules allow it; otherwise an Answer saying why not."""
        if not offsite:
            adopted, why = self.origin.adopt(url)
            if adopted is None:
                return Answer(url, refused=f"not on the outlet's origin ({why})")
            url = adopted
        if self.requests >= self.max_requests:
            return Answer(url, refused=f"request cap reached ({self.max_requests} per outlet)")
        if robots and self.crawl.obey_robots and not self.allowed(url, offsite=offsite):
            return Answer(url, robots=True)
        parts = urlsplit(url)
        address = None
        if not self.private_ok:
            checked = self.addresses.check(parts.hostname or "")
            if checked.refused:
                return Answer(url, refused=checked.refused)
            address = checked.address
        if self.requests >= self.max_requests:  # robots.txt may have taken the last one
            return Answer(url, refused=f"request cap reached ({self.max_requests} per outlet)")
        self.requests += 1
        with self.pacer.turn(f"{parts.scheme}://{parts.netloc}".lower()):
            return http_get(url, address=address, user_agent=self.crawl.user_agent,
                            timeout=self.crawl.timeout, max_bytes=self.crawl.max_page_bytes)

    def follow(self, url: str, *, offsite: bool = False, robots: bool = True) -> list[Answer]:
        """The answers to `url` and to the redirects that followed it on the outlet's origin."""
        chain = [self.fetch(url, offsite=offsite, robots=robots)]
        while (target := chain[-1].location) is not None and len(chain) <= MAX_REDIRECTS:
            adopted = self.origin.adopt(target)[0] if not offsite else target
            if adopted is None or adopted in (a.url for a in chain):
                break  # another site (the verdict says where), or a loop
            chain.append(self.fetch(adopted, offsite=offsite, robots=robots))
        return chain

    def allowed(self, url: str, *, offsite: bool = False) -> bool:
        """Does the site's robots.txt let the crawler's token fetch `url` (read once per site)?"""
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}".lower()
        if site not in self._rules:
            self._rules[site] = None  # while robots.txt itself is fetched
            chain = self.follow(site + "/robots.txt", offsite=offsite, robots=False)
            self.robots_chains[site] = chain
            last = chain[-1]
            self._rules[site] = (Protego.parse(last.body.decode("utf-8", "replace"))
                                 if last.status == 200 else None)  # no rules: everything allowed
        rules = self._rules[site]
        return rules is None or bool(rules.can_fetch(url, self.token))

    # reports -------------------------------------------------------------------------
    def _robots_chain(self) -> list[Answer]:
        """robots.txt of the outlet's origin (fetched once, whatever asked first)."""
        parts = urlsplit(self.url)
        self.allowed(self.url)
        return self.robots_chains[f"{parts.scheme}://{parts.netloc}".lower()]

    def robots_sitemaps(self) -> list[str]:
        """The `Sitemap:` lines of the outlet's robots.txt."""
        last = self._robots_chain()[-1]
        if last.status != 200:
            return []
        return list(dict.fromkeys(sitemap_urls_from_robots(last.body, base_url=last.url)))

    def robots_report(self) -> SourceReport:
        chain = self._robots_chain()
        verdict, note = judge_robots(chain, self.origin, len(self.robots_sitemaps()))
        return SourceReport("robots", chain[0].url, tuple(a.short for a in chain), verdict, note,
                            final_url=chain[-1].url if len(chain) > 1 else None)

    def source(self, kind: str, url: str, pattern: re.Pattern[str] | None = None) -> SourceReport:
        """Fetch one source, follow its redirects on the origin, count and judge its items."""
        offsite = kind == "google_news"  # built by us, on news.google.com: off-site by design
        chain = self.follow(url, offsite=offsite)
        last = chain[-1]
        parsed: Parsed | None = None
        kept: int | None = None
        if last.status is not None and 200 <= last.status < 300:
            parsed = self._read(kind, last, pattern)
            if kind in ("feed", "sitemap", "wp_json") and not parsed.problem:
                kept = usable(parsed.entries, self.origin, pattern)
        verdict, note = judge(chain, parsed, self.origin, kept, patterned=pattern is not None)
        entries = parsed.entries if parsed is not None and not parsed.problem else None
        return SourceReport(
            kind, url, tuple(a.short for a in chain), verdict, note,
            items=len(entries) if entries is not None else None,
            usable=kept if kept is not None else (len(entries) if entries is not None else None),
            newest=newest(entries) if entries else None,
            final_url=last.url if len(chain) > 1 else None)

    def _read(self, kind: str, answer: Answer, pattern: re.Pattern[str] | None,
              depth: int = 0) -> Parsed:
        parsed = parse_source(kind, answer.body, answer.url, self.domain, pattern,
                              max_size=self.crawl.max_page_bytes)
        if not parsed.children:
            return parsed
        if depth >= SITEMAP_MAX_DEPTH:
            return Parsed(problem=f"sitemap index nested over {SITEMAP_MAX_DEPTH} levels")
        entries: list[d.Entry] = []
        read, failures = 0, []
        for child in parsed.children[:INDEX_CHILDREN]:
            last = self.follow(child)[-1]
            if last.status is not None and 200 <= last.status < 300:
                sub = self._read("sitemap", last, pattern, depth + 1)
                if not sub.problem:
                    entries += sub.entries
                    read += 1
                    continue
                failures.append(sub.problem)
            else:
                failures.append((_failure(last, self.origin) or ("dead", "no answer"))[1])
        count = len(parsed.children)
        note = f"index of {count} sitemap{'s' if count != 1 else ''}, {read} read"
        if not read:
            return Parsed(problem=f"{note} ({failures[0] if failures else 'none readable'})")
        return Parsed(entries, note=note)


# ------------------------------------------------------------------ check


def check_outlet(outlet: OutletConfig, crawl: CrawlConfig, pacer: Pacer) -> OutletReport:
    """robots.txt, then every configured source of one outlet, in the crawler's order."""
    probe = OutletProbe(outlet.url, crawl, pacer)
    pattern = re.compile(outlet.article_pattern) if outlet.article_pattern else None
    reports = [probe.robots_report()]
    for kind, urls in (("feed", outlet.feeds), ("sitemap", outlet.sitemaps),
                       ("section", outlet.sections)):
        reports += [probe.source(kind, url, pattern) for url in urls]
    if outlet.wp_json:
        from veille.crawler.spiders.outlet import WP_POSTS

        reports.append(probe.source("wp_json", outlet.url.rstrip("/") + WP_POSTS, pattern))
    if outlet.google_news:
        url = d.google_news_search_url(site_domain(outlet.url), outlet.language)
        reports.append(probe.source("google_news", url))
    return OutletReport(outlet.name, outlet.url, reports, probe.requests)


def check_outlets(outlets: Sequence[OutletConfig], crawl: CrawlConfig,
                  parallel: int = MAX_PARALLEL) -> list[OutletReport]:
    """Every outlet probed, `parallel` at a time; reports in the order given."""
    if not outlets:
        return []
    pacer = Pacer(crawl.download_delay)
    pool = ThreadPoolExecutor(max_workers=min(parallel, len(outlets)), thread_name_prefix="probe")
    try:
        return list(pool.map(lambda o: check_outlet(o, crawl, pacer), outlets))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: do not start the others


# ------------------------------------------------------------------ discover


@dataclass(frozen=True)
class Discovery:
    """What `discover` found on a site: the sources that answered with items, and why."""

    url: str  # the outlet's URL (the site's root)
    language: str | None  # from --language, else the home page's <html lang>
    feeds: list[str]
    sitemaps: list[str]
    reports: list[tuple[str, SourceReport]]  # every candidate tried: (found by, report)
    requests: int


def site_root(url: str) -> str:
    """`https://www.site.ma/some/page` → `https://www.site.ma/`."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}/"


def page_language(body: bytes) -> str | None:
    """The two-letter language of an HTML page's `<html lang>`, if it says one."""
    try:
        root = lxml.html.document_fromstring(body[:2_000_000])
    except (lxml.etree.LxmlError, ValueError):
        return None
    lang = (root.get("lang") or root.get("xml:lang") or "").strip().lower()
    return lang[:2] if re.match(r"^[a-z]{2}\b", lang) else None


def home_feeds(body: bytes, page_url: str) -> list[str]:
    """Feed URLs a home page names (`<link rel="alternate">`, feed-looking links), by
    trafilatura's `determine_feed`."""
    html = body.decode("utf-8", "replace")
    root = site_root(page_url).rstrip("/")
    params = FeedParameters(root, urlsplit(page_url).hostname or "", page_url)
    return list(dict.fromkeys(determine_feed(html, params)))


def discover(url: str, crawl: CrawlConfig, language: str | None = None) -> Discovery:
    """Find a site's feeds and sitemaps and keep those that answer with items.

    Candidates, each checked like a configured source: the feeds the home page names,
    the robots.txt `Sitemap:` lines, then common paths (`FEED_GUESSES`,
    `SITEMAP_GUESSES`) for a kind nothing named, until one of them answers with items.
    """
    root = site_root(url)
    probe = OutletProbe(root, crawl, Pacer(crawl.download_delay))
    reports = [("robots.txt", probe.robots_report())]
    home = probe.follow(root)
    last = home[-1]
    home_ok = last.status == 200
    verdict: Verdict = "ok"
    note = ""
    if not home_ok:
        verdict, note = _failure(last, probe.origin) or ("dead", "no answer")
    reports.append(("home page", SourceReport("home", root, tuple(a.short for a in home), verdict,
                                              note, final_url=last.url if len(home) > 1 else None)))
    if language is None and home_ok:
        language = page_language(last.body)
    named = {"feed": home_feeds(last.body, last.url)[:MAX_FOUND] if home_ok else [],
             "sitemap": probe.robots_sitemaps()[:MAX_FOUND]}
    found: dict[str, list[str]] = {"feed": [], "sitemap": []}
    for kind, how, guesses in (("feed", "home page", FEED_GUESSES),
                               ("sitemap", "robots.txt", SITEMAP_GUESSES)):
        candidates = [(c, how) for c in named[kind]] + [(root.rstrip("/") + g, "guess") for g in guesses]
        tried: set[str] = set()
        for candidate, source in candidates:
            if source == "guess" and found[kind]:
                break  # guesses only while nothing named (or guessed) works
            if candidate in tried:
                continue
            tried.add(candidate)
            report = probe.source(kind, candidate)
            reports.append((source, report))
            target = report.final_url or report.url
            if report.working and target not in found[kind]:
                found[kind].append(target)
    return Discovery(root, language, found["feed"], found["sitemap"], reports, probe.requests)


def slug_for(url: str) -> str:
    """A config name for a site: `https://www.hespress.com/` → `hespress`, `fr.le360.ma` → `fr-le360`."""
    host = (urlsplit(url).hostname or "outlet").lower().removeprefix("www.")
    labels = host.split(".")
    if len(labels) > 1 and not host.replace(".", "").isdigit():
        labels = labels[:-1]  # the top-level domain says nothing
    slug = re.sub(r"[^a-z0-9_-]+", "-", "-".join(labels)).strip("-_")
    return slug or "outlet"
