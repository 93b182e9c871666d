"""Stories as the CLI, the digest and the web view read them.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, selectinload

from veille.storage.models import Article, Story, TopicMatchRow
from veille.storage.timestamps import as_utc


@dataclass(frozen=True)
class ArticleView:
    id: int
    url: str
    outlet: str
    title: str
    published: datetime | None  # at the offset the page stated (UTC when not known)
    language: str | None
    text: str
    duplicate_of: int | None


@dataclass(frozen=True)
class TimelineEntry:
    """An article, original or copy, as it joined its story: what the story's timeline
    shows (which outlet covered it when, in which language)."""

    article_id: int
    first_seen: datetime  # when veille stored it: when it joined the story
    outlet: str
    language: str | None
    title: str
    url: str
    published: datetime | None  # at the offset the page stated (UTC when not known)
    copy_of: int | None  # the original's article id when this one is a copy of it

    @property
    def is_copy(self) -> bool:
        return self.copy_of is not None


@dataclass(frozen=True)
class TopicView:
    name: str
    score: float
    matched: list[dict[str, Any]]


@dataclass(frozen=True)
class StoryView:
    id: int
    title: str
    first_seen: datetime
    last_seen: datetime
    published: datetime | None  # its earliest article's, at the offset that page stated
    topics: list[TopicView]
    articles: list[ArticleView]  # by publication date
    updated: datetime  # when it last gained an article, copies included (see `_updated`)
    timeline: list[TimelineEntry]  # every article in the order it joined

    def as_json(self) -> dict[str, Any]:
        urls = {e.article_id: e.url for e in self.timeline}
        return {
            "id": self.id,
            "title": self.title,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "published": _iso_stated(self.published),
            "topics": [
                {"name": t.name, "score": t.score, "matched": t.matched} for t in self.topics
            ],
            "articles": [
                {
                    "url": a.url,
                    "outlet": a.outlet,
                    "title": a.title,
                    "published": _iso_stated(a.published),
                    "language": a.language,
                }
                for a in self.articles
            ],
            "updated": _iso(self.updated),
            "timeline": [_timeline_json(e, urls) for e in self.timeline],
        }


def _timeline_json(entry: TimelineEntry, urls: dict[int, str]) -> dict[str, Any]:
    return {
        "first_seen": _iso(entry.first_seen),
        "outlet": entry.outlet,
        "language": entry.language,
        "title": entry.title,
        "url": entry.url,
        "published": _iso_stated(entry.published),
        "copy": entry.is_copy,
        "copy_of": urls.get(entry.copy_of) if entry.copy_of is not None else None,
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _iso_stated(value: datetime | None) -> str | None:
    """A publication time with the offset its page stated: that page's day and hour."""
    if value is None:
        return None
    return as_utc(value).isoformat()


def _merge_topics(rows: Iterable[TopicMatchRow]) -> list[TopicView]:
    """A story carries the topics of its articles: best score, union of matched terms."""
    best: dict[str, tuple[float, list[dict[str, Any]]]] = {}
    for r in rows:
        score, matched = best.get(r.topic, (0.0, []))
        seen = {(m.get("term"), m.get("field")) for m in matched}
        merged = matched + [m for m in r.matched if (m.get("term"), m.get("field")) not in seen]
        best[r.topic] = (max(score, r.score), merged)
    return [TopicView(name, round(s, 2), m) for name, (s, m) in sorted(best.items())]


def list_stories(
    session: Session,
    *,
    topics: Sequence[str] | None = None,
    since: datetime | None = None,
    story_ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[StoryView]:
    """Stories newest first; with `topics`, only stories flagged for one of them."""
    # what a view shows, no more: an article's MinHash and story features (the largest
    # columns after its text, the features decoded from JSON) and the story's features
    # are the pipeline's, not a reader's
    articles = selectinload(Story.articles).options(defer(Article.minhash), defer(Article.features))
    stmt = select(Story).options(
        defer(Story.features),
        articles.selectinload(Article.outlet),
        articles.selectinload(Article.topics),
    )
    if topics is not None:
        # Tested story by story (EXISTS): the window's index picks the few stories and the
        # topic is checked on their articles, instead of listing every flagged story of
        # the archive first (which grew with the year).
        flagged = (
            select(Article.id)
            .join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
            .where(Article.story_id == Story.id, TopicMatchRow.topic.in_(list(topics)))
            .exists()
        )
        stmt = stmt.where(flagged)
    if since is not None:
        stmt = stmt.where(Story.first_seen >= since)
    if story_ids is not None:
        stmt = stmt.where(Story.id.in_(list(story_ids)))
    stmt = stmt.order_by(func.coalesce(Story.published, Story.first_seen).desc(), Story.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    views = []
    for story in session.scalars(stmt):
        arts = sorted(story.articles, key=lambda a: (a.published or a.first_seen, a.id))
        joined = sorted(story.articles, key=lambda a: (as_utc(a.first_seen), a.id))
        topic_views = _merge_topics(t for a in arts for t in a.topics)
        if topics is not None:
            topic_views = [t for t in topic_views if t.name in topics]
        views.append(
            StoryView(
                id=story.id,
                title=story.title,
                first_seen=story.first_seen,
                last_seen=story.last_seen,
                published=story.published_stated,
                topics=topic_views,
                articles=[
                    ArticleView(
                        a.id,
                        a.url,
                        a.outlet.name,
                        a.title,
                        a.published_stated,
                        a.language,
                        a.text,
                        a.duplicate_of_id,
                    )
                    for a in arts
                ],
                updated=_updated(story.first_seen, [a.first_seen for a in joined]),
                timeline=[
                    TimelineEntry(
                        a.id,
                        as_utc(a.first_seen),
                        a.outlet.name,
                        a.language,
                        a.title,
                        a.url,
                        a.published_stated,
                        a.duplicate_of_id,
                    )
                    for a in joined
                ],
            )
        )
    return views


def _updated(story_first_seen: datetime, joined: Sequence[datetime]) -> datetime:
    """When the story last gained an article: its newest article's `first_seen`.

    Not `Story.last_seen`, which the story rules set to the latest `updated_at` (an
    article re-fetched with a new text moves it without the story gaining anything).
    A story without articles (the story pass empties one before deleting it) keeps its own."""
    return max((as_utc(t) for t in joined), default=as_utc(story_first_seen))

