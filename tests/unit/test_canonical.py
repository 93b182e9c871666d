"""URL identity (crawler.canonical): one spelling per page, the site's spelling to fetch."""

from __future__ import annotations

import pytest

from veille.crawler.canonical import canonical_url, fetch_url, on_site, site_domain


@pytest.mark.parametrize(("url", "expected"), [
    # tracking parameters and fragments go, real parameters stay (sorted)
    ("https://www.bladi.net/x,123.html?utm_source=fb&utm_medium=social&fbclid=AbC#comments",
     "https://www.bladi.net/x,123.html"),
    ("https://x.ma/a?gclid=1&id=7&page=2", "https://x.ma/a?id=7&page=2"),
    ("https://x.ma/a?page=2&id=7", "https://x.ma/a?id=7&page=2"),
    ("https://x.ma/spip.php?page=backend&xtor=RSS-1", "https://x.ma/spip.php?page=backend"),
    # host case and default ports
    ("HTTPS://WWW.Le360.MA:443/politique/x_ABC/", "https://www.le360.ma/politique/x_ABC"),
    ("http://x.ma:80/a", "http://x.ma/a"),
    ("http://127.0.0.1:8001/a/", "http://127.0.0.1:8001/a"),
    # one trailing-slash rule: none, except for the root
    ("https://fr.le360.ma/politique/slug_QJ5ZK2WUTBEBDMS7YV3MFXNQ4A/",
     "https://fr.le360.ma/politique/slug_QJ5ZK2WUTBEBDMS7YV3MFXNQ4A"),
    ("https://x.ma/a/b/?b=2", "https://x.ma/a/b?b=2"),
    ("https://x.ma", "https://x.ma/"),
    ("https://x.ma/", "https://x.ma/"),
    # Arabic slugs: raw and percent-encoded spellings are one URL
    ("https://www.hespress.com/المغرب-فرنسا-1339812.html",
     "https://www.hespress.com/%D8%A7%D9%84%D9%85%D8%BA%D8%B1%D8%A8-%D9%81%D8%B1%D9%86%D8%B3%D8%A7-1339812.html"),
    ("https://www.hespress.com/%d8%a7%d9%84%d9%85%d8%ba%d8%b1%d8%a8-%d9%81%d8%b1%d9%86%d8%b3%d8%a7-1339812.html",
     "https://www.hespress.com/%D8%A7%D9%84%D9%85%D8%BA%D8%B1%D8%A8-%D9%81%D8%B1%D9%86%D8%B3%D8%A7-1339812.html"),
])
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    for url in ("https://WWW.x.ma/a/?utm_campaign=z&b=1#top", "https://x.ma/مقال-1.html"):
        once = canonical_url(url)
        assert once is not None and canonical_url(once) == once


def test_relative_links_resolve_against_the_page() -> None:
    base = "https://www.moroccoworldnews.com/category/politics/"
    assert canonical_url("../../2024/06/363655/slug/", base) == \
        "https://www.moroccoworldnews.com/2024/06/363655/slug"
    assert canonical_url("/a#x", base) == "https://www.moroccoworldnews.com/a"


@pytest.mark.parametrize("url", ["mailto:redaction@x.ma", "javascript:void(0)", "#top", "",
                                 "ftp://x.ma/file", "tel:+212"])
def test_non_http_links_have_no_identity(url: str) -> None:
    assert canonical_url(url, "https://x.ma/") is None
    assert fetch_url(url, "https://x.ma/") is None


def test_fetch_url_keeps_the_sites_spelling_but_not_trackers() -> None:
    # the server may not accept the canonical spelling (no trailing slash, sorted query)
    assert fetch_url("https://fr.le360.ma/politique/x_ABC/?utm_source=rss#a") == \
        "https://fr.le360.ma/politique/x_ABC/"
    assert fetch_url("https://x.ma/a?page=2&id=7&fbclid=9") == "https://x.ma/a?page=2&id=7"
    assert fetch_url("https://x.ma/مقال-1.html") == "https://x.ma/%D9%85%D9%82%D8%A7%D9%84-1.html"


def test_site_domain_and_on_site() -> None:
    assert site_domain("https://www.bladi.net/") == "bladi.net"
    assert site_domain("https://fr.le360.ma") == "fr.le360.ma"
    assert site_domain("http://127.0.0.1:8001/") == "127.0.0.1"
    assert on_site("https://bladi.net/a", "bladi.net")
    assert on_site("https://www.bladi.net/a", "bladi.net")
    assert not on_site("https://notbladi.net/a", "bladi.net")
    assert not on_site("https://ar.le360.ma/a", "fr.le360.ma")
    assert on_site("http://127.0.0.1:9999/a", "127.0.0.1")  # ports are not part of a site
