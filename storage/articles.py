"""Articles: look-ups by URL, copies, topic matches, the writers' lock.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from veille.storage.models import (
    Article,
    Outlet,
    TopicMatchRow,
)
from veille.storage.timestamps import stated, utcnow

Matches = Iterable[tuple[str, float, list[dict[str, Any]]]]  # (topic, score, matched terms)

# Built once on the tables (Core): the page path and the re-strip run them per article.
_A, _O, _T = (cast(Table, m.__table__) for m in (Article, Outlet, TopicMatchRow))
_INSERT_TOPICS = insert(_T)
_DELETE_TOPICS = delete(_T).where(_T.c.article_id == bindparam("article"))
_RESTRIP_ROWS = select(
    _A.c.id, _O.c.name, _A.c.url, _A.c.final_url, _A.c.title, _A.c.text, _A.c.published, _A.c.published_offset,
    _A.c.author, _A.c.site_name, _A.c.language, _A.c.duplicate_of_id,
).join(_O, _O.c.id == _A.c.outlet_id).where(_A.c.id.in_(bindparam("ids", expanding=True)))
_SET_TEXT = update(_A).where(_A.c.id == bindparam("article")).values(
    text=bindparam("new_text", type_=_A.c.text.type), content_hash=bindparam("new_hash", type_=_A.c.content_hash.type),
    minhash=bindparam("new_minhash", type_=_A.c.minhash.type),
    updated_at=bindparam("new_updated", type_=_A.c.updated_at.type))
_SET_TEXT_FEATURES = _SET_TEXT.values(features=bindparam("new_features", type_=_A.c.features.type))


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


@dataclass(frozen=True)
class StoredText:
    """What stripping a stored article again needs of it (`stored_texts`)."""

    id: int
    outlet: str
    url: str
    final_url: str | None
    title: str
    text: str
    published: datetime | None  # as the page stated it (its offset)
    author: str | None
    site_name: str | None
    language: str | None
    duplicate_of_id: int | None


def stored_texts(session: Session, ids: Sequence[int]) -> dict[int, StoredText]:
    """The articles of `ids` that exist, by id, in one statement per 500."""
    out: dict[int, StoredText] = {}
    wanted = sorted(set(ids))
    conn = session.connection()
    for i in range(0, len(wanted), 500):
        for (id_, outlet, url, final_url, title, body, published, offset, author, site_name, language,
             duplicate_of) in conn.execute(_RESTRIP_ROWS, {"ids": wanted[i : i + 500]}):
            out[id_] = StoredText(id_, outlet, url, final_url, title, body, stated(published, offset), author,
                                  site_name, language, duplicate_of)
    return out


def set_text(session: Session, article_id: int, text: str, content_hash: str, minhash: bytes | None,
             features: list[str] | None, matches: Matches) -> None:
    """Store an article's text again (stripped anew) with what follows from it: hash,
    MinHash, the story features when given (originals), and its topic matches. Its
    `updated_at` moves, so the search index folds the new text (its version does not:
    the page did not change, what we keep of it did)."""
    values: dict[str, Any] = {"article": article_id, "new_text": text, "new_hash": content_hash,
                              "new_minhash": minhash, "new_features": features, "new_updated": utcnow()}
    session.connection().execute(_SET_TEXT if features is None else _SET_TEXT_FEATURES, values)
    replace_topics(session, article_id, matches, new=False)


def replace_topics(session: Session, article_id: int, matches: Matches, *, new: bool) -> None:
    """The article's topic matches become `matches` (a `new` article has none to drop)."""
    conn = session.connection()
    if not new:
        conn.execute(_DELETE_TOPICS, {"article": article_id})
    rows = [{"article_id": article_id, "topic": t, "score": score, "matched": matched} for t, score, matched in matches]
    if rows:
        conn.execute(_INSERT_TOPICS, rows)


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
