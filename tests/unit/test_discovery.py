"""The pure discovery parsers (crawler.discovery) on inline bytes, and blocked-answer detection."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from veille.crawler import discovery as d
from veille.crawler.middlewares import is_challenge

BASE = "https://www.example.ma"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------- feeds

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
<channel><title>Site</title><link>https://www.example.ma/</link>
  <item><title>Un</title><link>https://www.example.ma/un,1.html</link>
        <pubDate>Tue, 02 Jul 2024 10:15:00 +0200</pubDate></item>
  <item><title>Deux</title><link>/deux,2.html</link><dc:date>2024-07-03T08:00:00Z</dc:date></item>
  <item><title>Trois</title><guid isPermaLink="true">https://www.example.ma/trois,3.html</guid></item>
  <item><title>Quatre</title><link>https://feeds.example.com/~r/x/4</link>
        <feedburner:origLink>https://www.example.ma/quatre,4.html</feedburner:origLink></item>
  <item><title>Sans lien</title><guid isPermaLink="false">tag:example,5</guid></item>
</channel></rss>"""


def test_rss_items_with_dates_relative_links_guid_and_origlink() -> None:
    entries = d.parse_feed(RSS, BASE + "/spip.php?page=backend")
    assert [e.url for e in entries] == [
        f"{BASE}/un,1.html", f"{BASE}/deux,2.html", f"{BASE}/trois,3.html", f"{BASE}/quatre,4.html"]
    assert entries[0].published == utc(2024, 7, 2, 8, 15)
    assert entries[1].published == utc(2024, 7, 3, 8, 0)
    assert entries[2].published is None
    assert entries[0].title == "Un"


def test_atom_entries_use_the_alternate_link() -> None:
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
      <entry><title>A</title><link rel="self" href="https://www.example.ma/api/a"/>
        <link rel="alternate" type="text/html" href="https://www.example.ma/a-1.html"/>
        <updated>2025-04-14T17:42:00+01:00</updated></entry>
      <entry><title>B</title><link href="/b-2.html"/><published>2025-04-13T09:00:00Z</published></entry>
    </feed>"""
    entries = d.parse_feed(atom, BASE + "/feed")
    assert [(e.url, e.published) for e in entries] == [
        (f"{BASE}/a-1.html", utc(2025, 4, 14, 16, 42)), (f"{BASE}/b-2.html", utc(2025, 4, 13, 9))]


def test_rdf_feed_and_a_windows_1256_arabic_feed() -> None:
    rdf = b"""<?xml version="1.0"?>
    <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
      <item rdf:about="https://www.example.ma/r-1.html"><title>R</title></item></rdf:RDF>"""
    assert [e.url for e in d.parse_feed(rdf, BASE)] == [f"{BASE}/r-1.html"]
    arabic = ('<?xml version="1.0" encoding="windows-1256"?><rss version="2.0"><channel>'
              '<item><title>المغرب وفرنسا</title><link>https://www.example.ma/a-1.html</link></item>'
              '</channel></rss>').encode("windows-1256")
    assert d.parse_feed(arabic, BASE)[0].title == "المغرب وفرنسا"


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>",
    b"", b"not xml at all", b'{"posts": []}',
    b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>',
])
def test_what_is_not_a_feed_says_so(body: bytes) -> None:
    with pytest.raises(d.NotAFeed):
        d.parse_feed(body, BASE)


# ---------------------------------------------------------------- sitemaps

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://www.example.ma/old-1.html</loc><lastmod>2024-01-01</lastmod></url>
  <url><loc>https://www.example.ma/new-2.html</loc><lastmod>2024-07-02T10:00:00+00:00</lastmod></url>
  <url><loc>https://www.example.ma/undated-3.html</loc></url>
</urlset>"""

NEWS = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://fr.le360.ma/politique/x_QJ5ZK2WUTBEBDMS7YV3MFXNQ4A/</loc>
    <news:news><news:publication><news:name>Le360</news:name><news:language>fr</news:language>
      </news:publication><news:publication_date>2025-04-14T17:42:00Z</news:publication_date>
      <news:title>Bruno Retailleau à Rabat</news:title></news:news></url>
</urlset>""".encode()

INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://www.example.ma/post-sitemap1.xml</loc><lastmod>2023-01-05</lastmod></sitemap>
  <sitemap><loc>https://www.example.ma/post-sitemap2.xml</loc><lastmod>2025-04-14</lastmod></sitemap>
</sitemapindex>"""


def test_urlset_entries_and_dates() -> None:
    doc = d.parse_sitemap(URLSET, BASE + "/sitemap.xml")
    assert doc.kind == "urlset"
    assert [(e.url, e.published) for e in doc.entries] == [
        (f"{BASE}/old-1.html", utc(2024, 1, 1)), (f"{BASE}/new-2.html", utc(2024, 7, 2, 10)),
        (f"{BASE}/undated-3.html", None)]


def test_google_news_sitemap_keeps_publication_date_and_title() -> None:
    (entry,) = d.parse_sitemap(NEWS, "https://fr.le360.ma/sitemap-news/").entries
    assert entry.published == utc(2025, 4, 14, 17, 42)
    assert entry.title == "Bruno Retailleau à Rabat"


def test_sitemap_index_and_gzipped_sitemap() -> None:
    doc = d.parse_sitemap(INDEX, BASE + "/sitemap_index.xml")
    assert doc.kind == "sitemapindex"
    assert [e.url for e in d.newest_first(doc.entries)] == [
        f"{BASE}/post-sitemap2.xml", f"{BASE}/post-sitemap1.xml"]
    assert d.parse_sitemap(gzip.compress(URLSET), BASE + "/s.xml.gz").entries[1].url == f"{BASE}/new-2.html"


@pytest.mark.parametrize("body", [b"<html><body>404</body></html>", b"", gzip.compress(b"x")[:10]])
def test_what_is_not_a_sitemap_says_so(body: bytes) -> None:
    with pytest.raises(d.NotAFeed):
        d.parse_sitemap(body, BASE)


# ---------------------------------------------------------------- recency


def test_newest_first_with_cut_off_relative_to_the_newest_entry() -> None:
    entries = d.parse_sitemap(URLSET, BASE).entries
    kept = d.newest_first(entries, max_age_days=3, now=utc(2026, 11, 23))
    # old-1 is 6 months older than the sitemap's newest entry: cut; the undated one comes last
    assert [e.url for e in kept] == [f"{BASE}/new-2.html", f"{BASE}/undated-3.html"]
    assert len(d.newest_first(entries, max_age_days=365, now=utc(2026, 11, 23))) == 3


def test_cut_off_is_relative_to_now_when_the_sitemap_claims_the_future() -> None:
    now = utc(2025, 1, 10)
    entries = [d.Entry("a", now + timedelta(days=30)), d.Entry("b", now - timedelta(days=1)),
               d.Entry("c", now - timedelta(days=5))]
    assert [e.url for e in d.newest_first(entries, max_age_days=3, now=now)] == ["a", "b"]
    assert [e.url for e in d.newest_first(entries)] == ["a", "b", "c"]


# ---------------------------------------------------------------- listings

LISTING = b"""<html><head><base href="https://www.example.ma/"></head><body>
<nav><a href="/">Accueil</a><a href="/maroc/">Maroc</a><a href="/tag/securite/">S\xc3\xa9curit\xc3\xa9</a>
<a href="/page/2/">2</a><a href="/qui-sommes-nous">Qui sommes-nous</a></nav>
<a href="hammouchi-a-paris-pour-les-jo,108412.html">Hammouchi</a>
<a href="https://www.example.ma/hammouchi-a-paris-pour-les-jo,108412.html#forum">r\xc3\xa9agir</a>
<a href="/video/ceremonie-de-decoration-de-hammouchi-108390">Vid\xc3\xa9o</a>
<a href="/2024/07/02/la-dgsn-renforce-la-cooperation/">Date</a>
<a href="/maroc/les-policiers-marocains-sont-arrives-en-france">Slug</a>
<a href="/doc/declaration-conjointe-rabat-2025.pdf">PDF</a>
<a href="https://www.facebook.com/example-page-with-many-words-here">Facebook</a>
<a href="https://ar.example.ma/ar/article-arabe-1533718.html">AR</a>
</body></html>"""


def test_listing_links_that_look_like_articles() -> None:
    urls = [e.url for e in d.parse_listing(LISTING, BASE + "/maroc/", "example.ma")]
    assert urls == [
        f"{BASE}/hammouchi-a-paris-pour-les-jo,108412.html",
        f"{BASE}/2024/07/02/la-dgsn-renforce-la-cooperation/",
        f"{BASE}/maroc/les-policiers-marocains-sont-arrives-en-france",
        "https://ar.example.ma/ar/article-arabe-1533718.html",
    ]


def test_listing_links_matching_the_article_pattern() -> None:
    pattern = re.compile(r"/[a-z0-9-]+,[0-9]+\.html$")
    urls = [e.url for e in d.parse_listing(LISTING, BASE + "/maroc/", "www.example.ma", pattern)]
    assert urls == [f"{BASE}/hammouchi-a-paris-pour-les-jo,108412.html"]


@pytest.mark.parametrize(("url", "article"), [
    ("https://x.ma/abdellatif-hammouchi-medaille,108412.html", True),
    ("https://x.ma/politique/slug_QJ5ZK2WUTBEBDMS7YV3MFXNQ4A/", False),  # needs article_pattern
    ("https://x.ma/2024/06/363655/hammouchi-awarded-medal", True),
    ("https://x.ma/معلومات-مراقبة-التراب-الوطني-1339812.html", True),
    ("https://x.ma/tag/hammouchi/", False),
    ("https://x.ma/category/politique/page/2/", False),
    ("https://x.ma/videos/lahdat-tawshih-hammouchi-1389901.html", False),
    ("https://x.ma/politique", False),
    ("https://x.ma/", False),
    ("https://x.ma/wp-content/uploads/2024/07/photo-hammouchi-1234.jpg", False),
    ("https://x.ma/art-et-culture", False),
])
def test_looks_like_article(url: str, article: bool) -> None:
    assert d.looks_like_article(url) is article


def test_article_pattern_is_tried_on_url_and_path() -> None:
    assert d.matches(re.compile(r"^/\d{4}/"), "https://x.ma/2024/07/slug")
    assert d.matches(re.compile(r"_[A-Z0-9]{26}/$"), "https://x.ma/p/s_QJ5ZK2WUTBEBDMS7YV3MFXNQ4A/")
    assert not d.matches(re.compile(r"^/\d{4}/"), "https://x.ma/tag/2024/")


# ---------------------------------------------------------------- wp-json, Google News


def test_wordpress_posts_listing() -> None:
    body = json.dumps([
        {"link": "https://www.example.ma/a-1/", "date_gmt": "2025-04-14T16:42:00",
         "title": {"rendered": "A"}},
        {"link": "https://www.example.ma/b-2/", "date": "2025-04-13T10:00:00"},
        {"id": 3},
    ]).encode()
    entries = d.parse_wp_json(body, BASE)
    assert [(e.url, e.published, e.title) for e in entries] == [
        (f"{BASE}/a-1/", utc(2025, 4, 14, 16, 42), "A"), (f"{BASE}/b-2/", utc(2025, 4, 13, 10), None)]
    with pytest.raises(d.NotAFeed):
        d.parse_wp_json(b'{"code": "rest_no_route"}', BASE)


def test_google_news_search_and_target() -> None:
    url = d.google_news_search_url("hespress.com", "fr")
    assert url == "https://news.google.com/rss/search?q=site%3Ahespress.com&hl=fr&gl=MA&ceid=MA:fr"
    page = (b'<html><a href="https://news.google.com/x">g</a>'
            b'<a href="https://fr.hespress.com/1533718-retailleau-rabat.html">t</a></html>')
    assert d.google_news_target(page, "hespress.com") == "https://fr.hespress.com/1533718-retailleau-rabat.html"
    assert d.google_news_target(b"<html></html>", "hespress.com") is None


# ---------------------------------------------------------------- blocked answers


@pytest.mark.parametrize(("status", "headers", "body", "blocked"), [
    (403, {}, b"Forbidden", True),
    (503, {"server": "cloudflare", "cf-ray": "8f3a-CDG"}, b"", True),
    (503, {}, b"<title>Just a moment...</title>", True),
    (429, {"cf-ray": "1"}, b"", True),
    (200, {"cf-mitigated": "challenge"}, b"", True),
    (503, {"server": "nginx"}, b"Service Unavailable", False),
    (500, {"server": "cloudflare"}, b"", False),
    (404, {}, b"Not found", False),
    (200, {"server": "cloudflare"}, b"<html>article</html>", False),
])
def test_is_challenge(status: int, headers: dict[str, str], body: bytes, blocked: bool) -> None:
    assert is_challenge(status, headers, body) is blocked
