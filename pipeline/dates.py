"""Publication dates of news pages: structured metadata first, then visible text.

``structured_date`` reads JSON-LD and ``<meta>`` (keeps the time and the offset).
``visible_date`` reads the text of the page once menus, tickers, "À lire aussi" and
related lists are pruned, and keeps the date nearest the headline: French ("16 décembre 2023 - 15h00",
"Le 07/04/2025 à 12h18"), Arabic with Mashriq or Moroccan month names ("الأحد 30 يونيو
2024 - 14:20", "2 شتنبر 2024") and English ("July 2, 2024"). Naive times are Moroccan
local time (Africa/Casablanca).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from copy import deepcopy
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from htmldate import find_date
from lxml import etree

from veille.pipeline.normalize import normalize

LOCAL_TZ = ZoneInfo("Africa/Casablanca")
MIN_YEAR = 1995

MONTHS: dict[str, int] = {}
for _num, _names in enumerate((
    "janvier janv jan january يناير كانون_الثاني",
    "février fevrier févr fevr fév fev february feb فبراير براير شباط",
    "mars march mar مارس آذار اذار",
    "avril avr april apr أبريل ابريل إبريل نيسان",
    "mai may ماي مايو أيار ايار",
    "juin june jun يونيو يونيه حزيران",
    "juillet juil july jul يوليوز يوليو يوليه تموز",
    "août aout august aug غشت أغسطس اغسطس آب",
    "septembre sept september sep شتنبر سبتمبر أيلول ايلول",
    "octobre oct october أكتوبر اكتوبر تشرين_الأول",
    "novembre nov november نونبر نوفمبر تشرين_الثاني",
    "décembre decembre déc dec december دجنبر ديسمبر كانون_الأول",
), start=1):
    for _name in _names.split():
        MONTHS[_name.replace("_", " ")] = _num
_MONTH_ALT = "|".join(sorted((re.escape(m) for m in MONTHS), key=len, reverse=True))
_TIME = (r"(?:\s*(?:-|–|—|,|،|\||à|a|at|على الساعة|الساعة)?\s*(?P<hour>\d{1,2})\s*"
         r"(?:[hH](?![^\W\d])\s*(?P<min1>\d{2})?|:(?P<min2>\d{2}))(?:\s*(?P<ampm>[ap]m)\b)?)?")
DMY_RE = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:er|e|st|nd|rd|th)?\s+({_MONTH_ALT})\.?[,،]?\s+(\d{{4}})(?!\d){_TIME}", re.I
)
MDY_RE = re.compile(
    rf"(?<!\w)({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d){_TIME}", re.I
)
NUMERIC_RE = re.compile(
    rf"(?<![\d/.-])(\d{{1,2}})\s?([/.-])\s?(\d{{1,2}})\s?\2\s?(\d{{4}})(?![\d/.-]){_TIME}")
ISO_RE = re.compile(r"(?<![\d/.-])(\d{4})([-/])(\d{2})\2(\d{2})(?:[T ](\d{2}):(\d{2})"
                    r"(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?(?![\d/])")
DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
UPDATE_RE = re.compile(
    r"(mis à jour|mise à jour|màj|modifié|updated?|تحديث|تعديل)\W{0,3}\w{0,4}\W{0,3}$", re.I)
PUBLISHED_RE = re.compile(
    r"(publié|publication|mis en ligne|posted|published|نشر|تاريخ النشر)\W{0,3}\w{0,4}\W{0,3}$", re.I)

ARTICLE_TYPES = {"newsarticle", "article", "reportagenewsarticle", "analysisnewsarticle",
                 "opinionnewsarticle", "backgroundnewsarticle", "blogposting", "report",
                 "liveblogposting", "scholarlyarticle", "techarticle"}
META_KEYS = ("article:published_time", "og:article:published_time", "og:published_time",
             "datepublished", "pubdate", "publishdate", "publish-date", "publish_date",
             "publication_date", "parsely-pub-date", "sailthru.date", "dc.date.issued",
             "dcterms.issued", "dc.date", "dcterms.created", "date", "article.published")
META_XPATH = etree.XPath("//meta[@content][@property or @name or @itemprop]")
BOILER_RE = re.compile(
    r"related|lire|aussi|read-?more|recommend|similar|sidebar|widget|footer|menu|(?:^|[-_ ])nav"
    r"|comment|share|social|ticker|breaking|cookie|consent|popular|most-?read|newsletter"
    r"|breadcrumb|topbar|top-bar|site-header|masthead|promo|advert|(?:^|[-_ ])ads?(?:$|[-_ ])"
    r"|banner|trending|latest|more-|autres|(?:^|[-_ ])tags?(?:$|[-_ ])|subscribe",
    re.I,
)
RELATED_HEAD_RE = re.compile(
    r"^\W*(?:[àa]\s+lire(?:\s+(?:aussi|également|egalement))?\s*:|[àa] lire aussi|lire aussi"
    r"|[àa] lire également|voir aussi|sur le même sujet|sujets? associés|les plus lus|ces articles devraient vous intéresser"
    r"|articles? similaires|dans la même rubrique|read also|read more|related|see also"
    r"|اقرأ أيضا|إقرأ أيضا|اقرأ ايضا|اقرأ كذلك|اقرأ المزيد|مقالات ذات صلة|أخبار ذات صلة"
    r"|مواضيع ذات صلة|أخبار مشابهة|مقالات مشابهة)(?!\w)",
    re.I,
)
DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "select", "button", "svg")
SEMANTIC_BOILER = {"header", "nav", "footer", "aside", "form"}
BOX_TAGS = (*SEMANTIC_BOILER, "div", "section", "ul", "ol", "p", "span", "table")
HEAD_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "div", "span", "strong", "b", "section")
MIN_HEADLINE = 8
RELATED_HEAD_MAX = 60  # characters of a "À lire aussi"-like heading
JSONLD_XPATH = etree.XPath("//script[@type='application/ld+json']")


def _aware(value: datetime) -> datetime:
    """Naive → Moroccan time; aware → kept with the offset the page states.

    The page's own offset keeps the day it states ("2020-06-07T23:30-04:00" is the 7th,
    not the 8th in Casablanca); conversion to the user's time zone is for display.
    """
    return value.replace(tzinfo=LOCAL_TZ) if value.tzinfo is None else value


def _plausible(value: datetime | None) -> datetime | None:
    """None for placeholders ("0001-01-01T00:00:00Z") and dates before the web's news."""
    return value if value is not None and value.year >= MIN_YEAR else None


def parse_iso(value: str | None) -> datetime | None:
    """ISO 8601 or RFC 2822 timestamp → aware datetime (naive = Moroccan time), or None.

    Never raises: placeholder, out-of-range and malformed values are None.
    """
    if not value:
        return None
    value = value.strip()[:100]
    try:
        return _plausible(_aware(datetime.fromisoformat(value)))
    except (ValueError, OverflowError):
        pass
    try:
        return _plausible(_aware(parsedate_to_datetime(value)))
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    match = ISO_RE.search(value)
    return _make(match[1], match[3], match[4], match[5], match[6]) if match else None


def _make(year: str, month: str | int, day: str, hour: str | None = None,
          minute: str | None = None, ampm: str | None = None) -> datetime | None:
    try:
        h = int(hour) if hour else 0
        if ampm and ampm.lower() == "pm" and h < 12:
            h += 12
        value = datetime(int(year), int(month), int(day), h, int(minute or 0), tzinfo=LOCAL_TZ)
    except (ValueError, TypeError, OverflowError):
        return None
    return _plausible(value)


def _time(m: re.Match[str]) -> tuple[str | None, str | None, str | None]:
    return m["hour"], m["min1"] or m["min2"], m["ampm"]


def find_dates(text: str) -> Iterator[tuple[int, datetime]]:
    """Every date written out in ``text``, as (offset, datetime), in no particular order."""
    text = text.translate(DIGITS)
    for m in DMY_RE.finditer(text):
        value = _make(m[3], MONTHS[m[2].lower()], m[1], *_time(m))
        if value:
            yield m.start(), value
    for m in MDY_RE.finditer(text):
        value = _make(m[3], MONTHS[m[1].lower()], m[2], *_time(m))
        if value:
            yield m.start(), value
    for m in NUMERIC_RE.finditer(text):
        value = _make(m[4], m[3], m[1], *_time(m))  # day first, as in French and Arabic
        if value:
            yield m.start(), value
    for m in ISO_RE.finditer(text):
        value = _make(m[1], m[3], m[4], m[5], m[6])
        if value and m[7]:  # a stated offset (a <time datetime>): keep it, and its day
            value = _plausible(parse_iso(m[0]))
        if value:
            yield m.start(), value


def _jsonld_objects(data: object) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _jsonld_objects(item)
    elif isinstance(data, dict):
        yield data
        for key in ("@graph", "mainEntity", "mainEntityOfPage"):
            if isinstance(data.get(key), (list, dict)):
                yield from _jsonld_objects(data[key])


def jsonld_types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type", [])
    return {str(k).lower() for k in (kind if isinstance(kind, list) else [kind])}


def jsonld(tree: etree._Element) -> list[dict[str, Any]]:
    """Top-level JSON-LD objects of the page (@graph and mainEntity unfolded)."""
    objects: list[dict[str, Any]] = []
    for script in JSONLD_XPATH(tree):
        try:
            data = json.loads(script.text or "", strict=False)
        except ValueError:
            continue
        objects.extend(_jsonld_objects(data))
    return objects


def structured_date(tree: etree._Element, latest: datetime,
                    objects: list[dict[str, Any]] | None = None) -> datetime | None:
    """Publication date from JSON-LD (an Article object; `objects`: the page's `jsonld`
    when the caller has parsed it) or from ``<meta>`` tags."""
    objects = jsonld(tree) if objects is None else objects
    for wanted in (ARTICLE_TYPES, None):
        for obj in objects:
            if wanted is None or jsonld_types(obj) & wanted:
                for key in ("datePublished", "dateCreated"):
                    value = parse_iso(str(obj.get(key) or ""))
                    if value and value <= latest:
                        return value
    metas: dict[str, str | None] = {}
    for meta in META_XPATH(tree):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        metas.setdefault(key, meta.get("content"))
    for key in META_KEYS:
        value = parse_iso(metas.get(key))
        if value and value <= latest:
            return value
    return None


def visible_date(lines: list[tuple[str, bool]], latest: datetime, *,
                 announced: bool = False) -> datetime | None:
    """The date written nearest the headline.

    Args:
        lines: the page's text segments in document order; the flag marks the headline.
        latest: dates after this (e.g. the fetch time) are ignored.

    Returns:
        The best candidate, or None: a date announced as published ("Publié le", "نشر")
        first, one announced as an update ("Mis à jour le") last, otherwise the nearest
        to the headline; dates before it count double distance, a time of day half.
    """
    parts: list[str] = []
    size, head = 0, None
    for segment, is_head in lines:
        if is_head and head is None:
            head = (size, size + len(segment))
        parts.append(segment)
        size += len(segment) + 1
    text = "\n".join(parts)
    best: tuple[int, float, datetime] | None = None
    for pos, value in find_dates(text):
        if value > latest:
            continue
        if head is None:
            score = float(pos)
        elif pos >= head[1]:
            score = pos - head[1]
        else:
            score = 2.0 * (head[0] - pos)
        if value.hour or value.minute:  # a time of day: a dateline, not a date in a sentence
            score *= 0.5
        start, end = text.rfind("\n", 0, pos) + 1, text.find("\n", pos)
        if len(text[start:end if end >= 0 else None].strip()) <= DATELINE_ALONE:
            score *= 0.5  # a date on a line of its own: a dateline, not a photo caption
        before = text[max(0, pos - 30):pos]
        tier = 2 if UPDATE_RE.search(before) else 0 if PUBLISHED_RE.search(before) else 1
        if (best is None or (tier, score) < best[:2]) and (tier == 0 or not announced):
            best = (tier, score, value)
    return best[2] if best else None


_UNITS = {"minute": 60, "heure": 3600, "hour": 3600, "jour": 86400, "day": 86400,
          "semaine": 604800, "week": 604800,
          "دقيقة": 60, "دقائق": 60, "ساعة": 3600, "ساعات": 3600, "يوم": 86400, "أيام": 86400,
          "ايام": 86400, "أسبوع": 604800, "اسبوع": 604800, "أسابيع": 604800, "اسابيع": 604800}
_DUALS = {"دقيقتين": 120, "ساعتين": 7200, "يومين": 172800, "أسبوعين": 1209600, "اسبوعين": 1209600}
_ONE = {"un": 1, "une": 1, "a": 1, "an": 1, "one": 1}
_RELATIVE_RES = (
    re.compile(r"\bil y a\s+(\d+|une?)\s+(minute|heure|jour|semaine)s?\b", re.IGNORECASE),
    re.compile(r"\b(\d+|an?|one)\s+(minute|hour|day|week)s?\s+ago\b", re.IGNORECASE),
    re.compile(r"منذ\s+(\d+)\s+(دقيقة|دقائق|ساعة|ساعات|يوم|أيام|ايام|أسبوع|اسبوع|أسابيع|اسابيع)"),
    re.compile(r"منذ\s+()(دقيقتين|ساعتين|يومين|أسبوعين|اسبوعين|دقيقة|ساعة|يوم|أسبوع|اسبوع)"),
)
DATELINE_ALONE = 40  # a line this short holding a date is a dateline
DATELINE_CHARS = 80  # a relative date counts only on a short line: a dateline, not a sentence
DATELINE_REACH = 6  # segments after the headline (2 before) where a dateline may sit


def relative_date(lines: list[tuple[str, bool]], fetched_at: datetime) -> datetime | None:
    """A dateline that says how long ago ("Il y a 3 heures", "منذ ساعتين", "5 hours ago"),
    next to the headline, as a time before the fetch; None if there is none.

    Only short lines near the headline count: "Il y a trois jours, la police..." in the
    body is a story, not a dateline.
    """
    head = next((i for i, (_, is_head) in enumerate(lines) if is_head), None)
    if head is None:
        return None
    for text, _ in lines[max(0, head - 2) : head + DATELINE_REACH + 1]:
        line = clean_text(text)
        if not line or len(line) > DATELINE_CHARS:
            continue
        for pattern in _RELATIVE_RES:
            m = pattern.search(line)
            if not m:
                continue
            count, unit = m.group(1).lower(), m.group(2).lower()
            if unit in _DUALS:
                seconds = _DUALS[unit]
            else:
                n = int(count) if count.isdigit() else _ONE.get(count, 1)
                seconds = n * _UNITS[unit]
            local = _aware(fetched_at).astimezone(LOCAL_TZ)
            return (local - timedelta(seconds=seconds)).replace(second=0, microsecond=0)
    return None


def clean_text(text: str | None) -> str:
    """Whitespace runs collapsed to one space, ends stripped. str.split and the regex
    ``\\s`` agree on what is whitespace (both Py_UNICODE_ISSPACE); split is ~4x faster,
    and this runs on every element's text of every page."""
    return " ".join(text.split()) if text else ""


def class_attrs(el: etree._Element) -> str:
    return f"{el.get('class') or ''} {el.get('id') or ''}"


def _headline(tree: etree._Element, title: str | None) -> etree._Element | None:
    """The h1 holding the headline (not a logo h1), or None."""
    key = normalize(title or "")
    h1s = [h for h in tree.iter("h1") if len(clean_text(h.text_content())) >= MIN_HEADLINE]
    for h1 in h1s:
        if key and normalize(h1.text_content()) == key:
            return h1
    return h1s[0] if h1s else None


@lru_cache(maxsize=65536)
def _boiler_class(attrs: str) -> bool:
    """Whether a class/id reads as boilerplate; cached, since an outlet's pages repeat
    their classes and the pattern is a long alternation searched at every position."""
    return BOILER_RE.search(attrs) is not None


def _short_text(el: etree._Element, limit: int) -> str | None:
    """``clean_text(el.text_content())`` when shorter than `limit`, else None, without
    building the text of a big element (a page's wrapper div holds all of it): its
    non-space characters alone reaching `limit` settle it."""
    pieces: list[str] = []
    visible = 0
    for piece in el.itertext():
        pieces.append(piece)
        visible += sum(map(len, piece.split()))
        if visible >= limit:
            return None
    text = clean_text("".join(pieces))
    return text if len(text) < limit else None


def _p_chars(el: etree._Element) -> int:
    return sum(len(p.text_content()) for p in el.iter("p"))


def prune(tree: etree._Element, title: str | None) -> tuple[etree._Element, etree._Element | None]:
    """A copy of the page without boilerplate, and its headline element (or None).

    Menus, headers, footers, asides, forms and elements whose class or id reads as
    boilerplate (related, comments, share, cookie, ticker...) go, and so do the blocks
    under a "À lire aussi"-like heading; never the headline's ancestors, nor an element
    holding most of the page's paragraph text (ASP.NET pages wrap all in a <form>).
    """
    tree = deepcopy(tree)
    for el in list(tree.iter(*DROP_TAGS)):
        if el.getparent() is not None and el.get("type") != "application/ld+json":
            el.drop_tree()
    h1 = _headline(tree, title)
    keep = set(h1.iterancestors()) | {h1} if h1 is not None else set()
    main_text = 0.5 * _p_chars(tree)

    def droppable(el: etree._Element) -> bool:
        return el not in keep and el.getparent() is not None and not (
            main_text and _p_chars(el) >= main_text)

    for el in list(tree.iter(*BOX_TAGS)):
        if (el.tag in SEMANTIC_BOILER or _boiler_class(class_attrs(el))) and droppable(el):
            el.drop_tree()
    for el in list(tree.iter(*HEAD_TAGS)):
        text = _short_text(el, RELATED_HEAD_MAX)
        if text is not None and RELATED_HEAD_RE.match(text) and droppable(el):
            parent = el.getparent()
            if parent is not None and droppable(parent) and len(parent.text_content()) < 1500:
                parent.drop_tree()
            else:
                el.drop_tree()
    return tree, h1


def _segments(tree: etree._Element, h1: etree._Element | None) -> list[tuple[str, bool]]:
    """Text pieces of the pruned page in document order, the headline flagged."""
    out: list[tuple[str, bool]] = []
    in_head = False
    for event, el in etree.iterwalk(tree, events=("start", "end")):
        if event == "start" and isinstance(el.tag, str):
            if h1 is not None and el is h1:
                out.append((clean_text(h1.text_content()), True))
                in_head = True
            elif not in_head and el.tag != "script":
                stamp = parse_iso(el.get("datetime")) if el.tag == "time" else None
                if stamp:  # with its offset, which find_dates reads back
                    out.append((stamp.isoformat(timespec="minutes"), False))
                if el.text:
                    out.append((el.text, False))
        elif event == "end":
            if el is h1:
                in_head = False
            if el.tail and not in_head:
                out.append((el.tail, False))
    return [(text, head) for text, head in out if head or text.strip()]


def find_published(tree: etree._Element, url: str, fetched_at: datetime,
                   pruned: tuple[etree._Element, etree._Element | None],
                   objects: list[dict[str, Any]] | None = None) -> datetime | None:
    """Publication date: JSON-LD/meta, else the date written nearest the headline, else a
    relative dateline ("il y a 3 heures"), else htmldate.

    Args:
        tree: the parsed page.
        url: its URL (htmldate reads dates in URLs).
        fetched_at: fetch time; later dates are not publication dates.
        pruned: ``prune(tree, title)``: the page without boilerplate, and its headline.
        objects: the page's `jsonld`, when the caller has parsed it.

    Returns:
        An aware datetime (Moroccan time when the page gives no offset), or None.
    """
    latest = _aware(fetched_at) + timedelta(hours=2)
    structured = structured_date(tree, latest, objects)
    if structured:
        return _on_url_day(structured, url_day(url))
    segments = _segments(*pruned)  # only the visible-date paths read the text
    max_date = latest.strftime("%Y-%m-%d")
    day = find_date(pruned[0], extensive_search=False, original_date=True, url=url, max_date=max_date)
    if day:  # markup htmldate knows (URL, <time>, itemprop, header metadata)
        return visible_on(visible_date(segments, latest),
                          visible_date(segments, latest, announced=True), day)
    found = visible_date(segments, latest) or relative_date(segments, fetched_at)
    if found:
        return found
    day = find_date(tree, original_date=True, url=url, max_date=max_date)
    if day and day in _boilerplate_days(tree, pruned[0]):  # a top bar's or a teaser's date
        day = find_date(pruned[0], original_date=True, url=url, max_date=max_date)
    return datetime.fromisoformat(day).replace(tzinfo=LOCAL_TZ) if day else None


def _boilerplate_days(tree: etree._Element, pruned: etree._Element) -> set[str]:
    """Days written in the parts of the page that pruning removed (menus, tickers,
    related lists) and nowhere in what is left."""
    def days(el: etree._Element) -> set[str]:
        return {value.date().isoformat() for _, value in find_dates(el.text_content())}
    return days(tree) - days(pruned)


def visible_on(visible: datetime | None, announced: datetime | None, day: str) -> datetime:
    """htmldate's day; or the dateline announced as the publication ("Publié le ...":
    htmldate may have read an update); or the dateline under the headline when it is
    htmldate's day (it adds the time of day)."""
    if announced is not None and announced.date().isoformat() < day:
        return announced
    if visible is not None and visible.date().isoformat() == day:
        return visible
    return datetime.fromisoformat(day).replace(tzinfo=LOCAL_TZ)


URL_DAY_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)([/_-]?)(0[1-9]|1[0-2])\2(0[1-9]|[12]\d|3[01])(?!\d)")


def url_day(url: str) -> datetime | None:
    """The day a URL's path states (/2020/02/17/, /20200413/, -2020-02-17-), or None."""
    m = URL_DAY_RE.search(urlsplit(url).path)
    return _make(m[1], m[3], m[4]) if m else None


def _on_url_day(found: datetime, day: datetime | None) -> datetime:
    """A timestamp a day off the day its URL states (a UTC stamp of a late-evening story
    elsewhere) is put on the URL's day: the day the outlet files it under."""
    if day is None or abs((found.date() - day.date()).days) != 1:
        return found
    return found.replace(year=day.year, month=day.month, day=day.day)
