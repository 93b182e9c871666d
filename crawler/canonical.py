"""URL identity: one spelling per page, so a stored page is recognised before download.

Two functions, two jobs:

- `canonical_url` is the page's identity (what `pages.url` / `articles.url` store and
  what `settled_urls` is asked about): scheme and host lower-cased, default port,
  fragment and tracking parameters (utm_*, fbclid, gclid, ...) dropped, query parameters
  sorted, percent-escapes upper-cased (courlan and RFC 3986), and *no* trailing slash on a non-root
  path (`/politique/slug_ID/` and `/politique/slug_ID` are one page).
- `fetch_url` is what is downloaded: the URL as the site wrote it, minus the fragment and
  tracking parameters only. Servers do not all accept the canonical spelling (a dropped
  trailing slash can be a 404 or a redirect), so the path is left alone.

Both return None for anything that is not an absolute http(s) URL.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from courlan import normalize_url
from w3lib.url import safe_url_string

TRACKING_PARAM = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|gclsrc|dclid|msclkid|yclid|igshid|mc_cid|mc_eid|_ga|_gl"
    r"|xtor|at_[a-z_]+|ocid|cmpid|ns_[a-z_]+|__twitter_impression|amp_[a-z_]+)$",
    re.IGNORECASE,
)

_ESCAPE = re.compile(r"%[0-9a-f]{2}", re.IGNORECASE)


def _absolute(url: str, base: str | None) -> str | None:
    url = url.strip()
    if not url or url.startswith(("javascript:", "mailto:", "tel:", "data:", "#")):
        return None
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _strip_query(query: str) -> str:
    kept = [p for p in query.split("&") if p and not TRACKING_PARAM.match(p.split("=", 1)[0])]
    return "&".join(kept)


def fetch_url(url: str, base: str | None = None) -> str | None:
    """The URL to download: as written, without fragment or tracking parameters.

    Args:
        url: an absolute URL, or a relative one when `base` is given.
        base: the page the link was found on.

    Returns:
        A safe (percent-encoded) absolute URL, or None when it is not http(s).
    """
    absolute = _absolute(url, base)
    if absolute is None:
        return None
    try:
        parts = urlsplit(safe_url_string(absolute))
    except ValueError:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/",
                       _strip_query(parts.query), ""))


def canonical_url(url: str, base: str | None = None) -> str | None:
    """The page's identity; equal for every spelling of the same page.

    Args:
        url: an absolute URL, or a relative one when `base` is given.
        base: the page the link was found on.

    Returns:
        The canonical URL, or None when `url` is not an http(s) URL.
    """
    fetched = fetch_url(url, base)
    if fetched is None:
        return None
    try:
        normal = normalize_url(fetched, trailing_slash=False)
    except (ValueError, UnicodeError):
        return None
    parts = urlsplit(_ESCAPE.sub(lambda m: m.group(0).upper(), normal))
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, _strip_query(parts.query), ""))


def site_domain(url: str) -> str:
    """The host an outlet's pages live on, without a leading `www.` (so both spellings match)."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def on_site(url: str, domain: str) -> bool:
    """True when `url`'s host is `domain` or one of its subdomains (ports are ignored)."""
    host = (urlsplit(url).hostname or "").lower()
    return host == domain or host.endswith("." + domain)
