"""The schema: one typed model per table.

Uniqueness constraints carry the idempotence of every write (the same URL twice is one
article, the same story twice in one digest is impossible), so a retried or repeated
write cannot duplicate data whatever the caller does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from veille.storage.timestamps import UTCDateTime, stated, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Outlet(Base):
    __tablename__ = "outlets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    language: Mapped[str | None] = mapped_column(String(8))
    template_pages: Mapped[int] = mapped_column(default=0, server_default="0")  # pages counted in template_lines


class TemplateLine(Base):
    """How many of an outlet's pages carried a short line (pipeline.template): its template.

    Only a fingerprint of the normalised line is kept, never the text. `since` is the
    outlet's `template_pages` when the line first appeared, so its share of the pages seen
    since then can be told; rows not seen for a while are pruned (storage.templates).
    """

    __tablename__ = "template_lines"
    __table_args__ = (
        UniqueConstraint("outlet_id", "fingerprint"),
        # a crawl loads an outlet's template lines (pages >= MIN_PAGES), not all its rare ones,
        # and prunes the lines not seen lately without reading the others
        Index("ix_template_lines_outlet_pages", "outlet_id", "pages"),
        Index("ix_template_lines_outlet_last_seen", "outlet_id", "last_seen"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(16))
    pages: Mapped[int] = mapped_column(default=1)
    since: Mapped[int] = mapped_column(default=0)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    published: Mapped[datetime | None] = mapped_column(index=True)  # UTC
    published_offset: Mapped[int | None]  # minutes east of UTC that `published`'s page stated
    features: Mapped[list[Any]] = mapped_column(default=list)
    # its first original's publication: the story pass reads the stories born in its
    # context window by this (copies' dates do not count, unlike `published`)
    born: Mapped[datetime | None] = mapped_column(index=True)

    articles: Mapped[list[Article]] = relationship(
        back_populates="story", order_by="Article.first_seen"
    )

    @property
    def published_stated(self) -> datetime | None:
        """`published` as its earliest article's page stated it (its offset, its day)."""
        return stated(self.published, self.published_offset)


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        # an outlet's latest articles (storage.templates' titles) without sorting all of its archive
        Index("ix_articles_outlet_first_seen", "outlet_id", "first_seen"),
        # the copies of an article; partial, so `duplicate_of_id IS NULL` (every original)
        # never looks like a selective lookup to the planner
        Index("ix_articles_duplicate_of_id", "duplicate_of_id",
              sqlite_where=text("duplicate_of_id IS NOT NULL"), postgresql_where=text("duplicate_of_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    final_url: Mapped[str | None] = mapped_column(String(2000))
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"), index=True)
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    published: Mapped[datetime | None] = mapped_column(index=True)  # UTC
    published_offset: Mapped[int | None]  # minutes east of UTC the page stated, e.g. -240
    author: Mapped[str | None] = mapped_column(String(300))
    site_name: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str | None] = mapped_column(String(8))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    minhash: Mapped[bytes | None] = mapped_column(LargeBinary)
    features: Mapped[list[Any] | None] = mapped_column(JSON)  # story features (originals only)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # search indexer's watermark
    versions: Mapped[int] = mapped_column(Integer, default=1)

    outlet: Mapped[Outlet] = relationship()
    story: Mapped[Story | None] = relationship(back_populates="articles")
    topics: Mapped[list[TopicMatchRow]] = relationship(
        back_populates="article", cascade="all, delete-orphan"
    )

    @property
    def published_stated(self) -> datetime | None:
        """`published` at the offset the page stated (its day, not UTC's)."""
        return stated(self.published, self.published_offset)


class ArticleBand(Base):
    """One LSH band of an original's MinHash (pipeline.dedup.band_keys): the duplicate
    index kept in the database, so a crawl looks up its pages' candidates by band instead
    of loading every recent signature (storage.duplicates)."""

    __tablename__ = "article_bands"
    __table_args__ = (Index("ix_article_bands_article_id", "article_id"), {"sqlite_with_rowid": False})

    band: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)


class TopicMatchRow(Base):
    """Why an article was flagged: the topic, the score, and every matched term and field."""

    __tablename__ = "topic_matches"
    __table_args__ = (UniqueConstraint("article_id", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(100), index=True)
    score: Mapped[float] = mapped_column(Float)
    matched: Mapped[list[Any]] = mapped_column(default=list)  # [{"term","field","count"}]

    article: Mapped[Article] = relationship(back_populates="topics")


class Page(Base):
    """Every URL the crawler fetched and settled (article, alias or skipped).

    The incremental crawl consults this table before downloading, so non-article pages
    (listings, videos) and URLs folded into another article are not fetched again either.
    """

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # article | duplicate | skipped
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str | None] = mapped_column(String(64))  # of the text last seen here
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedState(Base):
    """Conditional-GET validators per feed/sitemap URL."""

    __tablename__ = "feed_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_fetched: Mapped[datetime | None]
    last_full_fetch: Mapped[datetime | None]


class CrawlRun(Base):
    __tablename__ = "crawl_runs"
    __table_args__ = (
        Index("ix_crawl_runs_kind_started", "kind", "started_at"),
        Index("ix_crawl_runs_started_at", "started_at"),  # the last runs of any kind, newest first
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="crawl")  # crawl | digest
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    # running | ok | failed | interrupted
    pid: Mapped[int | None]
    host: Mapped[str | None] = mapped_column(String(200))
    errors: Mapped[list[Any]] = mapped_column(default=list)
    message: Mapped[str | None] = mapped_column(Text)

    outlets: Mapped[list[OutletRun]] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )


class OutletRun(Base):
    """Per-outlet counts of one crawl: what the health report is built from."""

    __tablename__ = "outlet_runs"
    __table_args__ = (UniqueConstraint("run_id", "outlet"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    outlet: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | failing | blocked
    discovered: Mapped[int] = mapped_column(default=0)
    fetched: Mapped[int] = mapped_column(default=0)
    new: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)

    run: Mapped[CrawlRun] = relationship(back_populates="outlets")


class Digest(Base):
    __tablename__ = "digests"
    # the list's last sent digest without sorting its history
    __table_args__ = (Index("ix_digests_key_status_sent", "recipients_key", "status", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|unconfirmed|sent|failed|written
    recipients: Mapped[str] = mapped_column(Text)  # sorted, comma-joined
    recipients_key: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)

    items: Mapped[list[DigestItem]] = relationship(
        back_populates="digest", cascade="all, delete-orphan"
    )


class DigestItem(Base):
    __tablename__ = "digest_items"
    """A story in a digest that was sent (or handed to the server, its reply pending:
    "unconfirmed"). Written just before the message's last line goes, removed if the
    server refuses it, and unique per recipient list: a story is mailed to a list once."""

    __table_args__ = (UniqueConstraint("story_id", "recipients_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # the stories of the list's recent digests (developing stories), by digest
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"), index=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    recipients_key: Mapped[str] = mapped_column(String(64))

    digest: Mapped[Digest] = relationship(back_populates="items")


class DigestArticle(Base):
    """An article a recipient list was mailed, in a story of its digest: a story that
    develops comes back with only the articles its list has not had (one row per article
    and list, so an article is mailed to a list at most once)."""

    __tablename__ = "digest_articles"
    __table_args__ = (UniqueConstraint("article_id", "recipients_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"))
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    story_id: Mapped[int] = mapped_column(index=True)
    recipients_key: Mapped[str] = mapped_column(String(64))
