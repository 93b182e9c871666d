"""The page path's two storage calls: what is known about a page, and its outcome written.

`pipeline.process` reads everything it needs about a fetched page in one call
(`load_known`: its page row, the articles at its URL and with its text's hash, the
near-copy candidates sharing an LSH band, and the roots and stories these point to),
decides without touching storage, and hands the decision back in one call
(`apply_plan`): a handful of statements, each row written once, no ORM objects.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from veille.storage import duplicates as dup_store
from veille.storage.articles import make_copies_of, replace_topics
from veille.storage.db import bind_value, result_converter, run_compiled
from veille.storage.models import Article, Outlet, Page, Story
from veille.storage.timestamps import utcnow

NEW = -1  # in a Plan, the id of the article it inserts


@dataclass(frozen=True)
class StoredArticle:
    """What deciding about a page needs of a stored article."""

    id: int
    url: str
    outlet_id: int
    outlet: str
    story_id: int | None
    duplicate_of_id: int | None
    content_hash: str
    title: str
    text_length: int
    published: datetime | None
    author: str | None


@dataclass(frozen=True)
class Known:
    """Everything storage knows that bears on one page (`load_known`)."""

    page_hash: str | None  # hash of the text last processed at this URL
    page_article: int | None  # and the article it went to
    by_url: StoredArticle | None  # the article at this URL
    by_hash: StoredArticle | None  # the first article with this text
    near: list[tuple[int, bytes]]  # (id, MinHash bytes) sharing a band, when the above are None
    articles: dict[int, StoredArticle]  # every article named above, and the roots of copies
    stories: dict[int, datetime | None]  # their stories' publication dates


@dataclass(frozen=True)
class NewArticle:
    url: str
    final_url: str | None
    outlet_id: int
    story_id: int | None
    duplicate_of_id: int | None
    title: str
    text: str
    published: datetime | None
    published_offset: int | None
    author: str | None
    site_name: str | None
    language: str | None
    content_hash: str
    minhash: bytes | None
    features: list[str] | None


@dataclass(frozen=True)
class ArticleChange:
    """Columns to set on a stored article (`values`), one more version if `new_version`."""

    id: int
    values: dict[str, Any]
    new_version: bool = True


@dataclass(frozen=True)
class PageRecord:
    url: str
    outlet_id: int
    kind: str  # article | duplicate | skipped
    article_id: int | None = None  # NEW: the article the plan inserts
    reason: str | None = None
    content_hash: str | None = None  # None keeps the one stored


@dataclass(frozen=True)
class StoryTouch:
    """A story seen again: last seen now, and dated (and titled) by an earlier article."""

    story_id: int
    published: datetime | None = None
    published_offset: int | None = None
    title: str | None = None


@dataclass
class Plan:
    """Every write one page's outcome needs, in the order `apply_plan` makes them."""

    insert: NewArticle | None = None
    copies_of: int | None = None  # this article and its copies become copies of the new one
    change: ArticleChange | None = None
    topics: tuple[int, list[tuple[str, float, list[dict[str, object]]]]] | None = None  # (article, matches)
    pages: list[PageRecord] = field(default_factory=list)
    bands: tuple[int, Sequence[int]] | None = None  # (article, its LSH band keys)
    touch: StoryTouch | None = None


# The page path's statements, built once on the tables (Core): a crawl sends them for
# every page, and building, keying and routing an ORM statement each time cost more than
# running it.
_A, _O, _P, _S = (cast(Table, m.__table__) for m in (Article, Outlet, Page, Story))
_STORED = select(
    _A.c.id, _A.c.url, _A.c.outlet_id, _O.c.name, _A.c.story_id, _A.c.duplicate_of_id,
    _A.c.content_hash, _A.c.title, func.length(_A.c.text), _A.c.published, _A.c.author,
).join(_O, _O.c.id == _A.c.outlet_id)
_BY_KEYS = _STORED.where(or_(_A.c.url == bindparam("url"), _A.c.content_hash == bindparam("hash"),
                             _A.c.id == bindparam("page_article"))).order_by(_A.c.id)
_BY_IDS = _STORED.where(_A.c.id.in_(bindparam("ids", expanding=True))).order_by(_A.c.id)
_PAGE = select(_P.c.content_hash, _P.c.article_id).where(_P.c.url == bindparam("url"))
_STORY_DATES = select(_S.c.id, _S.c.published).where(_S.c.id.in_(bindparam("ids", expanding=True)))
_NEW_COLUMNS = tuple(f.name for f in fields(NewArticle))
_CONVERTED = ("published", "minhash", "features")  # columns whose type converts the value (bind_value)
# every column named (no column default runs at the driver level): first_seen, updated_at
# and versions as their defaults would set them
_INSERT_ARTICLE = insert(_A).values(
    {**{c: bindparam(f"v_{c}") for c in _NEW_COLUMNS},
     "first_seen": bindparam("v_now"), "updated_at": bindparam("v_now"), "versions": 1},
).returning(_A.c.id)


def load_known(session: Session, url: str, content_hash: str, bands: Sequence[int],
               since: datetime) -> Known:
    """What storage knows about the page at `url` whose text hashes to `content_hash`.
    Near-copy candidates (by `bands`, first seen since `since`) are read only when no
    stored article has this URL or this text: otherwise nothing would use them."""
    conn = session.connection()
    page: Any = run_compiled(conn, _PAGE, {"url": url}).first()
    page_hash, page_article = (page[0], page[1]) if page else (None, None)
    published = result_converter(conn, _A.c.published)
    rows: Sequence[Any] = run_compiled(conn, _BY_KEYS, {"url": url, "hash": content_hash,
                                                       "page_article": page_article}).all()
    found = [StoredArticle(*_as_stored(row, published)) for row in rows]
    articles = {a.id: a for a in found}
    by_url = next((a for a in found if a.url == url), None)
    by_hash = next((a for a in found if a.content_hash == content_hash), None)
    settled = by_url or by_hash or (page_hash == content_hash and page_article is not None)
    near = [] if settled else dup_store.candidates(session, bands, since)
    for wanted in ({a.duplicate_of_id for a in found if a.duplicate_of_id} | {i for i, _ in near},
                   {a.duplicate_of_id for a in articles.values() if a.duplicate_of_id}):  # then their roots
        wanted -= articles.keys()
        if wanted:
            articles.update((row[0], StoredArticle(*row)) for row in conn.execute(_BY_IDS, {"ids": sorted(wanted)}))
    story_ids = {a.story_id for a in articles.values() if a.story_id is not None}
    stories: dict[int, datetime | None] = {}
    if story_ids:
        stories.update((i, p) for i, p in conn.execute(_STORY_DATES, {"ids": sorted(story_ids)}))
    return Known(page_hash, page_article, by_url, by_hash, near, articles, stories)


def _as_stored(row: Any, published: Any) -> tuple[Any, ...]:
    """A `_STORED` row read at the driver level, its publication date converted."""
    return (*row[:9], published(row[9]), row[10])


def apply_plan(session: Session, plan: Plan) -> int | None:
    """Write a page's outcome; returns the id of the article it inserted, if any."""
    conn = session.connection()
    new_id: int | None = None
    if plan.insert is not None:
        new_id = run_compiled(conn, _INSERT_ARTICLE, _article_params(conn, plan.insert)).scalar_one()

    def ref(article_id: int | None) -> int | None:
        return new_id if article_id == NEW else article_id

    if plan.copies_of is not None and new_id is not None:
        make_copies_of(session, plan.copies_of, new_id)
    if plan.change is not None:
        change: dict[str, Any] = dict(plan.change.values)
        if plan.change.new_version:
            change["versions"] = _A.c.versions + 1
        conn.execute(update(_A).where(_A.c.id == plan.change.id).values(**change))
    if plan.topics is not None:
        article_id = ref(plan.topics[0])
        assert article_id is not None
        replace_topics(session, article_id, plan.topics[1], new=plan.topics[0] == NEW)
    if plan.pages:
        record_pages(session, [PageRecord(p.url, p.outlet_id, p.kind, ref(p.article_id), p.reason,
                                          p.content_hash) for p in plan.pages])
    if plan.bands is not None:
        article_id = ref(plan.bands[0])
        assert article_id is not None
        dup_store.replace_bands(session, {article_id: plan.bands[1]}, new=plan.bands[0] == NEW)
    if plan.touch is not None:
        t = plan.touch
        values: dict[str, Any] = {"last_seen": utcnow()}
        if t.published is not None:
            values.update(published=t.published, published_offset=t.published_offset, title=t.title)
        conn.execute(update(_S).where(_S.c.id == t.story_id).values(**values))
    return new_id


def _article_params(conn: Connection, new: NewArticle) -> dict[str, Any]:
    """`new` as the driver takes it for `_INSERT_ARTICLE`."""
    values = vars(new)
    params = {f"v_{c}": values[c] for c in _NEW_COLUMNS}
    for c in _CONVERTED:
        params[f"v_{c}"] = bind_value(conn, _A.c[c], values[c])
    params["v_now"] = bind_value(conn, _A.c.first_seen, utcnow())
    return params


def record_pages(session: Session, pages: Sequence[PageRecord]) -> None:
    """Insert or refresh page rows (one upsert statement, compiled once per dialect and
    run at the driver level): kind, article, reason, fetched now; the content hash when
    one is given."""
    if not pages:
        return
    conn = session.connection()
    now = bind_value(conn, _P.c.fetched_at, utcnow())
    rows = list({p.url: {"url": p.url, "outlet": p.outlet_id, "kind": p.kind, "article": p.article_id,
                         "reason": p.reason, "hash": p.content_hash, "now": now}
                 for p in pages}.values())
    run_compiled(conn, _page_upsert(conn.dialect.name), rows)


@functools.cache
def _page_upsert(dialect: str) -> Any:
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = make(_P).values(url=bindparam("url"), outlet_id=bindparam("outlet"), kind=bindparam("kind"),
                           article_id=bindparam("article"), reason=bindparam("reason"),
                           content_hash=bindparam("hash"), fetched_at=bindparam("now")).inline()
    return stmt.on_conflict_do_update(index_elements=["url"], set_={
        "kind": stmt.excluded.kind, "article_id": stmt.excluded.article_id, "reason": stmt.excluded.reason,
        "fetched_at": stmt.excluded.fetched_at,
        "content_hash": func.coalesce(stmt.excluded.content_hash, _P.c.content_hash),
    })
