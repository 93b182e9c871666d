"""Where article URLs come from: pure parsers, `bytes → list[Entry]`, no network, no Scrapy engine.

One function per source kind: RSS/Atom/RDF feeds (`parse_feed`, also Google News RSS
search), XML sitemaps and sitemap indexes incl. Google News sitemaps (`parse_sitemap`,
on top of Scrapy's own `scrapy.utils.sitemap.Sitemap`), section listing pages
(`parse_listing`, Scrapy's `LinkExtractor`) and WordPress `/wp-json/wp/v2/posts`
(`parse_wp_json`). `newest_first` orders entries and applies the recency cut-off.

Recency cut-off: an entry is kept when it is at most `max_age_days` older than the
*newest* entry of the same sitemap (or than now, if that is earlier). An active sitemap
thus keeps its last few days; an archive or a frozen test fixture still yields its most
recent entries instead of nothing. Entries without a date are kept, after dated ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import lxml.etree
from scrapy.http import HtmlResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap

from veille.storage.timestamps import as_utc

NON_HTML_EXTENSION = re.compile(
    r"\.(pdf|jpe?g|png|gif|webp|svg|mp[34]|m4a|avi|mov|webm|zip|rar|gz|docx?|xlsx?|pptx?"
    r"|xml|rss|json|js|css|ico|woff2?|ttf)$",
    re.IGNORECASE,
)
NOT_ARTICLE_SEGMENTS = frozenset(
    "tag tags category categories categorie rubrique rubriques section sections author authors "
    "auteur auteurs video videos videotheque podcast podcasts gallery galerie photos live page "
    "search recherche feed rss login register contact about a-propos newsletter archives archive "
    "wp-content wp-admin wp-json wp-login.php cdn-cgi qui-sommes-nous mentions-legales "
    "politique-de-confidentialite privacy-policy terms cgu".split()
)
_SLUG_WORDS = re.compile(r"[-_,.+\s]+")
_LONG_NUMBER = re.compile(r"\d{4,}")
_DATE_PATH = re.compile(r"/(19|20)\d\d/[01]?\d/")
_FEED_ROOTS = {"rss", "feed", "RDF", "channel"}
_PARSER = lxml.etree.XMLParser(recover=True, resolve_entities=False, no_network=True,
                               remove_comments=True, remove_pis=True, huge_tree=False)


class NotAFeed(ValueError):
    """The body is not a feed / sitemap / JSON listing (an HTML error page, a challenge...)."""


@dataclass(frozen=True)
class Entry:
    """One discovered URL, with what the source said about its date."""

    url: str
    published: datetime | None = None
    title: str | None = None


def parse_date(text: str | None) -> datetime | None:
    """An RFC 822 (RSS) or ISO 8601 (Atom, sitemaps) date as an aware UTC datetime."""
    if not text or not text.strip():
        return None
    text = text.strip()
    dt: datetime | None = None
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return as_utc(dt).astimezone(UTC)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(elem: Any, *names: str) -> str | None:
    for child in elem:
        if _local(child.tag) in names and child.text and child.text.strip():
            return str(child.text.strip())
    return None


def _item_link(item: Any) -> str | None:
    orig = _child_text(item, "origLink")  # FeedBurner keeps the real URL here
    if orig:
        return orig
    for child in item:
        if _local(child.tag) != "link":
            continue
        href = child.get("href")  # Atom
        if href and child.get("rel", "alternate") == "alternate":
            return str(href)
        if not href and child.text and child.text.strip():  # RSS
            return str(child.text.strip())
    for child in item:
        if _local(child.tag) == "guid" and child.get("isPermaLink", "true") != "false":
            if child.text and child.text.strip().startswith("http"):
                return str(child.text.strip())
    about = item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about")  # RSS 1.0
    return str(about) if about else None


def parse_feed(body: bytes, base_url: str) -> list[Entry]:
    """Entries of an RSS 2.0, RSS 1.0 (RDF) or Atom feed, in document order.

    Args:
        body: the feed's bytes (any declared encoding).
        base_url: the feed's URL, to resolve relative links.

    Raises:
        NotAFeed: the body is not a feed (HTML error page, bot challenge, empty body).
    """
    try:
        root = lxml.etree.fromstring(body.lstrip(), _PARSER)
    except (lxml.etree.XMLSyntaxError, ValueError):
        root = None
    if root is None or _local(root.tag) not in _FEED_ROOTS:
        raise NotAFeed(f"not an RSS/Atom feed (root {_local(getattr(root, 'tag', '')) or 'none'})")
    entries = []
    for item in root.iter():
        if _local(item.tag) not in ("item", "entry"):
            continue
        link = _item_link(item)
        if not link:
            continue
        date = _child_text(item, "pubDate", "published", "date", "issued", "updated", "modified")
        entries.append(Entry(urljoin(base_url, link), parse_date(date), _child_text(item, "title")))
    return entries


class _NewsSitemap(Sitemap):
    """Scrapy's Sitemap, also keeping Google News' nested publication date and title."""

    __slots__ = ()

    def _process_sitemap_element(self, elem: Any) -> dict[str, Any] | None:
        extra = {}
        for sub in elem.iter():
            name = _local(sub.tag)
            if name in ("publication_date", "title") and sub.text and sub.text.strip():
                extra[f"news_{name}"] = sub.text.strip()
        d = super()._process_sitemap_element(elem)
        if d is not None:
            d.update(extra)
        return d


@dataclass(frozen=True)
class SitemapDoc:
    kind: str  # "urlset" | "sitemapindex"
    entries: list[Entry]


def parse_sitemap(body: bytes, base_url: str, max_size: int = 50_000_000) -> SitemapDoc:
    """A sitemap (`urlset`) or sitemap index, plain or gzipped.

    Raises:
        NotAFeed: the body is neither (or decompresses beyond `max_size`).
    """
    if body[:2] == b"\x1f\x8b":
        try:
            body = gunzip(body, max_size=max_size)
        except Exception as exc:  # scrapy raises a private error type for oversize
            raise NotAFeed(f"bad gzip sitemap ({exc})") from None
    try:
        doc = _NewsSitemap(body.lstrip())
    except (lxml.etree.XMLSyntaxError, StopIteration, ValueError):
        raise NotAFeed("not an XML sitemap") from None
    if doc.type not in ("urlset", "sitemapindex"):
        raise NotAFeed(f"not an XML sitemap (root {doc.type or 'none'})")
    entries = [
        Entry(urljoin(base_url, d["loc"]),
              parse_date(d.get("news_publication_date") or d.get("lastmod")),
              d.get("news_title"))
        for d in doc
        if d.get("loc")
    ]
    return SitemapDoc(doc.type, entries)


def parse_wp_json(body: bytes, base_url: str) -> list[Entry]:
    """Posts of a WordPress REST listing (`/wp-json/wp/v2/posts`)."""
    try:
        posts = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise NotAFeed("not a JSON posts listing") from None
    if not isinstance(posts, list):
        raise NotAFeed("not a JSON posts listing (expected an array)")
    entries = []
    for post in posts:
        if not isinstance(post, dict) or not isinstance(post.get("link"), str):
            continue
        date = post.get("date_gmt") or post.get("date")
        published = parse_date(f"{date}Z" if post.get("date_gmt") else date)
        title = post.get("title")
        title = title.get("rendered") if isinstance(title, dict) else None
        entries.append(Entry(urljoin(base_url, post["link"]), published, title))
    return entries


def looks_like_article(url: str) -> bool:
    """A guess for listing links when the outlet has no `article_pattern`.

    Articles have a long numeric id or a slug of five words or more in their last path
    segment, or a date in their path; tag, category, author, video, pagination and
    service pages are refused by name.
    """
    path = urlsplit(url).path
    segments = [s for s in path.split("/") if s]
    if not segments or NON_HTML_EXTENSION.search(path):
        return False
    if any(s.lower() in NOT_ARTICLE_SEGMENTS for s in segments):
        return False
    last = re.sub(r"\.(html?|php|aspx?)$", "", segments[-1], flags=re.IGNORECASE)
    words = [w for w in _SLUG_WORDS.split(last) if w]
    if _LONG_NUMBER.search(last) and len(last) >= 6:
        return True
    return len(words) >= 5 or (bool(_DATE_PATH.search(path)) and len(words) >= 2)


def parse_listing(body: bytes, page_url: str, domain: str,
                  pattern: re.Pattern[str] | None = None) -> list[Entry]:
    """Article links of a section page, in page order.

    Args:
        body: the page's bytes; headers are not needed (meta charset / detection).
        page_url: the page's URL (relative links, `<base href>`).
        domain: the outlet's site domain; links elsewhere are dropped.
        pattern: when set, a link must match it; otherwise `looks_like_article` decides.
    """
    response = HtmlResponse(url=page_url, body=body)
    extractor = LinkExtractor(unique=True, canonicalize=False)
    links = (link.url.split("#", 1)[0] for link in extractor.extract_links(response))
    urls = list(dict.fromkeys(u for u in links if _on_site(u, domain)))
    if pattern is not None:
        return [Entry(u) for u in urls if matches(pattern, u)]
    return [Entry(u) for u in urls if looks_like_article(u)]


def _on_site(url: str, domain: str) -> bool:
    # not LinkExtractor(allow_domains=...): it never matches an IP address (the replay's 127.0.0.1)
    host = (urlsplit(url).hostname or "").lower()
    return host == domain or host.endswith("." + domain)


def matches(pattern: re.Pattern[str], url: str) -> bool:
    """An `article_pattern` is tried on the full URL and on the path (+ query)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return bool(pattern.search(url) or pattern.search(path))


def newest_first(entries: list[Entry], max_age_days: float | None = None,
                 now: datetime | None = None) -> list[Entry]:
    """Dated entries newest first (within the cut-off, see module doc), then undated ones."""
    dated = sorted((e for e in entries if e.published), key=lambda e: e.published, reverse=True)  # type: ignore[arg-type, return-value]
    undated = [e for e in entries if not e.published]
    if dated and max_age_days is not None:
        newest = dated[0].published
        assert newest is not None
        cutoff = min(now or datetime.now(UTC), newest) - timedelta(days=max_age_days)
        dated = [e for e in dated if e.published and e.published >= cutoff]
    return dated + undated


def google_news_search_url(domain: str, language: str) -> str:
    """Google News RSS search restricted to one site (item links are Google redirects)."""
    return (f"https://news.google.com/rss/search?q={quote('site:' + domain)}"
            f"&hl={language}&gl=MA&ceid=MA:{language}")


_HREF = re.compile(rb"""(?:href|data-n-au|content)\s*=\s*["']?(https?://[^"'\s>]+)""", re.I)


def google_news_target(body: bytes, domain: str) -> str | None:
    """The outlet URL behind a Google News article page that did not redirect by HTTP."""
    for m in _HREF.finditer(body):
        url = m.group(1).decode("utf-8", "replace").replace("&amp;", "&")
        if _on_site(url, domain):
            return url
    return None
