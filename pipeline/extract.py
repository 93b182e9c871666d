"""Strip a fetched news page to its article: title, text, date, author, language.

trafilatura does the text (comments off, precision on, no tables); this module adds
what news monitoring needs on top: robust decoding (``pipeline.charset``), the headline
without the site-name suffix, the publication date nearest the headline
(``pipeline.dates``), the language, and a clear ``Skipped`` for pages that are not
articles. ``extract`` never raises on a bad page.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

import trafilatura
from lxml import etree
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from trafilatura.meta import reset_caches as _reset_trafilatura_caches
from trafilatura.settings import Document
from trafilatura.utils import load_html

from pipeline import dates
from pipeline.charset import decode_html
from pipeline.dates import class_attrs, clean_text
from pipeline.normalize import normalize
from pipeline.types import Article, RawPage, Skipped

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
LEAD_RE = re.compile(r"chap[oô]\w*|intro\w*|(?:^|[-_ ])(?:lead|excerpt|standfirst|summary|resume"
                     r"|kicker|desc|description|deck|subtitle|sous-titre)(?:$|[-_ ])", re.I)
TITLE_SEP_RE = re.compile(r"(\s+[-|–—:»•·]\s+|\s+[|»•·]\s*|\s*[|»•·]\s+)")
META_XPATH = etree.XPath("//meta[@content][@property or @name]")
TEASER_MIN = 25  # characters of a headline link
LEAD_MIN = 40
LISTING_TEASERS = 5  # headline links: a listing unless the page says it is one article
LISTING_FEW = 3  # ... a listing if nothing says article
LISTING_H1 = 30
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
        return best
    probs = dict(ranked)
    return hint if probs.get(hint, 0.0) >= 0.1 * prob else best


def _not_article(page: RawPage, tree: etree._Element, metas: dict[str, str]) -> str | None:
    parts = urlsplit(page.final_url or page.url)
    if (LISTING_PATH_RE.search(parts.path) or LISTING_QUERY_RE.search(parts.query)
            or (HOME_RE.match(parts.path) and not parts.query)):
        return f"listing URL {parts.path or '/'}"
    if metas.get("og:type", "").startswith("video"):
        return "video page"
    types: set[str] = set()
    for obj in dates.jsonld(tree):
        types |= dates.jsonld_types(obj)
    if types & ARTICLE_JSONLD_TYPES:
        return None
    if types & NON_ARTICLE_TYPES:
        return f"not an article (JSON-LD {sorted(types & NON_ARTICLE_TYPES)[0]})"
    if "videoobject" in types and metas.get("og:type") != "article":
        return "video page"
    return None


def find_author(tree: etree._Element, metas: dict[str, str], fallback: str | None) -> str | None:
    """Byline: JSON-LD author names as written, else <meta name=author>, else trafilatura's."""
    for obj in dates.jsonld(tree):
        if dates.jsonld_types(obj) & ARTICLE_JSONLD_TYPES and obj.get("author"):
            people = obj["author"] if isinstance(obj["author"], list) else [obj["author"]]
            names = [p.get("name") if isinstance(p, dict) else p for p in people]
            found = ", ".join(clean_text(str(n)) for n in names if n and str(n).strip())
            if found:
                return found
    for name in (metas.get("author"), metas.get("article:author"), metas.get("dc.creator"),
                 fallback):
        name = clean_text(name)
        if len(name) >= 3 and not name.startswith(("http://", "https://")):
            return name
    return None


def _teasers(pruned: etree._Element) -> int:
    """Headline links outside boilerplate (alone in their block, or wrapping a heading)."""
    hrefs = set()
    for link in pruned.iter("a"):
        text, parent = clean_text(link.text_content()), link.getparent()
        if len(text) < TEASER_MIN or parent is None:
            continue
        alone = len(clean_text(parent.text_content())) <= len(text) + 5
        if alone or next(link.iter("h2", "h3", "h4"), None) is not None:
            hrefs.add(link.get("href") or text)
    return len(hrefs)


def _is_listing(pruned: etree._Element, h1: etree._Element | None, metas: dict[str, str],
                tree: etree._Element) -> bool:
    """Headline links outside boilerplate and no sign of one article (long h1, article type)."""
    teasers = _teasers(pruned)
    if teasers < LISTING_FEW:
        return False
    typed = metas.get("og:type") == "article" or any(
        dates.jsonld_types(obj) & ARTICLE_JSONLD_TYPES for obj in dates.jsonld(tree))
    headline = h1 is not None and len(clean_text(h1.text_content())) >= LISTING_H1
    return not (typed and headline) if teasers >= LISTING_TEASERS else not (typed or headline)


def _with_lead(pruned: etree._Element, text: str) -> str:
    """Put back the standfirst (chapô) when trafilatura left it out."""
    flat = clean_text(text)
    for el in pruned.iter("p", "div", "h2", "span", "strong"):
        if LEAD_RE.search(class_attrs(el)):
            lead = clean_text(el.text_content())
            if len(lead) >= LEAD_MIN:
                return text if lead[:LEAD_MIN] in flat or len(lead) > 1500 else f"{lead}\n{text}"
    return text


def _drop_boilerplate_lines(text: str) -> str:
    lines = [ln for ln in text.splitlines()
             if not (len(ln) < 250 and dates.RELATED_HEAD_RE.match(ln.strip()))]
    return "\n".join(lines).strip()


def extract(page: RawPage, *, min_chars: int = 400) -> Article | Skipped:
    """Extract the article of a fetched page.

    Args:
        page: the fetched page.
        min_chars: shorter texts are not articles (briefs, video captions, listings).

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
    reason = _not_article(page, tree, metas)
    if reason:
        return Skipped(page.url, reason)
    url = page.final_url or page.url
    host = (urlsplit(url).hostname or "").removeprefix("www.").split(".")[0].strip("0123456789")
    site_names = [n for n in (metas.get("og:site_name"), page.outlet, host) if n]
    title = find_title(tree, metas, site_names)
    pruned = dates.prune(tree, title)
    doc = trafilatura.bare_extraction(  # on the pruned copy: related lists and boxes gone
        pruned[0], url=url, with_metadata=True, include_comments=False, favor_precision=True,
        include_tables=False, include_images=False, include_links=False,
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if not isinstance(doc, Document) or not doc.text:
        return Skipped(page.url, "no article text found")
    title = title or clean_text(doc.title)
    text = _drop_boilerplate_lines(_with_lead(pruned[0], doc.text))
    first, _, rest = text.partition("\n")
    if rest and normalize(first) == normalize(title):  # trafilatura kept the h1 in the body
        text = rest.strip()
    if len(text) < min_chars:
        return Skipped(page.url, f"too short: {len(text)} chars < {min_chars}")
    if _is_listing(*pruned, metas, tree):
        return Skipped(page.url, "listing page: many headline links, no single article")
    site = metas.get("og:site_name") or clean_text(doc.sitename) or None
    return Article(
        url=page.url, outlet=page.outlet, title=title, text=text,
        published=dates.find_published(tree, url, page.fetched_at, pruned),
        author=find_author(tree, metas, doc.author), site_name=site,
        language=detect_language(f"{title}\n{text}", page.language_hint),
        final_url=page.final_url,
    )


def page_date(page: RawPage) -> datetime | None:
    """The publication date of any page, article or not (the date path of `extract` alone)."""
    html = decode_html(page.body, page.headers)
    tree = load_html(html) if html.strip() else None
    if tree is None:
        return None
    metas = _metas(tree)
    url = page.final_url or page.url
    host = (urlsplit(url).hostname or "").removeprefix("www.").split(".")[0]
    title = find_title(tree, metas, [n for n in (metas.get("og:site_name"), page.outlet, host) if n])
    return dates.find_published(tree, url, page.fetched_at, dates.prune(tree, title))
