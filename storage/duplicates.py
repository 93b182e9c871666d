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
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from veille.storage.db import bind_value, fixed_in, run_compiled
from veille.storage.models import Article, ArticleBand

_BANDS, _ARTICLES = cast(Table, ArticleBand.__table__), cast(Table, Article.__table__)
BANDS = 25  # keys a page brings (pipeline.dedup.BANDS); other counts take the expanding IN
_BAND_NAMES = tuple(f"band{i}" for i in range(BANDS))


def _candidates(bands: Any) -> Any:
    """The look-up of `candidates`, with `bands` as its IN list."""
    return select(_ARTICLES.c.id, _ARTICLES.c.minhash).where(
        _ARTICLES.c.id.in_(select(_BANDS.c.article_id).where(_BANDS.c.band.in_(bands))),
        _ARTICLES.c.first_seen >= bindparam("since"),
        _ARTICLES.c.minhash.is_not(None),
    )


# the crawl sends these for every page it stores: built once, compiled once, run at the
# driver level (storage.db.run_compiled); a page's bands are BANDS distinct keys, so the
# IN list has a fixed length (padded with its last key if two bands ever collide)
_CANDIDATES = _candidates([bindparam(n) for n in _BAND_NAMES])
_CANDIDATES_ANY = _candidates(bindparam("bands", expanding=True))
_INSERT = insert(_BANDS).inline()


def candidates(session: Session, keys: Sequence[int], since: datetime) -> list[tuple[int, bytes]]:
    """(article id, MinHash bytes) of the articles first seen since `since` that share a
    band with `keys`: by the band's primary key, then each candidate by its id."""
    if not keys:
        return []
    conn = session.connection()
    wanted = sorted(set(keys))
    if len(wanted) > BANDS:  # not a page's bands: SQLAlchemy's expanding IN
        rows: Iterable[Any] = conn.execute(_CANDIDATES_ANY, {"bands": wanted, "since": since})
    else:
        params = fixed_in(_BAND_NAMES, wanted)
        params["since"] = bind_value(conn, _ARTICLES.c.first_seen, since)
        rows = run_compiled(conn, _CANDIDATES, params)
    return [(i, bytes(m)) for i, m in rows if m is not None]


def replace_bands(session: Session, bands: dict[int, Sequence[int]], *, new: bool = False) -> None:
    """Index each article (id → its band keys) under these bands only, in one statement
    per kind of write (an article stored again drops the bands of its former text; a
    `new` one has none to drop)."""
    if not bands:
        return
    conn = session.connection()
    if not new:
        conn.execute(delete(_BANDS).where(_BANDS.c.article_id.in_(list(bands))))
    rows = [{"band": k, "article_id": a} for a, keys in bands.items() for k in dict.fromkeys(keys)]
    if rows:
        run_compiled(conn, _INSERT, rows)


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
