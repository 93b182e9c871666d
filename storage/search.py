"""Archive search: the full-text index of articles and the search of stories over it.

The index holds each article's *folded* text (title and text as `pipeline.search_text`
tokens it); storage never folds anything itself, it stores and matches what it is given.

- SQLite: `search_docs` (article id, the article's `versions` and `updated_at` when it
  was indexed, the folded text) and an external-content FTS5 table `search_fts` over
  it, kept in step by triggers; rank is BM25.
- PostgreSQL: `search_docs` holds `to_tsvector('simple', folded)` under a GIN index;
  rank is `ts_rank_cd`. A `tsvector` rather than pg_trgm: the text is already folded
  into whole tokens, and a query matches whole tokens and phrases (positions), as the
  classifier does; trigrams would match inside words ("amn" in "lamnaouar"), need a
  larger index and know no phrases.

Both tables are created by migration 0006 outside the ORM models (`is_search_table` keeps
Alembic's comparison off them). Callers own the transaction; nothing here commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from veille.storage.models import Article, Outlet, Story, TopicMatchRow
from veille.storage.timestamps import UTCDateTime, stated

DOCS = "search_docs"
FTS = "search_fts"  # SQLite only; FTS5 adds its shadow tables search_fts_*
HIT_CAP = 2000  # matching articles grouped into stories per search, the newest stored first

_meta = MetaData()
search_docs = Table(
    DOCS,
    _meta,
    Column("article_id", Integer, primary_key=True),
    Column("versions", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("folded", Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=False),
)
search_fts = Table(FTS, _meta, Column("rowid", Integer))  # SQLite: its MATCH column is its name
_TERM_RE = re.compile(r'"([^"]*)"|(\S+)')


def is_search_table(name: str | None) -> bool:
    """A table of the search index (not described by the models: see migration 0006)."""
    return bool(name) and (name == DOCS or str(name).startswith(FTS))


@dataclass(frozen=True)
class ArticleText:
    """An article as the indexer reads it, to fold."""

    id: int
    versions: int
    updated_at: datetime
    title: str
    text: str


@dataclass(frozen=True)
class IndexDoc:
    """An article's folded text, with the version of the article it was folded from."""

    article_id: int
    versions: int
    updated_at: datetime
    folded: str


@dataclass(frozen=True)
class ArticleHit:
    id: int
    url: str
    outlet: str
    title: str
    language: str | None
    published: datetime | None  # at the offset its page stated (UTC when not known)
    rank: float  # higher is better; BM25 on SQLite, ts_rank_cd on PostgreSQL

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "outlet": self.outlet, "title": self.title,
                "language": self.language, "rank": self.rank,
                "published": self.published.isoformat() if self.published else None}


@dataclass(frozen=True)
class StoryHit:
    """A story with the articles of it that match the query, best of them first."""

    id: int
    title: str
    published: datetime | None  # its earliest article's, at the offset that page stated
    first_seen: datetime
    rank: float  # its best article's
    articles: list[ArticleHit]


def index_watermark(session: Session) -> datetime | None:
    """The newest `updated_at` the index holds: what the next refresh starts from."""
    value: datetime | None = session.scalar(select(func.max(search_docs.c.updated_at)))
    return value


def article_count(session: Session) -> int:
    """Every stored article: what a first refresh (after schema 0006) indexes. One count,
    said before that back-fill starts, so a long one is not mistaken for a hang."""
    return int(session.scalar(select(func.count(Article.id))) or 0)


def articles_to_index(session: Session, *, since: datetime | None, limit: int = 500) -> list[ArticleText]:
    """Articles the index lacks, or holds at an older version or as of an older update (a
    text stripped again keeps its version), updated (or inserted) since `since` (None:
    any), oldest update first, at most `limit`, read through
    `ix_articles_updated_at`. Page on by passing the last one's `updated_at` as `since`:
    those indexed meanwhile drop out, so a page never comes back."""
    docs = search_docs.alias("d")
    stmt = (
        select(Article.id, Article.versions, Article.updated_at, Article.title, Article.text)
        .outerjoin(docs, docs.c.article_id == Article.id)
        .where(docs.c.article_id.is_(None) | (docs.c.versions != Article.versions)
               | (docs.c.updated_at < Article.updated_at))
        .order_by(Article.updated_at, Article.id)
        .limit(limit)
    )
    if since is not None:
        stmt = stmt.where(Article.updated_at >= since)
    return [ArticleText(*row) for row in session.execute(stmt)]


def write_search_docs(session: Session, docs: Sequence[IndexDoc]) -> None:
    """Insert or replace the folded text of these articles (one statement per batch)."""
    if not docs:
        return
    rows = [{"article_id": d.article_id, "versions": d.versions, "updated_at": d.updated_at,
             "folded": d.folded} for d in docs]
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(search_docs).values(
            article_id=bindparam("article_id"), versions=bindparam("versions"),
            updated_at=bindparam("updated_at"),
            folded=func.to_tsvector(literal_column("'simple'"), bindparam("folded", type_=Text())))
        pg = pg.on_conflict_do_update(index_elements=["article_id"], set_={
            "versions": pg.excluded.versions, "updated_at": pg.excluded.updated_at,
            "folded": pg.excluded.folded})
        session.execute(pg, rows)
        return
    lite = sqlite.insert(search_docs)
    lite = lite.on_conflict_do_update(index_elements=["article_id"], set_={
        "versions": lite.excluded.versions, "updated_at": lite.excluded.updated_at,
        "folded": lite.excluded.folded})
    session.execute(lite, rows)


def query_terms(folded_query: str) -> list[str]:
    """The terms of a folded query: each word, and each "quoted phrase" as one term."""
    terms = []
    for match in _TERM_RE.finditer(folded_query):
        term = " ".join((match.group(1) if match.group(1) is not None else match.group(2)).split())
        if term:
            terms.append(term)
    return terms


def _hits(dialect: str, terms: list[str]) -> tuple[Any, ColumnElement[bool], ColumnElement[Any],
                                                      ColumnElement[Any]]:
    """(FROM clause, match condition, article id, rank) for articles matching every term."""
    if dialect == "postgresql":
        query: ColumnElement[Any] | None = None
        for i, term in enumerate(terms):
            one = func.phraseto_tsquery(literal_column("'simple'"),
                                        bindparam(f"term_{i}", term, type_=Text()))
            query = one if query is None else query.op("&&")(one)
        assert query is not None
        return (search_docs.join(Article, Article.id == search_docs.c.article_id),
                search_docs.c.folded.op("@@")(query), search_docs.c.article_id,
                func.ts_rank_cd(search_docs.c.folded, query))
    match = " ".join('"' + t.replace('"', '""') + '"' for t in terms)  # phrases, ANDed
    return (search_fts.join(Article, Article.id == search_fts.c.rowid),
            literal_column(FTS).op("MATCH")(bindparam("match", match, type_=Text())),
            search_fts.c.rowid, -func.bm25(literal_column(FTS)))


def search_statement(dialect: str, terms: list[str], *, topics: Sequence[str] | None,
                     since: datetime | None, limit: int) -> Select[Any]:
    """The one statement of `search_stories` (its plan is checked by the tests)."""
    source, matches, article_id, rank = _hits(dialect, terms)
    when = func.coalesce(Story.published, Story.first_seen)
    hits_q = (
        select(article_id.label("article_id"), Article.story_id.label("story_id"),
               rank.label("rank"))
        .select_from(source)
        .join(Story, Story.id == Article.story_id)
        .where(matches)
    )
    if topics is not None:
        flagged = (select(Article.story_id).join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
                   .where(TopicMatchRow.topic.in_(list(topics))))
        hits_q = hits_q.where(Article.story_id.in_(flagged))
    if since is not None:
        hits_q = hits_q.where(when >= since)
    hits = hits_q.order_by(article_id.desc()).limit(HIT_CAP).cte("hits")
    best = func.max(hits.c.rank).label("best")
    top = (
        select(hits.c.story_id, best)
        .join(Story, Story.id == hits.c.story_id)
        .group_by(hits.c.story_id, when, Story.id)
        .order_by(when.desc(), best.desc(), Story.id.desc())
        .limit(limit)
        .cte("top")
    )
    return (
        select(Story.id, Story.title, Story.published, Story.published_offset, Story.first_seen,
               top.c.best, Article.id, Article.url, Outlet.name, Article.title, Article.language,
               Article.published, Article.published_offset, hits.c.rank)
        .select_from(top)
        .join(Story, Story.id == top.c.story_id)
        .join(hits, hits.c.story_id == top.c.story_id)
        .join(Article, Article.id == hits.c.article_id)
        .join(Outlet, Outlet.id == Article.outlet_id)
        .order_by(when.desc(), top.c.best.desc(), Story.id.desc(), hits.c.rank.desc(), Article.id)
    )


def _score(value: Any) -> float:
    """Six significant digits: BM25 of a word most articles share is tiny, not zero."""
    return float(f"{float(value):.6g}")


def search_stories(session: Session, folded_query: str, *, topics: Sequence[str] | None = None,
                   since: datetime | None = None, limit: int = 50) -> list[StoryHit]:
    """Stories with articles matching a folded query (`pipeline.search_text.query_text`).

    Every term must match (a "quoted phrase" as a phrase). At most `HIT_CAP` matching
    articles — the most recently stored — are grouped into stories; the `limit`
    stories are returned newest first (publication, else first seen), then best ranked,
    each with its matching articles, best first. With `topics`, only stories one of
    whose articles was flagged for one of them; with `since`, only stories published
    (else first seen) since then. One statement, bounded by its LIMITs.
    """
    terms = query_terms(folded_query)
    if not terms or limit < 1:
        return []
    stmt = search_statement(session.get_bind().dialect.name, terms, topics=topics, since=since,
                            limit=limit)
    stories: dict[int, StoryHit] = {}
    for (sid, stitle, spub, soff, sfirst, sbest,
         aid, url, outlet, atitle, lang, apub, aoff, arank) in session.execute(stmt):
        story = stories.get(sid)
        if story is None:
            story = stories[sid] = StoryHit(sid, stitle, stated(spub, soff), sfirst,
                                            _score(sbest), [])
        story.articles.append(ArticleHit(aid, url, outlet, atitle, lang, stated(apub, aoff),
                                         _score(arank)))
    return list(stories.values())
