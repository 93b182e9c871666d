"""The stored archive read back story by story: what the topic back-test replays.

`veille topics test` (pipeline.backtest) classifies every stored original again with the
rules as they are now and compares with the topic matches stored when it was crawled.
The archive can be large, so it is streamed: rows come in batches (`yield_per`, a
server-side cursor on PostgreSQL) and only one story's articles are held at a time.

Callers own the transaction (`Database.transaction()`); nothing here writes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from veille.storage.models import Article, Story, TopicMatchRow
from veille.storage.timestamps import as_utc, stated

BATCH = 500  # articles fetched per round trip (each with its text)


@dataclass(frozen=True)
class StoredMatch:
    """A topic match as stored with the article: its score and the terms that counted."""

    score: float
    terms: tuple[str, ...]


@dataclass(frozen=True)
class ArchivedArticle:
    """An original as the crawl stored and classified it: its title and text are those
    the classifier read (after the outlet's template was stripped and limits cut)."""

    id: int
    title: str
    text: str
    topics: dict[str, StoredMatch]  # as stored, by topic (only the topics asked for)


@dataclass(frozen=True)
class ArchivedStory:
    """A story with its originals (copies repeat their original and are left out)."""

    id: int
    title: str
    date: datetime  # published as its earliest page stated it, else first seen
    articles: tuple[ArchivedArticle, ...]


def archived_stories(
    session: Session,
    since: datetime | None = None,
    *,
    topics: Collection[str] | None = None,
    batch: int = BATCH,
) -> Iterator[ArchivedStory]:
    """Every story dated `since` or later (all when None), with its originals and their
    stored topic matches (only `topics` when given), in story id order.

    A story is dated by its publication, else by when it was first seen, and taken whole:
    a back-test of half a story would misreport it. Originals without a story yet (a
    crawl killed before its story pass) are not read.
    """
    stmt = (
        select(
            Story.id, Story.title, Story.published, Story.published_offset, Story.first_seen,
            Article.id, Article.title, Article.text,
        )
        .join(Story, Story.id == Article.story_id)
        .where(Article.duplicate_of_id.is_(None))
        .order_by(Story.id, Article.id)
    )
    if since is not None:
        stmt = stmt.where(or_(Story.published >= since,
                              and_(Story.published.is_(None), Story.first_seen >= since)))
    head: tuple[int, str, datetime] | None = None
    members: list[ArchivedArticle] = []
    result = session.execute(stmt, execution_options={"yield_per": batch})
    for rows in result.partitions():
        stored = _topic_matches(session, [row[5] for row in rows], topics)
        for story_id, story_title, published, offset, first_seen, art_id, title, text in rows:
            if head is not None and head[0] != story_id:
                yield ArchivedStory(*head, tuple(members))
                members = []
            if head is None or head[0] != story_id:
                head = (story_id, story_title, stated(published, offset) or as_utc(first_seen))
            members.append(ArchivedArticle(art_id, title, text, stored.get(art_id, {})))
    if head is not None:
        yield ArchivedStory(*head, tuple(members))


def _topic_matches(session: Session, article_ids: Sequence[int],
                   topics: Collection[str] | None) -> dict[int, dict[str, StoredMatch]]:
    """The stored topic matches of each of these articles (one query per batch)."""
    stmt: Any = select(TopicMatchRow.article_id, TopicMatchRow.topic, TopicMatchRow.score,
                       TopicMatchRow.matched).where(TopicMatchRow.article_id.in_(list(article_ids)))
    if topics is not None:
        stmt = stmt.where(TopicMatchRow.topic.in_(list(topics)))
    out: dict[int, dict[str, StoredMatch]] = {}
    for article_id, topic, score, matched in session.execute(stmt):
        terms = tuple(dict.fromkeys(str(m.get("term", "")) for m in matched or ()))
        out.setdefault(article_id, {})[topic] = StoredMatch(float(score), terms)
    return out
