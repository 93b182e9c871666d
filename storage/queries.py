"""Every read and write the rest of veille needs, as functions on a Session.

Callers own the transaction (`Database.transaction()`); functions here never commit,
so one article's rows land together or not at all.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, aliased, selectinload

from veille.storage.models import (
    Article,
    CrawlRun,
    Digest,
    DigestItem,
    FeedState,
    Outlet,
    OutletRun,
    Page,
    Story,
    TopicMatchRow,
    utcnow,
)

# ---------------------------------------------------------------- outlets & pages


def ensure_outlet(session: Session, name: str, url: str = "", language: str | None = None) -> int:
    """Return the outlet's id, creating or refreshing its row."""
    row = session.scalar(select(Outlet).where(Outlet.name == name))
    if row is None:
        row = Outlet(name=name, url=url, language=language)
        session.add(row)
        session.flush()
    elif url and (row.url != url or row.language != language):
        row.url, row.language = url, language
    return row.id


def settled_urls(session: Session, urls: Iterable[str]) -> set[str]:
    """Those of `urls` already fetched and settled (article, folded duplicate or skipped)."""
    wanted = list(dict.fromkeys(urls))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        found.update(session.scalars(select(Page.url).where(Page.url.in_(chunk))))
    return found


def is_settled(session: Session, url: str) -> bool:
    return session.scalar(select(Page.id).where(Page.url == url)) is not None


def record_page(
    session: Session,
    url: str,
    outlet_id: int,
    kind: str,
    article_id: int | None = None,
    reason: str | None = None,
    content_hash: str | None = None,
) -> None:
    row = session.scalar(select(Page).where(Page.url == url))
    if row is None:
        row = Page(url=url, outlet_id=outlet_id)
        session.add(row)
    row.kind, row.article_id, row.reason, row.fetched_at = kind, article_id, reason, utcnow()
    if content_hash is not None:
        row.content_hash = content_hash


def page_content_hash(session: Session, url: str) -> tuple[str | None, int | None]:
    """(hash of the text last processed at this URL, its article id), or (None, None)."""
    row = session.execute(select(Page.content_hash, Page.article_id).where(Page.url == url)).first()
    return (row[0], row[1]) if row else (None, None)


# ---------------------------------------------------------------- feed validators


@dataclass(frozen=True)
class Validators:
    etag: str | None
    last_modified: str | None
    last_full_fetch: datetime | None


def feed_validators(session: Session, url: str) -> Validators | None:
    row = session.scalar(select(FeedState).where(FeedState.url == url))
    if row is None:
        return None
    return Validators(row.etag, row.last_modified, row.last_full_fetch)


def save_feed_validators(
    session: Session,
    url: str,
    etag: str | None,
    last_modified: str | None,
    *,
    full_fetch: bool,
) -> None:
    """Remember a feed's validators; `full_fetch` marks an unconditional 200 answer."""
    now = utcnow()
    row = session.scalar(select(FeedState).where(FeedState.url == url))
    if row is None:
        row = FeedState(url=url)
        session.add(row)
    if etag is not None or full_fetch:
        row.etag = etag
    if last_modified is not None or full_fetch:
        row.last_modified = last_modified
    row.last_fetched = now
    if full_fetch:
        row.last_full_fetch = now


# ---------------------------------------------------------------- crawl runs


def start_run(session: Session, kind: str = "crawl") -> int:
    run = CrawlRun(kind=kind, pid=os.getpid(), host=socket.gethostname(), status="running")
    session.add(run)
    session.flush()
    return run.id


@dataclass
class OutletCounts:
    discovered: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    status: str = "ok"  # ok | failing | blocked
    errors: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # pages not stored, by named reason


def save_outlet_counts(session: Session, run_id: int, outlet: str, counts: OutletCounts) -> None:
    row = session.scalar(
        select(OutletRun).where(OutletRun.run_id == run_id, OutletRun.outlet == outlet)
    )
    if row is None:
        row = OutletRun(run_id=run_id, outlet=outlet)
        session.add(row)
    for name in ("discovered", "fetched", "new", "updated", "skipped", "failed", "status"):
        setattr(row, name, getattr(counts, name))
    row.errors = list(counts.errors[:50])


def finish_run(
    session: Session,
    run_id: int,
    status: str,
    errors: Sequence[str] = (),
    message: str | None = None,
) -> None:
    run = session.get(CrawlRun, run_id)
    if run is None:
        return
    run.status, run.finished_at, run.message = status, utcnow(), message
    run.errors = list(errors)[:100]


def mark_abandoned_runs(session: Session, alive: Iterable[int] = ()) -> int:
    """Runs left 'running' by a killed process are closed as interrupted."""
    keep = list(alive)
    stmt = update(CrawlRun).where(CrawlRun.status == "running")
    if keep:
        stmt = stmt.where(CrawlRun.id.not_in(keep))
    result = session.execute(
        stmt.values(status="interrupted", finished_at=utcnow(), message="process ended mid-run")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def last_runs(session: Session, kind: str | None = None, limit: int = 10) -> list[CrawlRun]:
    stmt = select(CrawlRun).options(selectinload(CrawlRun.outlets))
    if kind:
        stmt = stmt.where(CrawlRun.kind == kind)
    return list(session.scalars(stmt.order_by(CrawlRun.started_at.desc()).limit(limit)))


def last_successful_run(session: Session, kind: str = "crawl") -> CrawlRun | None:
    stmt = (
        select(CrawlRun)
        .where(CrawlRun.kind == kind, CrawlRun.status == "ok")
        .order_by(CrawlRun.started_at.desc())
        .limit(1)
    )
    return session.scalar(stmt)


# ---------------------------------------------------------------- articles & stories


def article_by_url(session: Session, url: str) -> Article | None:
    return session.scalar(select(Article).where(Article.url == url))


def article_by_hash(session: Session, content_hash: str) -> Article | None:
    stmt = select(Article).where(Article.content_hash == content_hash).order_by(Article.id)
    return session.scalars(stmt).first()


def recent_signatures(session: Session, since: datetime) -> list[tuple[int, bytes]]:
    """(article id, MinHash bytes) of originals seen since `since`: the duplicate index."""
    stmt = select(Article.id, Article.minhash).where(
        Article.first_seen >= since,
        Article.minhash.is_not(None),
        Article.duplicate_of_id.is_(None),
    )
    return [(i, m) for i, m in session.execute(stmt) if m is not None]


def signatures_after(session: Session, article_id: int) -> list[tuple[int, bytes]]:
    """Originals stored after `article_id` (by this or another worker)."""
    stmt = select(Article.id, Article.minhash).where(
        Article.id > article_id, Article.minhash.is_not(None), Article.duplicate_of_id.is_(None)
    )
    return [(i, m) for i, m in session.execute(stmt) if m is not None]


def make_copies_of(session: Session, old: int, new: int) -> None:
    """`old` and its copies become copies of `new` (which turned out to be the original)."""
    session.execute(
        update(Article)
        .where((Article.id == old) | (Article.duplicate_of_id == old), Article.id != new)
        .values(duplicate_of_id=new, features=None),
        execution_options={"synchronize_session": "fetch"},
    )


def max_article_id(session: Session) -> int:
    """The newest article id, to refresh indexes from later."""
    return int(session.scalar(select(func.max(Article.id))) or 0)


def serialise_writers(session: Session) -> None:
    """On PostgreSQL, one worker at a time assigns articles to stories (xact-scoped lock).

    SQLite needs nothing: it has a single writer, and one crawl per database holds the lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x76656973})


# ---------------------------------------------------------------- the story pass


@dataclass(frozen=True)
class PassRow:
    """An original article as the story pass (pipeline.settle) reads it."""

    id: int
    url: str
    story_id: int | None
    features: list[str] | None
    published: datetime | None


_CHUNK = 500  # ids per IN (...) list


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    items = sorted(set(ids))
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _originals() -> Any:
    return select(Article.id, Article.url, Article.story_id, Article.features, Article.published).where(
        Article.duplicate_of_id.is_(None)
    )


def earliest_unplaced(session: Session) -> datetime | None:
    """The earliest publication among originals not yet in a story."""
    stmt = select(func.min(Article.published)).where(
        Article.duplicate_of_id.is_(None), Article.story_id.is_(None)
    )
    return session.scalar(stmt)


def unplaced_articles(session: Session) -> list[tuple[str, int]]:
    """(outlet name, article id) of every article, copy or original, not in a story."""
    stmt = (select(Outlet.name, Article.id).join(Outlet, Article.outlet_id == Outlet.id)
            .where(Article.story_id.is_(None)).order_by(Article.id))
    return [(name, art_id) for name, art_id in session.execute(stmt)]


def count_unplaced(session: Session) -> int:
    """Originals not yet in a story: a crawl stopped before its story pass left them."""
    stmt = select(func.count(Article.id)).where(
        Article.duplicate_of_id.is_(None), Article.story_id.is_(None)
    )
    return int(session.scalar(stmt) or 0)


def unplaced_undated(session: Session) -> list[PassRow]:
    """Originals without a story nor a date: no pass can place them, each is a story."""
    stmt = _originals().where(Article.story_id.is_(None), Article.published.is_(None))
    return [PassRow(*row) for row in session.execute(stmt.order_by(Article.url))]


def story_pass_rows(session: Session, start: datetime, context_from: datetime) -> list[PassRow]:
    """Dated originals published since `start`, and before it those of the stories born
    since `context_from`: whose first original is that recent (copies' dates do not
    count, as in `pipeline.stories.assign_stories`). What the pass needs, and no more."""
    older = aliased(Article)
    born_earlier = (
        select(older.id)
        .where(older.story_id == Article.story_id, older.duplicate_of_id.is_(None),
               older.published < context_from)
        .exists()
    )
    stmt = _originals().where(
        Article.published >= context_from,
        (Article.published >= start) | (Article.story_id.is_not(None) & ~born_earlier),
    )
    return [PassRow(*row) for row in session.execute(stmt)]


def reopen_horizon(session: Session, start: datetime, limit: int) -> datetime | None:
    """None if at most `limit` placed originals were published since `start`; else the
    publication date from which the newest `limit` of them were."""
    placed = select(Article.published).where(
        Article.duplicate_of_id.is_(None), Article.story_id.is_not(None), Article.published >= start
    )
    stmt = placed.order_by(Article.published.desc()).offset(limit).limit(1)
    beyond = session.scalar(stmt)
    if beyond is None:
        return None
    newest = placed.order_by(Article.published.desc()).offset(max(limit - 1, 0)).limit(1)
    return session.scalar(newest)


def unplaced_before(session: Session, when: datetime) -> list[datetime]:
    """Publication dates of the originals without a story published before `when`."""
    stmt = select(Article.published).where(
        Article.duplicate_of_id.is_(None), Article.story_id.is_(None), Article.published < when
    )
    return [d for d in session.scalars(stmt.order_by(Article.published)) if d is not None]


def rows_around(session: Session, spans: Sequence[tuple[datetime, datetime]]) -> list[PassRow]:
    """Dated originals published within any of the spans (merged where they overlap)."""
    merged: list[list[datetime]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out: list[PassRow] = []
    for lo, hi in merged:
        stmt = _originals().where(Article.published >= lo, Article.published <= hi)
        out.extend(PassRow(*row) for row in session.execute(stmt))
    return out


def article_texts(session: Session, ids: Iterable[int]) -> list[tuple[int, str, str, str | None]]:
    """(id, title, text, language), for articles stored without features."""
    out: list[tuple[int, str, str, str | None]] = []
    for chunk in _chunks(ids):
        stmt = select(Article.id, Article.title, Article.text, Article.language)
        out.extend(tuple(r) for r in session.execute(stmt.where(Article.id.in_(chunk))))  # type: ignore[misc]
    return out


def save_features(session: Session, features: dict[int, list[str]]) -> None:
    if features:
        session.execute(update(Article), [{"id": i, "features": f} for i, f in features.items()])


def sent_story_ids(session: Session, story_ids: Iterable[int]) -> set[int]:
    """Those of `story_ids` already mailed to someone: their articles stay where they are."""
    out: set[int] = set()
    for chunk in _chunks(story_ids):
        out.update(session.scalars(select(DigestItem.story_id).where(DigestItem.story_id.in_(chunk))))
    return out


def new_story(session: Session) -> int:
    """An empty story row; `refresh_stories` gives it its title and dates."""
    story = Story(title="", features=[])
    session.add(story)
    session.flush()
    return story.id


def move_articles(session: Session, moves: dict[int, int]) -> None:
    """Put originals in other stories (article id → story id); their copies follow."""
    if not moves:
        return
    session.execute(update(Article), [{"id": a, "story_id": st} for a, st in moves.items()])
    by_story: dict[int, list[int]] = {}
    for article, story in moves.items():
        by_story.setdefault(story, []).append(article)
    for story, articles in by_story.items():
        for chunk in _chunks(articles):
            session.execute(
                update(Article).where(Article.duplicate_of_id.in_(chunk)).values(story_id=story),
                execution_options={"synchronize_session": False},
            )


def refresh_stories(session: Session, story_ids: Iterable[int], max_features: int) -> int:
    """Recompute title, dates and features of stories from their articles; delete the
    ones left empty (never a mailed one). Returns how many were deleted.

    Title and date come from the earliest article (then the smallest URL): the same
    articles always give the same story, whichever was stored first.
    """
    ids = set(story_ids)
    members: dict[int, list[Any]] = {i: [] for i in ids}
    stories: dict[int, Story] = {}
    for chunk in _chunks(ids):
        stories.update((st.id, st) for st in session.scalars(select(Story).where(Story.id.in_(chunk))))
        stmt = select(
            Article.story_id, Article.url, Article.title, Article.published, Article.published_offset,
            Article.features, Article.duplicate_of_id, Article.first_seen, Article.updated_at,
        ).where(Article.story_id.in_(chunk))
        for row in session.execute(stmt):
            members[row.story_id].append(row)
    far = datetime.max.replace(tzinfo=UTC)
    empty = []
    for story_id, rows in members.items():
        story = stories.get(story_id)
        if story is None:
            continue
        if not rows:
            empty.append(story_id)
            continue
        rows.sort(key=lambda r: (_utc(r.published) or far, r.url))
        story.title, story.published = rows[0].title, rows[0].published
        story.published_offset = rows[0].published_offset
        merged = [f for r in rows if r.duplicate_of_id is None for f in (r.features or ())]
        story.features = list(dict.fromkeys(merged))[:max_features]
        story.first_seen = min(_utc(r.first_seen) or far for r in rows)
        story.last_seen = max(_utc(r.updated_at) or far for r in rows)
    sent = sent_story_ids(session, empty)
    gone = [i for i in empty if i not in sent]
    for chunk in _chunks(gone):
        session.execute(
            Story.__table__.delete().where(Story.id.in_(chunk))  # type: ignore[attr-defined]
        )
    return len(gone)


def pin_mailed(session: Session, mailed: dict[int, list[str]], max_features: int) -> int:
    """Put back in its mailed story every article (by URL) a story pass moved out of it
    while the digest was being sent: what is recorded as sent is what was mailed.
    A story the pass deleted meanwhile comes back under its id. Returns the articles moved."""
    moves: dict[int, int] = {}
    left: set[int] = set()
    for story_id, urls in mailed.items():
        if session.get(Story, story_id) is None:
            session.add(Story(id=story_id, title="", features=[]))
            session.flush()
        stmt = select(Article.id, Article.story_id).where(
            Article.url.in_(urls), Article.duplicate_of_id.is_(None)
        )
        for article_id, now in session.execute(stmt):
            if now != story_id:
                moves[article_id] = story_id
                if now is not None:
                    left.add(now)
    if moves:
        move_articles(session, moves)
        refresh_stories(session, left | set(moves.values()), max_features)
    return len(moves)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def topic_match_rows(matches: Iterable[tuple[str, float, list[dict[str, Any]]]]) -> list[TopicMatchRow]:
    return [TopicMatchRow(topic=topic, score=score, matched=matched) for topic, score, matched in matches]


def replace_topic_matches(
    session: Session, article: Article, matches: Iterable[tuple[str, float, list[dict[str, Any]]]]
) -> None:
    article.topics.clear()
    session.flush()
    article.topics.extend(topic_match_rows(matches))


# ---------------------------------------------------------------- reading stories


@dataclass(frozen=True)
class ArticleView:
    id: int
    url: str
    outlet: str
    title: str
    published: datetime | None  # at the offset the page stated (UTC when not known)
    language: str | None
    text: str
    duplicate_of: int | None


@dataclass(frozen=True)
class TopicView:
    name: str
    score: float
    matched: list[dict[str, Any]]


@dataclass(frozen=True)
class StoryView:
    id: int
    title: str
    first_seen: datetime
    last_seen: datetime
    published: datetime | None  # its earliest article's, at the offset that page stated
    topics: list[TopicView]
    articles: list[ArticleView]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "published": _iso_stated(self.published),
            "topics": [
                {"name": t.name, "score": t.score, "matched": t.matched} for t in self.topics
            ],
            "articles": [
                {
                    "url": a.url,
                    "outlet": a.outlet,
                    "title": a.title,
                    "published": _iso_stated(a.published),
                    "language": a.language,
                }
                for a in self.articles
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _iso_stated(value: datetime | None) -> str | None:
    """A publication time with the offset its page stated: that page's day and hour."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _merge_topics(rows: Iterable[TopicMatchRow]) -> list[TopicView]:
    """A story carries the topics of its articles: best score, union of matched terms."""
    best: dict[str, tuple[float, list[dict[str, Any]]]] = {}
    for r in rows:
        score, matched = best.get(r.topic, (0.0, []))
        seen = {(m.get("term"), m.get("field")) for m in matched}
        merged = matched + [m for m in r.matched if (m.get("term"), m.get("field")) not in seen]
        best[r.topic] = (max(score, r.score), merged)
    return [TopicView(name, round(s, 2), m) for name, (s, m) in sorted(best.items())]


def list_stories(
    session: Session,
    *,
    topics: Sequence[str] | None = None,
    since: datetime | None = None,
    story_ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[StoryView]:
    """Stories newest first; with `topics`, only stories flagged for one of them."""
    stmt = select(Story).options(
        selectinload(Story.articles).selectinload(Article.outlet),
        selectinload(Story.articles).selectinload(Article.topics),
    )
    if topics is not None:
        flagged = (
            select(Article.story_id)
            .join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
            .where(TopicMatchRow.topic.in_(list(topics)))
        )
        stmt = stmt.where(Story.id.in_(flagged))
    if since is not None:
        stmt = stmt.where(Story.first_seen >= since)
    if story_ids is not None:
        stmt = stmt.where(Story.id.in_(list(story_ids)))
    stmt = stmt.order_by(func.coalesce(Story.published, Story.first_seen).desc(), Story.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    views = []
    for story in session.scalars(stmt):
        arts = sorted(story.articles, key=lambda a: (a.published or a.first_seen, a.id))
        topic_views = _merge_topics(t for a in arts for t in a.topics)
        if topics is not None:
            topic_views = [t for t in topic_views if t.name in topics]
        views.append(
            StoryView(
                id=story.id,
                title=story.title,
                first_seen=story.first_seen,
                last_seen=story.last_seen,
                published=story.published_stated,
                topics=topic_views,
                articles=[
                    ArticleView(
                        a.id,
                        a.url,
                        a.outlet.name,
                        a.title,
                        a.published_stated,
                        a.language,
                        a.text,
                        a.duplicate_of_id,
                    )
                    for a in arts
                ],
            )
        )
    return views


def count_articles(session: Session) -> int:
    return int(session.scalar(select(func.count(Article.id))) or 0)


def outlet_article_counts(session: Session, since: datetime) -> dict[str, int]:
    stmt = (
        select(Outlet.name, func.count(Article.id))
        .join(Article, Article.outlet_id == Outlet.id)
        .where(Article.first_seen >= since)
        .group_by(Outlet.name)
    )
    return {name: int(n) for name, n in session.execute(stmt)}


# ---------------------------------------------------------------- digests


def recipients_key(recipients: Iterable[str]) -> str:
    joined = ",".join(sorted({r.strip().lower() for r in recipients}))
    return hashlib.sha256(joined.encode()).hexdigest()


def unsent_story_ids(
    session: Session, topics: Sequence[str], recipients: Sequence[str], since: datetime | None
) -> list[int]:
    """Tracked stories never in a sent digest for this recipient list."""
    key = recipients_key(recipients)
    sent = select(DigestItem.story_id).where(DigestItem.recipients_key == key)
    flagged = (
        select(Article.story_id)
        .join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
        .where(TopicMatchRow.topic.in_(list(topics)))
    )
    stmt = select(Story.id).where(Story.id.in_(flagged), Story.id.not_in(sent))
    if since is not None:
        stmt = stmt.where(Story.first_seen >= since)
    return list(session.scalars(stmt))


def last_sent_digest(session: Session, recipients: Sequence[str]) -> Digest | None:
    stmt = (
        select(Digest)
        .where(Digest.recipients_key == recipients_key(recipients), Digest.status == "sent")
        .order_by(Digest.sent_at.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def create_digest(session: Session, recipients: Sequence[str], subject: str) -> int:
    d = Digest(
        recipients=",".join(sorted(recipients)),
        recipients_key=recipients_key(recipients),
        subject=subject,
        status="pending",
    )
    session.add(d)
    session.flush()
    return d.id


def mark_digest_sent(
    session: Session, digest_id: int, story_ids: Iterable[int], message_id: str | None
) -> None:
    """Record delivery and its stories in one go: nothing is marked sent unless this commits."""
    d = session.get(Digest, digest_id)
    if d is None:
        raise LookupError(f"digest {digest_id} not found")
    d.status, d.sent_at, d.message_id = "sent", utcnow(), message_id
    held = {i.story_id for i in d.items}  # recorded when the message was handed over
    for sid in story_ids:
        if sid not in held:
            d.items.append(DigestItem(story_id=sid, recipients_key=d.recipients_key))


def mark_digest_unconfirmed(
    session: Session, digest_id: int, story_ids: Iterable[int], message_id: str | None
) -> bool:
    """The message's last line is about to go: from now on it may be delivered, so its
    stories count as sent (never mailed twice) until the server's reply says otherwise.
    False if the digest is no longer pending (another process took it for abandoned)."""
    d = session.get(Digest, digest_id)
    if d is None or d.status != "pending":
        return False
    d.status, d.message_id = "unconfirmed", message_id
    for sid in story_ids:
        d.items.append(DigestItem(story_id=sid, recipients_key=d.recipients_key))
    return True


def note_digest_error(session: Session, digest_id: int, error: str) -> None:
    d = session.get(Digest, digest_id)
    if d is not None:
        d.error = error


def mark_digest_failed(session: Session, digest_id: int, error: str) -> None:
    """Not delivered: its stories (if the handover had recorded them) are unsent again."""
    d = session.get(Digest, digest_id)
    if d is not None:
        d.status, d.error = "failed", error
        d.items.clear()


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


# ---------------------------------------------------------------- digest
# (added for pipeline/digest.py)


def first_digest_at(session: Session, recipients: Sequence[str]) -> datetime | None:
    """When the first digest (any status) for this recipient list was created."""
    stmt = select(func.min(Digest.created_at)).where(
        Digest.recipients_key == recipients_key(recipients)
    )
    return session.scalar(stmt)


def pending_digests(session: Session, recipients: Sequence[str]) -> list[Digest]:
    """Digests to this list not yet handed to the server (being sent, or abandoned)."""
    stmt = select(Digest).where(
        Digest.recipients_key == recipients_key(recipients), Digest.status == "pending"
    )
    return list(session.scalars(stmt.order_by(Digest.created_at)))


def pending_digest(session: Session, recipients: Sequence[str], newer_than: datetime) -> Digest | None:
    """A digest to this list still being sent (pending, created after `newer_than`)."""
    stmt = (
        select(Digest)
        .where(
            Digest.recipients_key == recipients_key(recipients),
            Digest.status == "pending",
            Digest.created_at >= newer_than,
        )
        .order_by(Digest.created_at.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def mark_digest_written(session: Session, digest_id: int, message_id: str | None) -> None:
    """A digest written to a file: recorded for history, its stories not marked sent."""
    d = session.get(Digest, digest_id)
    if d is not None:
        d.status, d.message_id = "written", message_id


# ---------------------------------------------------------------- operations
# (added for pipeline/daemon.py and pipeline/status.py)


def running_runs(session: Session) -> list[CrawlRun]:
    """Runs still marked running (live, or left behind by a killed process), oldest first."""
    stmt = select(CrawlRun).where(CrawlRun.status == "running").order_by(CrawlRun.started_at)
    return list(session.scalars(stmt))


def close_runs(session: Session, run_ids: Sequence[int], status: str, message: str) -> int:
    """Close exactly these runs, if they are still running; returns how many were closed."""
    if not run_ids:
        return 0
    result = session.execute(
        update(CrawlRun)
        .where(CrawlRun.id.in_(list(run_ids)), CrawlRun.status == "running")
        .values(status=status, finished_at=utcnow(), message=message)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def outlet_history(session: Session, outlet: str, limit: int = 100) -> list[OutletRun]:
    """The outlet's rows in finished crawl runs, newest first (each with its `run` loaded)."""
    from sqlalchemy.orm import contains_eager

    stmt = (
        select(OutletRun)
        .join(CrawlRun, OutletRun.run_id == CrawlRun.id)
        .where(OutletRun.outlet == outlet, CrawlRun.kind == "crawl", CrawlRun.status != "running")
        .options(contains_eager(OutletRun.run))
        .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def outlet_last_success(session: Session) -> dict[str, datetime]:
    """Per outlet, when the last crawl that reached it without failing started."""
    stmt = (
        select(OutletRun.outlet, func.max(CrawlRun.started_at))
        .join(CrawlRun, OutletRun.run_id == CrawlRun.id)
        .where(OutletRun.status == "ok", CrawlRun.kind == "crawl", CrawlRun.status != "running")
        .group_by(OutletRun.outlet)
    )
    out: dict[str, datetime] = {}
    for name, when in session.execute(stmt):
        if when is not None:
            out[name] = when if when.tzinfo else when.replace(tzinfo=UTC)
    return out
