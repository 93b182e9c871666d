"""The digest's content as plain data: which stories under which topic, with excerpts,
links and the reasons they were flagged, then the developing stories (mailed before,
with only their new articles and what is new about them). Pure: no database, no
templates, no network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError

from veille.pipeline.config import Config
from veille.pipeline.limits import shorten
from veille.storage.views import StoryView, TimelineEntry

EXCERPT_CHARS = 220  # about two lines of the HTML part
TITLE_CHARS = 300  # a story's or an article's title as the digest shows it (stored: up to 500)
REASON_TERMS = 8  # matched terms shown per topic; the rest are counted
_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")
_ENGLISH = Locale("en")  # the digest's own words are English


@dataclass(frozen=True)
class Link:
    outlet: str
    label: str  # the outlet, numbered when it has several articles in the story
    url: str
    title: str
    safe: bool  # http(s) URL: rendered as a link


@dataclass(frozen=True)
class Term:
    term: str
    where: str  # "title, text ×3"


@dataclass(frozen=True)
class Reason:
    topic: str
    label: str
    score: float
    terms: tuple[Term, ...]
    more: int = 0  # matched terms not shown

    @property
    def line(self) -> str:
        terms = "; ".join(f"{t.term} ({t.where})" for t in self.terms)
        more = f"; +{self.more} more" if self.more else ""
        return f"{self.label}, score {self.score:g} — {terms}{more}"


@dataclass(frozen=True)
class DigestStory:
    id: int
    title: str
    title_rtl: bool
    first_seen: datetime
    first_seen_local: str
    excerpt: str
    excerpt_rtl: bool
    links: tuple[Link, ...]
    reasons: tuple[Reason, ...]
    article_ids: tuple[int, ...]  # every article it carries, copies included

    @property
    def outlets(self) -> list[str]:
        return list(dict.fromkeys(link.outlet for link in self.links))

    @property
    def href(self) -> str | None:
        """The earliest article's URL, for the title link."""
        return next((link.url for link in self.links if link.safe), None)


@dataclass(frozen=True)
class NewArticle:
    """An article a developing story gained, as its line in the digest shows it."""

    id: int
    outlet: str
    language: str  # its name ("Arabic"), or "" when not known
    when_local: str  # published (stored when the page gave no date), in the digest's zone
    title: str
    title_rtl: bool
    url: str
    safe: bool  # http(s) URL: rendered as a link


@dataclass(frozen=True)
class DevelopingStory:
    """A story this recipient list was mailed before that gained articles since: only
    those come back, with what they add ("+2 outlets: X, Y; first Arabic coverage")."""

    id: int
    title: str
    title_rtl: bool
    topic: str  # the label of the digest topic it is followed under
    first_mailed_local: str
    news: str
    articles: tuple[NewArticle, ...]

    @property
    def href(self) -> str | None:
        """The first new article's URL, for the title link."""
        return next((a.url for a in self.articles if a.safe), None)


@dataclass(frozen=True)
class Development:
    """What the draft needs of a developing story: the story as it is now, which of its
    articles the list has not been mailed, and when it was first mailed to the list."""

    view: StoryView
    new: frozenset[int]
    first_mailed: datetime


@dataclass(frozen=True)
class DigestSection:
    topic: str
    label: str
    stories: tuple[DigestStory, ...]


@dataclass(frozen=True)
class DigestDraft:
    generated_at: datetime
    timezone: str
    sections: tuple[DigestSection, ...]
    since: datetime | None = None  # explicit lower bound (--since)
    last_sent: datetime | None = None  # the previous sent digest for this list
    developing: tuple[DevelopingStory, ...] = ()  # mailed before, back with new articles

    @property
    def stories(self) -> list[DigestStory]:
        """The new stories (never mailed to this list), section by section."""
        return [s for sec in self.sections for s in sec.stories]

    @property
    def story_ids(self) -> list[int]:
        """The new stories' ids: what recording the digest marks as mailed."""
        return [s.id for s in self.stories]

    @property
    def count(self) -> int:
        """The stories the message shows, each once: new ones plus developing ones (a
        developing story counts once however many articles it gained). The subject's
        {count}; 0 means an empty digest."""
        return len(self.stories) + len(self.developing)

    @property
    def carried(self) -> dict[int, tuple[int, ...]]:
        """Story id → the articles the message carries: every article of a new story,
        only the new ones of a developing story. Each is recorded as mailed to the list."""
        out = {s.id: s.article_ids for s in self.stories}
        out.update((d.id, tuple(a.id for a in d.articles)) for d in self.developing)
        return out

    def local(self, value: datetime) -> str:
        return f"{value.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d %H:%M}"

    @property
    def date(self) -> str:
        return f"{self.generated_at.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d}"

    @property
    def window(self) -> str:
        """What the digest covers, in words, for its header."""
        if self.since is not None:
            return f"first seen since {self.local(self.since)}"
        if self.last_sent is not None:
            return f"new since the last digest ({self.local(self.last_sent)})"
        return "first digest for these recipients"


def is_rtl(text: str) -> bool:
    """True when Arabic script dominates the letters of `text`."""
    return len(_ARABIC.findall(text)) > len(_LATIN.findall(text))


def excerpt(text: str, title: str = "", limit: int = EXCERPT_CHARS) -> str:
    """About two lines of `text`: whitespace folded, a leading title dropped, cut at a word."""
    flat = " ".join(text.split())
    head = " ".join(title.split())
    if head and flat.startswith(head):
        flat = flat[len(head) :].lstrip(" .:-–—")
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—،؛") + "…"


def _terms(matched: Sequence[dict[str, Any]]) -> tuple[tuple[Term, ...], int]:
    """The strongest evidence first (title hits, then most frequent), and how many more.

    A reader scans the reason in a second: a long list of every inflection hides it.
    """
    by_term: dict[str, list[str]] = {}
    weight: dict[str, tuple[int, int]] = {}
    for m in matched:
        term = str(m.get("term", "")).strip()
        if not term:
            continue
        count = int(m.get("count") or 1)
        fld = str(m.get("field") or "text")
        by_term.setdefault(term, []).append(fld if count == 1 else f"{fld} ×{count}")
        in_title, total = weight.get(term, (0, 0))
        weight[term] = (max(in_title, int(fld == "title")), total + count)
    ranked = sorted(by_term, key=lambda t: (-weight[t][0], -weight[t][1]))
    shown = ranked[:REASON_TERMS]
    return tuple(Term(t, ", ".join(by_term[t])) for t in shown), len(ranked) - len(shown)


def _story(view: StoryView, labels: dict[str, str], draft_tz: ZoneInfo) -> DigestStory:
    seen: dict[str, int] = {}
    links = []
    for a in view.articles:
        seen[a.outlet] = seen.get(a.outlet, 0) + 1
        label = a.outlet if seen[a.outlet] == 1 else f"{a.outlet} ({seen[a.outlet]})"
        safe = a.url.lower().startswith(("https://", "http://"))
        links.append(Link(a.outlet, label, a.url, shorten(a.title, TITLE_CHARS), safe))
    source = next((a for a in view.articles if a.text.strip()), None)
    text = excerpt(source.text, source.title) if source else ""
    by_name = {t.name: t for t in view.topics}
    reasons = tuple(
        Reason(name, label, by_name[name].score, *_terms(by_name[name].matched))
        for name, label in labels.items()
        if name in by_name
    )
    title = shorten(" ".join(view.title.split()), TITLE_CHARS)  # rows stored before the caps too
    return DigestStory(
        id=view.id,
        title=title,
        title_rtl=is_rtl(title),
        first_seen=view.first_seen,
        first_seen_local=f"{view.first_seen.astimezone(draft_tz):%Y-%m-%d %H:%M}",
        excerpt=text,
        excerpt_rtl=is_rtl(text),
        links=tuple(links),
        reasons=reasons,
        article_ids=tuple(a.id for a in view.articles),
    )


def language_name(code: str | None) -> str:
    """"Arabic" for "ar" (CLDR names, through Babel); the code itself when unknown."""
    if not code:
        return ""
    try:
        name = _ENGLISH.languages.get(Locale.parse(code.replace("-", "_")).language)
    except (ValueError, UnknownLocaleError):
        name = None
    return name or code


def _joined(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def news_line(before: Sequence[TimelineEntry], new: Sequence[TimelineEntry]) -> str:
    """What `new` adds to a story that had `before`: outlets it had not, languages it
    had not, and the rest as follow-ups, e.g. "+2 outlets: X, Y; first Arabic coverage;
    +1 follow-up: le360"."""
    had_outlets = {e.outlet for e in before}
    had_langs = {e.language for e in before}
    outlets: list[str] = []  # first articles of outlets the story did not have
    follow: list[str] = []  # the others: more from an outlet it had, or had just now
    for e in new:
        (follow if e.outlet in had_outlets or e.outlet in outlets else outlets).append(e.outlet)
    langs = list(dict.fromkeys(language_name(e.language) for e in new
                               if e.language and e.language not in had_langs))
    parts = []
    if outlets:
        parts.append(f"+{len(outlets)} outlet{'s' if len(outlets) > 1 else ''}: {', '.join(outlets)}")
    if langs:
        parts.append(f"first {_joined(langs)} coverage")
    if follow:
        parts.append(f"+{len(follow)} follow-up{'s' if len(follow) > 1 else ''}: "
                     f"{', '.join(dict.fromkeys(follow))}")
    return "; ".join(parts)


def _developing(dev: Development, label: str, tz: ZoneInfo) -> DevelopingStory:
    view = dev.view
    new = [e for e in view.timeline if e.article_id in dev.new]
    before = [e for e in view.timeline if e.article_id not in dev.new]
    articles = []
    for e in new:
        title = shorten(" ".join(e.title.split()), TITLE_CHARS)
        when = e.published or e.first_seen
        articles.append(NewArticle(
            id=e.article_id, outlet=e.outlet, language=language_name(e.language),
            when_local=f"{when.astimezone(tz):%Y-%m-%d %H:%M}", title=title, title_rtl=is_rtl(title),
            url=e.url, safe=e.url.lower().startswith(("https://", "http://")),
        ))
    title = shorten(" ".join(view.title.split()), TITLE_CHARS)
    return DevelopingStory(
        id=view.id,
        title=title,
        title_rtl=is_rtl(title),
        topic=label,
        first_mailed_local=f"{dev.first_mailed.astimezone(tz):%Y-%m-%d %H:%M}",
        news=news_line(before, new),
        articles=tuple(articles),
    )


def draft_from_stories(
    stories: Sequence[StoryView],
    cfg: Config,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    last_sent: datetime | None = None,
    developing: Sequence[Development] = (),
) -> DigestDraft:
    """Group `stories` by the first of `digest.topics` they match, keeping their order.

    A story flagged for several digest topics appears once, under the first; its reasons
    list every digest topic it matched. The `developing` stories (mailed to the list
    before) follow in one section, latest news first, each with only its new articles;
    one that is also among `stories`, or matches no digest topic, or gained nothing, is
    left out.
    """
    labels = {name: name for name in cfg.digest.topics}
    for t in cfg.topics:
        if t.name in labels and t.label:
            labels[t.name] = t.label
    tz = ZoneInfo(cfg.schedule.timezone)
    placed: dict[str, list[DigestStory]] = {name: [] for name in labels}
    done: set[int] = set()
    for view in stories:
        names = {t.name for t in view.topics}
        home = next((n for n in labels if n in names), None)
        if home is None or view.id in done:
            continue
        done.add(view.id)
        placed[home].append(_story(view, labels, tz))
    sections = tuple(
        DigestSection(name, labels[name], tuple(items)) for name, items in placed.items() if items
    )
    back = []
    for dev in developing:
        names = {t.name for t in dev.view.topics}
        home = next((n for n in labels if n in names), None)
        latest = [e.first_seen for e in dev.view.timeline if e.article_id in dev.new]
        if home is None or dev.view.id in done or not latest:
            continue
        done.add(dev.view.id)
        back.append((max(latest), _developing(dev, labels[home], tz)))
    back.sort(key=lambda pair: pair[0], reverse=True)
    return DigestDraft(
        generated_at=now or datetime.now(UTC),
        timezone=cfg.schedule.timezone,
        sections=sections,
        since=since,
        last_sent=last_sent,
        developing=tuple(story for _, story in back),
    )
