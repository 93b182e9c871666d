"""The web view's query parameters and what its pages show of a story. Pure: no database,
no HTTP.

A bad parameter raises BadRequest with one line naming it; the page answers 400 with that
line. The story list's window is the recent week unless the query names another (`since`,
`days` or a `day`): the whole archive is never read at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from veille.digest_draft import excerpt, is_rtl
from veille.storage.search import StoryHit
from veille.storage.timestamps import as_utc
from veille.storage.views import StoryView, TimelineEntry

DEFAULT_DAYS = 7
MAX_DAYS = 3650
DEFAULT_LIMIT = 50  # a page of the story list
API_LIMIT = 500  # /api/stories, as `veille stories --limit`'s default
SEARCH_LIMIT = 50  # stories a search shows, as `run_search`'s default
MAX_LIMIT = 500
MAX_PAGE = 10_000
FIRST_DAY, LAST_DAY = date(1, 1, 2), date(9999, 12, 30)


class BadRequest(ValueError):
    """A query parameter the view cannot use, worded in one line for the reader."""


@dataclass(frozen=True)
class StoryFilters:
    """The story list's filters, as the query string gave them (None: not given)."""

    topic: str | None = None
    all: bool = False  # stories flagged for no topic too (`veille stories --all`)
    since: datetime | None = None
    days: int | None = None
    day: date | None = None
    outlet: str | None = None
    language: str | None = None
    page: int = 1
    limit: int = DEFAULT_LIMIT

    def topics(self, configured: Sequence[str]) -> list[str] | None:
        """The topics to list, as `veille stories` picks them (None: every story)."""
        if self.topic:
            return [self.topic]
        return None if self.all else list(configured)

    def window(self, tz: ZoneInfo, now: datetime) -> tuple[datetime | None, datetime | None, datetime | None]:
        """(first seen since, dated from, dated before): a day, an explicit since, or the
        last `days` (a week by default)."""
        if self.day is not None:
            start = datetime.combine(self.day, time(), tzinfo=tz)
            return None, start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
        if self.since is not None:
            return self.since, None, None
        return now - timedelta(days=self.days or DEFAULT_DAYS), None, None

    def query(self, **changes: object) -> str:
        """The query string of these filters with `changes`, defaults left out."""
        f = replace(self, **changes)  # type: ignore[arg-type]
        pairs: list[tuple[str, str]] = []
        if f.topic:
            pairs.append(("topic", f.topic))
        if f.all:
            pairs.append(("all", "1"))
        if f.since is not None:
            pairs.append(("since", f.since.isoformat()))
        if f.days is not None:
            pairs.append(("days", str(f.days)))
        if f.day is not None:
            pairs.append(("day", f.day.isoformat()))
        if f.outlet:
            pairs.append(("outlet", f.outlet))
        if f.language:
            pairs.append(("language", f.language))
        if f.page != 1:
            pairs.append(("page", str(f.page)))
        if f.limit != DEFAULT_LIMIT:
            pairs.append(("limit", str(f.limit)))
        return urlencode(pairs)


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}: {value} is not between {low} and {high}")
    return value


def parse_since(raw: str, name: str = "since") -> datetime | None:
    """An ISO date or date-time, naive read as UTC (as `veille stories --since` reads it)."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return as_utc(datetime.fromisoformat(raw)).astimezone(UTC)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not an ISO date/time (e.g. 2025-04-14 or "
                         "2025-04-14T07:00)") from None
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the calendar's end in UTC
        raise BadRequest(f"{name}: {raw!r} is out of range") from None


def parse_topic(params: Mapping[str, str], configured: Sequence[str]) -> str | None:
    topic = params.get("topic", "").strip() or None
    if topic is not None and topic not in configured:
        raise BadRequest(f"topic: no topic named {topic!r} (known: {', '.join(configured) or 'none'})")
    return topic


def parse_filters(params: Mapping[str, str], configured: Sequence[str],
                  default_limit: int = DEFAULT_LIMIT) -> StoryFilters:
    """The story list's filters from a query string; BadRequest on a value it cannot use."""
    raw_day = params.get("day", "").strip()
    try:
        day = date.fromisoformat(raw_day) if raw_day else None
    except ValueError:
        raise BadRequest(f"day: {raw_day!r} is not a date (e.g. 2025-04-14)") from None
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:  # its bounds in UTC must exist
        raise BadRequest(f"day: {raw_day!r} is out of range")
    raw_all = params.get("all", "").strip().lower()
    if raw_all not in {"", "0", "1", "true", "false", "yes", "no", "on", "off"}:
        raise BadRequest(f"all: {raw_all!r} is not 1 or 0")
    return StoryFilters(
        topic=parse_topic(params, configured),
        all=raw_all in {"1", "true", "yes", "on"},
        since=parse_since(params.get("since", "")),
        days=_int(params, "days", 0, 1, MAX_DAYS) or None,
        day=day,
        outlet=params.get("outlet", "").strip() or None,
        language=params.get("language", "").strip() or None,
        page=_int(params, "page", 1, 1, MAX_PAGE),
        limit=_int(params, "limit", default_limit, 1, MAX_LIMIT),
    )


def parse_limit(params: Mapping[str, str], default: int) -> int:
    return _int(params, "limit", default, 1, MAX_LIMIT)


# ---------------------------------------------------------------- what a page shows


def keep_topics(views: Sequence[StoryView], topics: Sequence[str] | None) -> list[StoryView]:
    """Each story with only the topics asked for, as `list_stories(topics=…)` shows them.

    The page's ids are already filtered: listing them without `topics` and keeping the
    topics here spares `list_stories` its second pass over every flagged article."""
    if topics is None:
        return list(views)
    wanted = set(topics)
    return [replace(v, topics=[t for t in v.topics if t.name in wanted]) for v in views]


def local(value: datetime | None, tz: ZoneInfo) -> str:
    """A time in the configured zone, to the minute ("—" when unknown)."""
    return f"{as_utc(value).astimezone(tz):%Y-%m-%d %H:%M}" if value else "—"


def right_to_left(language: str | None, text: str) -> bool:
    """Arabic articles read right to left; text of no stated language by its script."""
    if language:
        return language == "ar"
    return is_rtl(text)


def link_safe(url: str) -> bool:
    """Only http(s) URLs become links (never javascript:, data:, …)."""
    return url.lower().startswith(("https://", "http://"))


@dataclass(frozen=True)
class Card:
    """One story in a list: the line a reader scans."""

    id: int
    title: str
    rtl: bool
    when: str  # published (else first seen), in the configured zone
    day: date
    topics: list[str]
    outlets: list[str]
    languages: list[str]
    updated: str


def card(view: StoryView, tz: ZoneInfo) -> Card:
    dated = view.published or view.first_seen
    first = view.articles[0] if view.articles else None  # the story's title is its earliest's
    return Card(
        id=view.id,
        title=view.title,
        rtl=right_to_left(first.language if first else None, view.title),
        when=local(dated, tz),
        day=as_utc(dated).astimezone(tz).date(),
        topics=[t.name for t in view.topics],
        outlets=list(dict.fromkeys(a.outlet for a in view.articles)),
        languages=sorted({a.language for a in view.articles if a.language}),
        updated=local(view.updated, tz),
    )


def by_day(cards: Sequence[Card]) -> list[tuple[date, list[Card]]]:
    """Cards grouped under their day, keeping their order (newest first)."""
    groups: dict[date, list[Card]] = {}
    for c in cards:
        groups.setdefault(c.day, []).append(c)
    return list(groups.items())


@dataclass(frozen=True)
class Entry:
    """One article on a story's timeline."""

    joined: str
    outlet: str
    language: str | None
    rtl: bool
    title: str
    url: str
    safe: bool
    published: str
    excerpt: str
    copy_of: str | None  # "outlet: title" of the original, for a copy


@dataclass(frozen=True)
class Term:
    term: str
    where: str  # "title, text ×3"
    rtl: bool


@dataclass(frozen=True)
class Reason:
    """A topic the story was flagged for: its score and every matched term, title hits
    first, then the most frequent (each term once, with the fields it was found in)."""

    topic: str
    label: str
    score: float
    terms: list[Term] = field(default_factory=list)


def timeline(view: StoryView, tz: ZoneInfo) -> list[Entry]:
    """The story's articles in the order they joined, each with an excerpt of its text."""
    texts = {a.id: a.text for a in view.articles}
    names = {e.article_id: f"{e.outlet}: {e.title}" for e in view.timeline}
    return [_entry(e, texts.get(e.article_id, ""), names, tz) for e in view.timeline]


def _entry(e: TimelineEntry, text: str, names: dict[int, str], tz: ZoneInfo) -> Entry:
    return Entry(
        joined=local(e.first_seen, tz),
        outlet=e.outlet,
        language=e.language,
        rtl=right_to_left(e.language, e.title),
        title=e.title,
        url=e.url,
        safe=link_safe(e.url),
        published=local(e.published, tz),
        excerpt=excerpt(text, e.title),
        copy_of=names.get(e.copy_of) if e.copy_of is not None else None,
    )


def reasons(view: StoryView, labels: Mapping[str, str]) -> list[Reason]:
    """Why the story was flagged: each topic, its score and every matched term and field."""
    return [Reason(t.name, labels.get(t.name, t.name), t.score, terms(t.matched))
            for t in view.topics]


def terms(matched: Sequence[Mapping[str, Any]]) -> list[Term]:
    """`TopicView.matched` ({term, field, count} rows) as one Term per term."""
    where: dict[str, list[str]] = {}
    weight: dict[str, tuple[int, int]] = {}
    for m in matched:
        term = str(m.get("term") or "").strip()
        if not term:
            continue
        fld, count = str(m.get("field") or "text"), int(m.get("count") or 1)
        where.setdefault(term, []).append(fld if count == 1 else f"{fld} ×{count}")
        in_title, total = weight.get(term, (0, 0))
        weight[term] = (max(in_title, int(fld == "title")), total + count)
    ranked = sorted(where, key=lambda t: (-weight[t][0], -weight[t][1]))
    return [Term(t, ", ".join(where[t]), is_rtl(t)) for t in ranked]


@dataclass(frozen=True)
class Match:
    """An article that matched a search."""

    outlet: str
    language: str | None
    rtl: bool
    title: str
    url: str
    safe: bool
    published: str


@dataclass(frozen=True)
class Hit:
    """A story a search found, with its matching articles, best first."""

    id: int
    title: str
    rtl: bool
    when: str
    matches: list[Match]


def hit(h: StoryHit, tz: ZoneInfo) -> Hit:
    matches = [Match(a.outlet, a.language, right_to_left(a.language, a.title), a.title, a.url,
                     link_safe(a.url), local(a.published, tz)) for a in h.articles]
    lead = next((a for a in h.articles if a.title == h.title), None)
    return Hit(h.id, h.title, right_to_left(lead.language if lead else None, h.title),
               local(h.published or h.first_seen, tz), matches)
