"""The article's text: trafilatura's recall and its precision, combined line by line.

Measured on public real pages (`bench/realpages.py`, ABE): trafilatura's defaults keep
nearly every body line but also edge boilerplate (subscribe lines, credits, teasers);
its precision mode drops those but also loses body lines (subheads, a paragraph in the
middle). So both run: on the page, defaults; on the pruned page (``dates.prune``:
related blocks, menus, tickers gone), precision mode. A line of the defaults' text is
kept when precision mode kept it too, when it sits between two such lines (a subhead,
a quote) unless it is a link's text (a teaser) or a "Read also" heading, or, at the
edges, when it is a long paragraph that is no link. Body split into several sibling
containers of one class (some CMSs chunk the article) is put back together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import trafilatura
from lxml import etree
from trafilatura.settings import Document

from veille.pipeline.dates import RELATED_HEAD_RE, class_attrs, clean_text

EDGE_MIN = 200  # an edge line precision mode dropped is kept only when this long
PRECISION_FLOOR = 0.5  # precision text this much shorter than the defaults': not to be trusted
TWIN_P_MIN = 100  # characters of paragraph text a twin container needs
TWIN_REACH = 3  # ancestors up from the body container where twins are looked for
DATE_PARAMS = {"extensive_search": False, "original_date": True}  # as bare_extraction would
COMMON: dict[str, object] = {"include_comments": False, "include_tables": True,
                             "include_images": False, "include_links": False}


@dataclass(frozen=True)
class Body:
    """The text, and what trafilatura's metadata says of the page (title, site name,
    author) when its defaults found a text. The metadata is read on first use: the
    caller reads the page's own markup first and mostly needs none of it, and reading it
    costs a quarter of an extraction (categories, tags, license, an htmldate search)."""

    text: str
    page: etree._Element | None  # the page the defaults extracted from; None: no metadata
    url: str

    @cached_property
    def _metadata(self) -> Document | None:
        if self.page is None:
            return None
        return trafilatura.extract_metadata(self.page, self.url, DATE_PARAMS, False, set())

    @property
    def sitename(self) -> str | None:
        return self._metadata.sitename if self._metadata else None

    @property
    def author(self) -> str | None:
        return self._metadata.author if self._metadata else None

    @property
    def title(self) -> str | None:
        return self._metadata.title if self._metadata else None


def _run(tree: etree._Element, url: str, **options: object) -> Document | None:
    doc = trafilatura.bare_extraction(  # date parameters given: no per-call defaults to build
        tree, url=url, date_extraction_params=DATE_PARAMS, **COMMON, **options)  # type: ignore[arg-type]
    return doc if isinstance(doc, Document) and doc.text else None


def link_texts(tree: etree._Element) -> set[str]:
    """The text of every link of the page, whitespace-collapsed."""
    return {t for t in (clean_text(a.text_content()) for a in tree.iter("a")) if t}


def combine(full: str, precise: str, links: set[str]) -> str:
    """The defaults' text (``full``) cut to what precision mode vouches for (see module doc)."""
    if not precise or len(precise) < PRECISION_FLOOR * len(full):
        return full
    vouched = {clean_text(line) for line in precise.splitlines()}
    lines = full.splitlines()
    kept = [clean_text(line) in vouched for line in lines]
    if not any(kept):
        return full
    first, last = kept.index(True), len(kept) - 1 - kept[::-1].index(True)
    out: list[str] = []
    for i, line in enumerate(lines):
        key = clean_text(line)
        if kept[i]:
            out.append(line)
        elif i < first or i > last:
            if len(key) > EDGE_MIN and key not in links:
                out.append(line)
        elif key not in links and not RELATED_HEAD_RE.match(key):
            out.append(line)
    return "\n".join(out)


def _p_text(el: etree._Element) -> list[str]:
    return [t for t in (clean_text(p.text_content()) for p in el.iter("p")) if t]


def _container(tree: etree._Element, lines: Iterable[str]) -> etree._Element | None:
    """The parent of the first paragraph whose text is a line of the extracted text."""
    wanted = {clean_text(line) for line in lines if len(line) >= 40}
    for p in tree.iter("p"):
        if clean_text(p.text_content()) in wanted:
            return p.getparent()
    return None


def twins(tree: etree._Element, text: str) -> str:
    """Add the paragraphs of sibling containers of the body's own class, in page order.

    Some CMSs cut an article into chunks (``div.body__container`` × n, ads between):
    trafilatura keeps the first. Only elements of the same tag and class, under the
    body container's near ancestors, holding real paragraphs, count.
    """
    lines = text.splitlines()
    body = _container(tree, lines)
    cls = body.get("class") if body is not None else None
    if body is None or not cls:
        return text
    scope = body
    for _ in range(TWIN_REACH):
        parent = scope.getparent()
        if parent is None:
            break
        scope = parent
    have = {clean_text(line) for line in lines}
    before: list[str] = []
    after: list[str] = []
    seen_body = False
    for el in scope.iter(body.tag):
        if el is body:
            seen_body = True
            continue
        if el.get("class") != cls or body in el.iterancestors() or el in body.iterancestors():
            continue
        paragraphs = [p for p in _p_text(el) if p not in have]
        if sum(map(len, paragraphs)) >= TWIN_P_MIN:
            (after if seen_body else before).extend(paragraphs)
            have.update(paragraphs)
    return "\n".join([*before, text, *after]) if before or after else text


def lead_of(pruned: etree._Element, descriptions: Iterable[str], pattern: object) -> str | None:
    """The standfirst when provably the article's: its element's class reads as a lead
    (``pattern``) and its text is the page's own description (og:description, JSON-LD
    description). Never a bio, a caption or another article's standfirst."""
    wanted = [clean_text(d).lower()[:60] for d in descriptions if d and len(clean_text(d)) >= 40]
    if not wanted:
        return None
    for el in pruned.iter("p", "div", "h2", "span", "strong"):
        if pattern.search(class_attrs(el)):  # type: ignore[attr-defined]
            lead = clean_text(el.text_content())
            key = lead.lower()
            if 40 <= len(lead) <= 1500 and any(key.startswith(w) or w.startswith(key[:60])
                                               for w in wanted):
                return lead
    return None


def extract_body(tree: etree._Element, pruned: etree._Element, url: str,
                 links: set[str]) -> Body | None:
    """The article text of a page (None when trafilatura finds none); `links`: the
    page's `link_texts`, which the caller needs too."""
    full = _run(tree, url)
    precise = _run(pruned, url, favor_precision=True)  # its text alone
    if full is None and precise is None:
        return None
    if full is None or precise is None:
        text = str((full or precise).text)  # type: ignore[union-attr]
    else:
        text = combine(str(full.text), str(precise.text), links)
    return Body(text=twins(pruned, text), page=None if full is None else tree, url=url)
