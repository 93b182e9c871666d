"""The page path's two storage calls: what is known about a page, and its outcome written.

`pipeline.process` reads everything it needs about a fetched page in one call
(`load_known`: its page row, the articles at its URL and with its text's hash, the
near-copy candidates sharing an LSH band, and the roots and stories these point to),
decides without touching storage, and hands the decision back in one call
(`apply_plan`): a handful of statements, each row written once, no ORM objects.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from veille.storage import duplicates as dup_store
from veille.storage.articles import make_copies_of
from veille.storage.models import Article, Outlet, Page, Story, TopicMatchRow, utcnow

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


def _stored(session: Session, where: Any) -> list[StoredArticle]:
    stmt = select(
        Article.id, Article.url, Article.outlet_id, Outlet.name, Article.story_id, Article.duplicate_of_id,
        Article.content_hash, Article.title, func.length(Article.text), Article.published, Article.author,
    ).join(Outlet, Outlet.id == Article.outlet_id).where(where).order_by(Article.id)
    return [StoredArticle(*row) for row in session.execute(stmt)]


def load_known(session: Session, url: str, content_hash: str, bands: Sequence[int],
               since: datetime) -> Known:
    """What storage knows about the page at `url` whose text hashes to `content_hash`.
    Near-copy candidates (by `bands`, first seen since `since`) are read only when no
    stored article has this URL or this text: otherwise nothing would use them."""
    page = session.execute(select(Page.content_hash, Page.article_id).where(Page.url == url)).first()
    page_hash, page_article = (page[0], page[1]) if page else (None, None)
    found = _stored(session, or_(Article.url == url, Article.content_hash == content_hash,
                                 Article.id == page_article if page_article is not None else false()))
    articles = {a.id: a for a in found}
    by_url = next((a for a in found if a.url == url), None)
    by_hash = next((a for a in found if a.content_hash == content_hash), None)
    settled = by_url or by_hash or (page_hash == content_hash and page_article is not None)
    near = [] if settled else dup_store.candidates(session, bands, since)
    wanted = {a.duplicate_of_id for a in found if a.duplicate_of_id} | {i for i, _ in near}
    wanted -= articles.keys()
    if wanted:
        articles.update((a.id, a) for a in _stored(session, Article.id.in_(sorted(wanted))))
    roots = {a.duplicate_of_id for a in articles.values() if a.duplicate_of_id} - articles.keys()
    if roots:
        articles.update((a.id, a) for a in _stored(session, Article.id.in_(sorted(roots))))
    story_ids = {a.story_id for a in articles.values() if a.story_id is not None}
    stories: dict[int, datetime | None] = {}
    if story_ids:
        stories.update((i, p) for i, p in session.execute(
            select(Story.id, Story.published).where(Story.id.in_(sorted(story_ids)))))
    return Known(page_hash, page_article, by_url, by_hash, near, articles, stories)


def apply_plan(session: Session, plan: Plan) -> int | None:
    """Write a page's outcome; returns the id of the article it inserted, if any."""
    new_id: int | None = None
    if plan.insert is not None:
        values = vars(plan.insert)
        new_id = session.execute(insert(Article).values(**values).returning(Article.id)).scalar_one()

    def ref(article_id: int | None) -> int | None:
        return new_id if article_id == NEW else article_id

    if plan.copies_of is not None and new_id is not None:
        make_copies_of(session, plan.copies_of, new_id)
    if plan.change is not None:
        values = dict(plan.change.values)
        if plan.change.new_version:
            values["versions"] = Article.versions + 1
        session.execute(update(Article).where(Article.id == plan.change.id).values(**values),
                        execution_options={"synchronize_session": False})
    if plan.topics is not None:
        article_id = ref(plan.topics[0])
        if plan.topics[0] != NEW:  # a new row has nothing to replace
            session.execute(delete(TopicMatchRow).where(TopicMatchRow.article_id == article_id))
        rows = [{"article_id": article_id, "topic": t, "score": score, "matched": matched}
                for t, score, matched in plan.topics[1]]
        if rows:
            session.execute(insert(TopicMatchRow), rows)
    if plan.pages:
        record_pages(session, [PageRecord(p.url, p.outlet_id, p.kind, ref(p.article_id), p.reason,
                                          p.content_hash) for p in plan.pages])
    if plan.bands is not None:
        article_id = ref(plan.bands[0])
        assert article_id is not None
        dup_store.replace_bands(session, {article_id: plan.bands[1]})
    if plan.touch is not None:
        t = plan.touch
        values = {"last_seen": utcnow()}
        if t.published is not None:
            values.update(published=t.published, published_offset=t.published_offset, title=t.title)
        session.execute(update(Story).where(Story.id == t.story_id).values(**values),
                        execution_options={"synchronize_session": False})
    return new_id


def record_pages(session: Session, pages: Sequence[PageRecord]) -> None:
    """Insert or refresh page rows (one upsert statement, cached once per dialect):
    kind, article, reason, fetched now; the content hash when one is given."""
    if not pages:
        return
    now = utcnow()
    rows = list({p.url: {"url": p.url, "outlet_id": p.outlet_id, "kind": p.kind, "article_id": p.article_id,
                         "reason": p.reason, "content_hash": p.content_hash, "fetched_at": now}
                 for p in pages}.values())
    session.connection().execute(_page_upsert(session.get_bind().dialect.name), rows)


_UPSERTS: dict[str, Any] = {}


def _page_upsert(dialect: str) -> Any:
    if dialect not in _UPSERTS:
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = make(Page)
        _UPSERTS[dialect] = stmt.on_conflict_do_update(index_elements=["url"], set_={
            "kind": stmt.excluded.kind, "article_id": stmt.excluded.article_id, "reason": stmt.excluded.reason,
            "fetched_at": stmt.excluded.fetched_at,
            "content_hash": func.coalesce(stmt.excluded.content_hash, Page.content_hash),
        })
    return _UPSERTS[dialect]
