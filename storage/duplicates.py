"""The duplicate index in the database: LSH bands of originals' MinHash signatures.

A crawl asks for the candidates of the page it stores (the articles sharing one of its
bands, first seen within the index's window) instead of loading every recent
signature: its cost follows the pages it stores, not the archive. The bands are
computed by `pipeline.dedup.band_keys`; here they are only stored and looked up.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from veille.storage.models import Article, ArticleBand


def candidates(session: Session, keys: Sequence[int], since: datetime) -> list[tuple[int, bytes]]:
    """(article id, MinHash bytes) of the articles first seen since `since` that share a
    band with `keys`: by the band's primary key, then each candidate by its id."""
    if not keys:
        return []
    shared = select(ArticleBand.article_id).where(ArticleBand.band.in_(list(set(keys))))
    stmt = select(Article.id, Article.minhash).where(
        Article.id.in_(shared), Article.first_seen >= since, Article.minhash.is_not(None)
    )
    return [(i, m) for i, m in session.execute(stmt) if m is not None]


def replace_bands(session: Session, bands: dict[int, Sequence[int]]) -> None:
    """Index each article (id → its band keys) under these bands only, in one statement
    per kind of write (an article stored again drops the bands of its former text)."""
    if not bands:
        return
    session.execute(delete(ArticleBand).where(ArticleBand.article_id.in_(list(bands))))
    rows = [{"band": k, "article_id": a} for a, keys in bands.items() for k in dict.fromkeys(keys)]
    if rows:
        session.execute(insert(ArticleBand), rows)


def prune_bands(session: Session, since: datetime) -> int:
    """Drop the bands of the articles first seen before `since`, which no lookup returns
    any more: the table holds the index's window, not the archive. Article ids grow with
    time, so everything below the first id seen since then goes. Returns rows deleted."""
    # `id + 0`: read off the first-seen index (the window), not a walk of the ids from the oldest
    first = session.scalar(select(func.min(Article.id + 0)).where(Article.first_seen >= since))
    stmt = delete(ArticleBand)
    if first is not None:
        stmt = stmt.where(ArticleBand.article_id < first)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def unindexed(session: Session, since: datetime) -> list[tuple[int, bytes]]:
    """(id, MinHash bytes) of the originals first seen since `since` when the index is
    still empty (a database from before schema 0007): what to index once. Empty once
    the index has a row."""
    if session.scalar(select(ArticleBand.band).limit(1)) is not None:
        return []
    stmt = select(Article.id, Article.minhash).where(
        Article.first_seen >= since, Article.minhash.is_not(None), Article.duplicate_of_id.is_(None)
    )
    return [(i, m) for i, m in session.execute(stmt) if m is not None]


def band_count(session: Session, article_ids: Iterable[int]) -> int:
    """Rows indexed for these articles (for tests and the benchmark's checks)."""
    ids = list(article_ids)
    return int(session.scalar(select(func.count()).select_from(ArticleBand)
                              .where(ArticleBand.article_id.in_(ids))) or 0)
