"""Strip a fetched news page to its article: title, text, date, author, language.

trafilatura does the text (``pipeline.body``: its defaults and its precision mode,
combined line by line); this module adds what news monitoring needs on top: robust
decoding (``pipeline.charset``), the headline without the site-name suffix, the
publication date (``pipeline.dates``), the language, and a named ``Skipped`` for pages
that are not articles — recognised by what they are (type, URL, markup, a text made of
headlines and excerpts), not by their length. ``extract`` never raises on a bad page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from trafilatura.meta import reset_caches as _reset_trafilatura_caches
from trafilatura.utils import load_html

from veille.pipeline import dates
from veille.pipeline.body import extract_body, lead_of, link_texts
from veille.pipeline.charset import decode_html
from veille.pipeline.dates import clean_text
from veille.pipeline.normalize import normalize
from veille.pipeline.types import Article, RawPage, Skipped

LOGGER = logging.getLogger(__name__)

LISTING_PATH_RE = re.compile(
    r"/(?:tags?|category|categorie|categories|rubriques?|sections?|author|auteurs?|archives?"
    r"|search|recherche|topics?|dossiers?)(?:/[^/?#]+)?/?(?:page/\d+/?)?$"
    r"|/videos?(?:/|$)|/(?:page|p)/\d+/?$",
    re.I,
)
HOME_RE = re.compile(r"^/?(?:(?:index|accueil|home)(?:\.\w+)?/?)?$", re.I)  # without a query
LISTING_QUERY_RE = re.compile(r"(?:^|&)(?:s|q|page=rubrique|page=mot|page=recherche)(?:=|&|$)", re.I)
NON_ARTICLE_TYPES = {"collectionpage", "itemlist", "searchresultspage", "profilepage",
                     "videogallery", "imagegallery"}
ARTICLE_JSONLD_TYPES = {"newsarticle", "article", "reportagenewsarticle", "analysisnewsarticle",
                        "opinionnewsarticle", "blogposting", "report", "liveblogposting"}
LEAD_RE = re.compile(r"chap[oô]\w*|chapeau|intro\w*|(?:^|[-_ ])(?:lead|excerpt|standfirst|summary|resume"
                     r"|kicker|desc|description|deck|subtitle|sous-titre)(?:$|[-_ ])", re.I)
TITLE_SEP_RE = re.compile(r"(\s+[-|–—:»•·]\s+|\s+[|»•·]\s*|\s*[|»•·]\s+)")
META_XPATH = etree.XPath("//meta[@content][@property or @name]")
ARTICLE_PATH_RE = re.compile(
    r"/[^/]*\w+-\w+-\w+[^/]*/?$"  # a slug of three words or more
    r"|(?<![\w-])\d{4,}(?:[-_.][^/]*)?/?$"  # an id
    r"|/(?:19|20)\d\d/\d\d?/",  # a date in the path
    re.I)
TEASER_MIN = 25  # characters of a headline link
LEAD_MIN = 40
TEASER_SLACK = 80  # characters beside headline and excerpt in a listing's item (date, author)
LISTING_SHARE = 0.5  # share of the text made of headline links: a listing
BRIEF_MIN = 150  # a shorter text needs a sign of an article to be one
MIN_TEXT = 40  # no article is shorter
VIDEO_TEXT_MIN = 400  # a video page with this much text is an article with a video
LANG_CONFIDENT = 0.9
LANGUAGES = ("fr", "ar", "en", "es")  # what Moroccan outlets publish in
UNDECODED_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
ARABIC_CHARS_RE = re.compile(r"[\u0600-\u06ff\u0750-\u077f]")
LATIN_CHARS_RE = re.compile(r"[A-Za-zÀ-ÿ]")


def reset_caches() -> None:
    """Release trafilatura/htmldate/courlan LRU caches; call between crawl batches."""
    _reset_trafilatura_caches()


def _metas(tree: etree._Element) -> dict[str, str]:
    found: dict[str, str] = {}
    for meta in META_XPATH(tree):
        key = (meta.get("property") or meta.get("name") or "").lower()
        found.setdefault(key, clean_text(meta.get("content")))
    return found


def strip_site_name(title: str, site_names: list[str]) -> str:
    """Drop leading or trailing site-name segments ("… - Hespress", "Le360 | …")."""
    pieces = TITLE_SEP_RE.split(title)  # [part, sep, part, sep, part]
    names = {normalize(n).replace(" ", "") for n in site_names if n}

    def is_site(part: str) -> bool:
        key = normalize(part).replace(" ", "")
        return bool(key) and any(
            key == n or (len(n) > 3 and n in key and len(key) <= len(n) + 12)  # "Hespress FR"
            or (key in n and len(key) >= 0.6 * len(n))  # "Bladi" for bladi.net
            for n in names)

    while len(pieces) > 2 and is_site(pieces[-1]):
        del pieces[-2:]
    while len(pieces) > 2 and is_site(pieces[0]):
        del pieces[:2]
    return "".join(pieces).strip()


def find_title(tree: etree._Element, metas: dict[str, str], site_names: list[str]) -> str:
    """The headline: the h1 when it agrees with og:title/<title>, else og:title, stripped."""
    h1s = [clean_text(h.text_content()) for h in tree.iter("h1")]
    h1s = [h for h in h1s if len(h) >= dates.MIN_HEADLINE and normalize(h).replace(" ", "")
           not in {normalize(n).replace(" ", "") for n in site_names if n}]
    og = strip_site_name(metas.get("og:title") or metas.get("twitter:title") or "", site_names)
    title_el = tree.find(".//title")
    doc_title = strip_site_name(clean_text(title_el.text_content()) if title_el is not None else "",
                            site_names)
    for h1 in h1s:
        key = normalize(h1)
        if key and any(key in normalize(t) for t in (og, doc_title) if t):
            return h1
    return og or (h1s[0] if h1s else "") or doc_title


@cache
def _identifier() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def detect_language(text: str, hint: str | None = None) -> str | None:
    """ISO 639-1 code of ``text``; ``hint`` decides when detection is unsure.

    Arabic script wins outright (short Arabic texts otherwise come out as fa/ur);
    otherwise py3langid decides when confident, and the hint breaks near-ties.
    """
    sample = text[:5000]
    arabic = len(ARABIC_CHARS_RE.findall(sample))
    latin = len(LATIN_CHARS_RE.findall(sample))
    if arabic + latin == 0:
        return hint
    if arabic > latin:
        return "ar"
    ranked = _identifier().rank(sample)
    best, prob = ranked[0]
    if prob >= LANG_CONFIDENT or not hint:
        return str(best)
    probs = dict(ranked)
    return hint if probs.get(hint, 0.0) >= 0.1 * prob else best


def _not_article(page: RawPage, objects: list[dict[str, Any]], metas: dict[str, str]) -> str | None:
    parts = urlsplit(page.final_url or page.url)
    if (LISTING_PATH_RE.search(parts.path) or LISTING_QUERY_RE.search(parts.query)
            or (HOME_RE.match(parts.path) and not parts.query)):
        return f"listing URL {parts.path or '/'}"
    if metas.get("og:type", "").startswith("video"):
        return "video page"
    types: set[str] = set()
    for obj in objects:
        types |= dates.jsonld_types(obj)
    if types & ARTICLE_JSONLD_TYPES:
        return None
    if types & NON_ARTICLE_TYPES:
        return f"not an article (JSON-LD {sorted(types & NON_ARTICLE_TYPES)[0]})"
    if "videoobject" in types and metas.get("og:type") != "article":
        return "video page"
    return None


def find_author(objects: list[dict[str, Any]], metas: dict[str, str],
                fallback: Callable[[], str | None]) -> str | None:
    """Byline: JSON-LD author names as written (`objects`: the page's `dates.jsonld`),
    else <meta name=author>, else trafilatura's (`fallback`, called only then: it reads
    trafilatura's metadata)."""
    for obj in objects:
        if dates.jsonld_types(obj) & ARTICLE_JSONLD_TYPES and obj.get("author"):
            people = obj["author"] if isinstance(obj["author"], list) else [obj["author"]]
            names = [p.get("name") if isinstance(p, dict) else p for p in people]
            found = ", ".join(clean_text(str(n)) for n in names if n and str(n).strip())
            if found:
                return found
    for key in ("author", "article:author", "dc.creator", None):
        name = clean_text(metas.get(key) if key else fallback())
        if len(name) >= 3 and not name.startswith(("http://", "https://")):
            return name
    return None


def _article_evidence(page: RawPage, objects: list[dict[str, Any]], metas: dict[str, str],
                      h1: etree._Element | None) -> str | None:
    """What says this page is one article, or None: its type, its URL, its markup."""
    for obj in objects:
        found = dates.jsonld_types(obj) & ARTICLE_JSONLD_TYPES
        if found:
            return f"JSON-LD {sorted(found)[0]}"
    if metas.get("og:type") == "article":
        return "og:type article"
    if ARTICLE_PATH_RE.search(urlsplit(page.final_url or page.url).path):
        return "article URL"
    if h1 is not None and any(a.tag == "article" for a in h1.iterancestors()):
        return "headline in <article>"
    return None


def _teaser_share(tree: etree._Element, text: str, links: set[str]) -> tuple[float, int]:
    """How much of the text is a listing's: headline links' texts, and excerpts whose
    item (up to three levels up) is just a headline link and that excerpt. Returns the
    share of the text's characters and the number of such items; an article with a
    sidebar of headlines scores low, since the sidebar is not in its text."""
    lines = [clean_text(line) for line in text.splitlines()]
    total = sum(map(len, lines)) or 1
    wanted = {line for line in lines if len(line) >= LEAD_MIN}
    teaser_chars, items = 0, 0
    for line in lines:
        if len(line) >= TEASER_MIN and line in links:
            teaser_chars += len(line)
    longest = 2 * max(map(len, wanted), default=0)
    # an article's paragraphs share their ancestors: measure each ancestor once, not once
    # per paragraph under it (that was quadratic in the paragraphs)
    measured: dict[etree._Element, tuple[list[int], int]] = {}
    for el in tree.iter("p", "div", "li", "span", "td"):
        raw = el.text_content() if len(el) <= 3 else ""
        line = clean_text(raw) if LEAD_MIN <= len(raw) <= longest else ""
        if line not in wanted:
            continue
        wanted.discard(line)
        for item in list(el.iterancestors())[:3]:
            if item.tag in ("body", "html"):
                break
            if item not in measured:
                measured[item] = ([n for n in (len(clean_text(a.text_content())) for a in item.iter("a"))
                                   if n >= TEASER_MIN], len(clean_text(item.text_content())))
            heads, size = measured[item]
            if len(heads) == 1 and size <= len(line) + heads[0] + TEASER_SLACK:
                teaser_chars += len(line)
                items += 1
                break
    return teaser_chars / total, items


def _drop_boilerplate_lines(text: str) -> str:
    lines = [ln for ln in text.splitlines()
             if not (len(ln) < 250 and dates.RELATED_HEAD_RE.match(ln.strip()))]
    return "\n".join(lines).strip()


def extract(page: RawPage, *, min_chars: int = BRIEF_MIN) -> Article | Skipped:
    """Extract the article of a fetched page.

    Args:
        page: the fetched page.
        min_chars: a shorter text is kept only when the page says it is one article
            (JSON-LD/OpenGraph type, an article URL, its headline in <article>): a brief
            is an article, a caption on a video or section page is not.

    Returns:
        An Article, or Skipped with the reason; never raises on a malformed page.
    """
    try:
        return _extract(page, min_chars)
    except Exception as exc:  # a bad page must not stop a crawl: counted as Skipped, logged
        LOGGER.warning("extraction failed for %s: %s: %s", page.url, type(exc).__name__, exc)
        return Skipped(page.url, f"extraction error: {type(exc).__name__}: {exc}"[:300])


def _extract(page: RawPage, min_chars: int) -> Article | Skipped:
    if not 200 <= page.status < 300:
        return Skipped(page.url, f"HTTP status {page.status}")
    ctype = {k.lower(): v for k, v in page.headers.items()}.get("content-type", "").lower()
    if ctype and not any(t in ctype for t in ("html", "xml", "text/plain")):
        return Skipped(page.url, f"not HTML: {ctype.split(';')[0]}")
    html = decode_html(page.body, page.headers)
    sample = html[:20000]
    bad = len(UNDECODED_RE.findall(sample))
    if not sample.strip() or bad > 0.02 * len(sample) or "<" not in sample:
        return Skipped(page.url, "empty or undecodable body")
    tree = load_html(html)
    if tree is None:
        return Skipped(page.url, "not parseable as HTML")
    metas = _metas(tree)
    objects = dates.jsonld(tree)  # parsed once: type, byline, description and date read it
    reason = _not_article(page, objects, metas)
    if reason and not reason.startswith("video"):
        return Skipped(page.url, reason)
    url, title = _url_and_title(page, tree, metas)
    pruned = dates.prune(tree, title)
    links = link_texts(tree)
    body = extract_body(tree, pruned[0], url, links)
    if body is None:
        return Skipped(page.url, "no article text found")
    title = title or clean_text(body.title)
    descriptions = [metas.get("og:description", ""), metas.get("description", "")]
    descriptions += [str(o.get("description") or "") for o in objects
                     if dates.jsonld_types(o) & ARTICLE_JSONLD_TYPES]
    text = body.text
    lead = lead_of(pruned[0], descriptions, LEAD_RE)
    if lead and lead[:LEAD_MIN] not in clean_text(text):
        text = f"{lead}\n{text}"
    text = _drop_boilerplate_lines(text)
    first, _, rest = text.partition("\n")
    if rest and normalize(first) == normalize(title):  # trafilatura kept the h1 in the body
        text = rest.strip()
    evidence = _article_evidence(page, objects, metas, pruned[1])
    if reason and len(text) < VIDEO_TEXT_MIN:
        return Skipped(page.url, f"{reason}: {len(text)} chars of text")
    if len(text) < MIN_TEXT or (len(text) < min_chars and evidence is None):
        return Skipped(page.url, f"too short: {len(text)} chars < {min_chars} and no sign of an "
                                 "article" if len(text) >= MIN_TEXT else
                       f"too short: {len(text)} chars")
    share, items = _teaser_share(tree, text, links)
    if share >= LISTING_SHARE and items != 1:  # one "item": an article and its headline
        return Skipped(page.url, f"listing page: {share:.0%} of the text is headlines and "
                                 "their excerpts")
    site = metas.get("og:site_name") or clean_text(body.sitename) or None
    return Article(
        url=page.url, outlet=page.outlet, title=title, text=text,
        published=dates.find_published(tree, url, page.fetched_at, pruned, objects),
        author=find_author(objects, metas, lambda: body.author), site_name=site,
        language=detect_language(f"{title}\n{text}", page.language_hint),
        final_url=page.final_url,
    )


def _url_and_title(page: RawPage, tree: etree._Element, metas: dict[str, str]) -> tuple[str, str]:
    """The page's final URL and its headline, the site's name (og:site_name, the outlet,
    the host) stripped from it."""
    url = page.final_url or page.url
    host = (urlsplit(url).hostname or "").removeprefix("www.").split(".")[0].strip("0123456789")
    site_names = [n for n in (metas.get("og:site_name"), page.outlet, host) if n]
    return url, find_title(tree, metas, site_names)


def page_date(page: RawPage) -> datetime | None:
    """The publication date of any page, article or not (the date path of `extract` alone)."""
    html = decode_html(page.body, page.headers)
    tree = load_html(html) if html.strip() else None
    if tree is None:
        return None
    url, title = _url_and_title(page, tree, _metas(tree))
    return dates.find_published(tree, url, page.fetched_at, dates.prune(tree, title))
