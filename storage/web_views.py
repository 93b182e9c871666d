"""What the web view (`veille serve`) asks of the database beyond `storage.views`.

A page of story ids under the list's filters (outlet, language, a day), the stories a
topic's feed shows (the ones that last gained an article), the outlets and languages to
filter on, and read-only sessions: nothing the web view runs can write.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from veille.storage.db import Database
from veille.storage.models import Article, Outlet, Story, TopicMatchRow


@contextmanager
def read_only(db: Database) -> Iterator[Session]:
    """A session the database itself refuses writes in, always rolled back.

    PostgreSQL: a READ ONLY transaction. SQLite: `query_only` on the connection for the
    length of the block (the pool hands the connection to writers afterwards).
    """
    session = db.sessions()
    dialect = session.get_bind().dialect.name
    try:
        if dialect == "postgresql":  # the transaction's first statement
            session.execute(text("SET TRANSACTION READ ONLY"))
        elif dialect == "sqlite":
            session.execute(text("PRAGMA query_only = ON"))
        yield session
    finally:
        session.rollback()
        if dialect == "sqlite":
            session.execute(text("PRAGMA query_only = OFF"))
            session.rollback()
        session.close()


def story_page(
    session: Session,
    *,
    topics: Sequence[str] | None = None,
    since: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    outlet: str | None = None,
    language: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> list[int]:
    """Ids of one page of stories, newest first, in `storage.views.list_stories`' order.

    Args:
        topics: only stories flagged for one of them (None: every story).
        since: first seen at or after (as `veille stories --since`).
        start, end: dated (published, else first seen) in [start, end): one day's stories.
        outlet, language: only stories with an article from that outlet / in that language.
        offset, limit: the page.
    """
    when = func.coalesce(Story.published, Story.first_seen)
    stmt = select(Story.id)
    # EXISTS per story rather than IN (all flagged stories): the window (first_seen's
    # index) picks few stories, each checked through articles' story_id index.
    if topics is not None:
        stmt = stmt.where(
            select(Article.id)
            .join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
            .where(Article.story_id == Story.id, TopicMatchRow.topic.in_(list(topics)))
            .exists())
    if since is not None:
        stmt = stmt.where(Story.first_seen >= since)
    if start is not None:
        stmt = stmt.where(when >= start)
    if end is not None:
        stmt = stmt.where(when < end)
    if outlet is not None:
        stmt = stmt.where(
            select(Article.id).join(Outlet, Outlet.id == Article.outlet_id)
            .where(Article.story_id == Story.id, Outlet.name == outlet)
            .exists())
    if language is not None:
        stmt = stmt.where(
            select(Article.id).where(Article.story_id == Story.id, Article.language == language)
            .exists())
    stmt = stmt.order_by(when.desc(), Story.id.desc()).offset(offset).limit(limit)
    return list(session.scalars(stmt))


def recently_updated(session: Session, topic: str, limit: int) -> list[int]:
    """Ids of the `limit` stories flagged for `topic` that last gained an article.

    A feed shows what moved: a story that develops (a new outlet, a follow-up) comes
    back to its top, as `StoryView.updated` (its newest article's first_seen) says.
    """
    flagged = (
        select(Article.story_id)
        .join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
        .where(TopicMatchRow.topic == topic)
    )
    newest = func.max(Article.first_seen)
    stmt = (
        select(Article.story_id)
        .where(Article.story_id.in_(flagged))
        .group_by(Article.story_id)
        .order_by(newest.desc(), Article.story_id.desc())
        .limit(limit)
    )
    return [i for i in session.scalars(stmt) if i is not None]


def outlet_names(session: Session) -> list[str]:
    """Every outlet stored, for the list's filter."""
    return list(session.scalars(select(Outlet.name).order_by(Outlet.name)))


def languages(session: Session) -> list[str]:
    """The outlets' languages, for the list's filter (the outlets table, not a scan of
    every article: an article detected in another language still filters by its own)."""
    stmt = select(Outlet.language).where(Outlet.language.is_not(None)).distinct()
    return sorted(lang for lang in session.scalars(stmt) if lang)
