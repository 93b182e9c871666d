"""Articles: look-ups by URL, copies, topic matches, the writers' lock.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from veille.storage.models import (
    Article,
    Outlet,
    TopicMatchRow,
)


def article_by_url(session: Session, url: str) -> Article | None:
    return session.scalar(select(Article).where(Article.url == url))


def make_copies_of(session: Session, old: int, new: int) -> None:
    """`old` and its copies become copies of `new` (which turned out to be the original)."""
    session.execute(
        update(Article)
        .where((Article.id == old) | (Article.duplicate_of_id == old), Article.id != new)
        .values(duplicate_of_id=new, features=None),
        execution_options={"synchronize_session": "fetch"},
    )


def serialise_writers(session: Session) -> None:
    """On PostgreSQL, one worker at a time assigns articles to stories (xact-scoped lock).

    SQLite needs nothing: it has a single writer, and one crawl per database holds the lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x76656973})


def topic_match_rows(matches: Iterable[tuple[str, float, list[dict[str, Any]]]]) -> list[TopicMatchRow]:
    return [TopicMatchRow(topic=topic, score=score, matched=matched) for topic, score, matched in matches]


def replace_topic_matches(
    session: Session, article: Article, matches: Iterable[tuple[str, float, list[dict[str, Any]]]]
) -> None:
    article.topics.clear()
    session.flush()
    article.topics.extend(topic_match_rows(matches))


def outlet_article_counts(session: Session, since: datetime) -> dict[str, int]:
    """Articles first seen since `since`, per outlet name: reads the window's entries of
    `ix_articles_outlet_first_seen`, so give it a recent `since` (not the epoch)."""
    stmt = (
        select(Outlet.name, func.count(Article.id))
        .join(Article, Article.outlet_id == Outlet.id)
        .where(Article.first_seen >= since)
        .group_by(Outlet.name)
    )
    return {name: int(n) for name, n in session.execute(stmt)}


def outlets_with_articles(session: Session) -> set[str]:
    """Names of the outlets that ever yielded an article: one index probe per outlet
    (`ix_articles_outlet_id`), where counting them read an entry per article of the archive."""
    yielded = select(Article.id).where(Article.outlet_id == Outlet.id).exists()
    return set(session.scalars(select(Outlet.name).where(yielded)))
