"""What the story pass (`veille.pipeline.settle`) reads and writes.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from veille.storage.db import bind_value, result_converter, run_compiled
from veille.storage.models import (
    Article,
    DigestItem,
    Outlet,
    Story,
)

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class PassRow:
    """An original article as the story pass (pipeline.settle) reads it."""

    id: int
    url: str
    story_id: int | None
    features: list[str] | None
    published: datetime | None


@dataclass(frozen=True)
class StoryMember:
    """An article, copy or original, of a story, as the story rules read it."""

    url: str
    title: str
    published: datetime | None
    published_offset: int | None
    features: list[str] | None
    is_copy: bool
    first_seen: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class StoryFields:
    """What a story shows, decided from its articles (`pipeline.story_rules`)."""

    title: str
    published: datetime | None
    published_offset: int | None
    features: list[str]
    first_seen: datetime
    last_seen: datetime
    born: datetime | None = None  # its first original's publication


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    items = sorted(set(ids))
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


_A, _S = (cast(Table, m.__table__) for m in (Article, Story))
# The pass's three bulk reads (tens of thousands of rows in a busy month): run at the
# driver level, each row converted by its column types, without the ORM's work per row.
_PASS_COLUMNS = (_A.c.id, _A.c.url, _A.c.story_id, _A.c.features, _A.c.published)
_DATED_SINCE = select(*_PASS_COLUMNS).where(_A.c.duplicate_of_id.is_(None), _A.c.published >= bindparam("lo"))
_BORN_BETWEEN = select(_S.c.id, _S.c.features, _S.c.born).where(_S.c.born >= bindparam("lo"),
                                                                  _S.c.born < bindparam("hi"))


def _pass_rows(session: Session, rows: Iterable[Any]) -> list[PassRow]:
    """PassRows of driver-level rows (`run_compiled`), converted by the columns' types."""
    conn = session.connection()
    features, published = result_converter(conn, _A.c.features), result_converter(conn, _A.c.published)
    return [PassRow(i, url, story, features(f), published(p)) for i, url, story, f, p in rows]


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


def earliest_of(session: Session, ids: Iterable[int]) -> datetime | None:
    """The earliest publication among these originals (articles whose text or date changed)."""
    found = [session.scalar(select(func.min(Article.published)).where(
                 Article.id.in_(chunk), Article.duplicate_of_id.is_(None))) for chunk in _chunks(ids)]
    dated = [d for d in found if d is not None]
    return min(dated) if dated else None


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


def dated_since(session: Session, start: datetime) -> list[PassRow]:
    """Dated originals published since `start`: the articles a pass may move."""
    session.flush()  # read below the ORM
    conn = session.connection()
    return _pass_rows(session, run_compiled(conn, _DATED_SINCE, {"lo": bind_value(conn, _A.c.published, start)}))


def stories_published_between(session: Session, lo: datetime, hi: datetime) -> set[int]:
    """The stories with an original published in [lo, hi)."""
    stmt = select(Article.story_id).where(
        Article.published >= lo, Article.published < hi, Article.duplicate_of_id.is_(None),
        Article.story_id.is_not(None),
    ).distinct()
    return {i for i in session.scalars(stmt) if i is not None}


def births(session: Session, story_ids: Iterable[int]) -> dict[int, datetime | None]:
    """When each story's first dated original was published, read from its articles (a
    story changed since the last pass may have another first original than it says)."""
    out: dict[int, datetime | None] = {}
    for chunk in _chunks(story_ids):
        stmt = (select(Article.story_id, func.min(Article.published))
                .where(Article.story_id.in_(chunk), Article.duplicate_of_id.is_(None))
                .group_by(Article.story_id))
        out.update((i, born) for i, born in session.execute(stmt) if i is not None)
    return out


def story_rows(session: Session, story_ids: Iterable[int], lo: datetime, hi: datetime) -> list[PassRow]:
    """Dated originals of these stories published in [lo, hi)."""
    session.flush()  # read below the ORM
    out: list[PassRow] = []
    for chunk in _chunks(story_ids):
        stmt = select(*_PASS_COLUMNS).where(_A.c.duplicate_of_id.is_(None), _A.c.story_id.in_(chunk),
                                            _A.c.published >= lo, _A.c.published < hi)
        out.extend(PassRow(*row) for row in session.connection().execute(stmt))  # converted by Core
    return out


def stories_born_between(session: Session, lo: datetime, hi: datetime) -> list[tuple[int, list[str], datetime]]:
    """(id, features, birth) of the stories whose first original was published in
    [lo, hi), as the last pass left them (`stories.born`, `stories.features`)."""
    session.flush()  # read below the ORM
    conn = session.connection()
    features, born = result_converter(conn, _S.c.features), result_converter(conn, _S.c.born)
    bounds = {"lo": bind_value(conn, _S.c.born, lo), "hi": bind_value(conn, _S.c.born, hi)}
    rows = cast(Iterable[tuple[int, Any, Any]], run_compiled(conn, _BORN_BETWEEN, bounds))
    return [(i, list(features(f) or ()), born(b)) for i, f, b in rows if b is not None]


def reopen_horizon(session: Session, start: datetime, limit: int) -> datetime | None:
    """None if at most `limit` placed originals were published since `start`; else the
    publication date from which the newest `limit` of them were."""
    placed = select(Article.published).where(  # `story_id + 0`: not an index, so the planner
        # walks the publication index in the order wanted instead of sorting every placed article
        Article.duplicate_of_id.is_(None), (Article.story_id + 0).is_not(None), Article.published >= start
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
    """An empty story row; `pipeline.settle.refresh_stories` gives it its title and dates."""
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


def story_members(session: Session, story_ids: Iterable[int]) -> dict[int, list[StoryMember]]:
    """The articles, copies included, of each of `story_ids` that exists (a story
    without articles maps to an empty list; a missing one is left out)."""
    members: dict[int, list[StoryMember]] = {}
    for chunk in _chunks(story_ids):
        members.update((i, []) for i in session.scalars(select(Story.id).where(Story.id.in_(chunk))))
        stmt = select(
            Article.story_id, Article.url, Article.title, Article.published, Article.published_offset,
            Article.features, Article.duplicate_of_id, Article.first_seen, Article.updated_at,
        ).where(Article.story_id.in_(chunk))
        for r in session.execute(stmt):
            if r.story_id in members:
                members[r.story_id].append(StoryMember(
                    r.url, r.title, r.published, r.published_offset, r.features,
                    r.duplicate_of_id is not None, r.first_seen, r.updated_at,
                ))
    return members


def write_story_fields(session: Session, fields: dict[int, StoryFields]) -> None:
    """Give stories the fields decided for them (`pipeline.story_rules`)."""
    for chunk in _chunks(fields):
        for story in session.scalars(select(Story).where(Story.id.in_(chunk))):
            f = fields[story.id]
            story.title, story.published, story.published_offset = f.title, f.published, f.published_offset
            story.features, story.first_seen, story.last_seen = f.features, f.first_seen, f.last_seen
            story.born = f.born


def delete_stories(session: Session, story_ids: Iterable[int]) -> None:
    for chunk in _chunks(story_ids):
        session.execute(
            Story.__table__.delete().where(Story.id.in_(chunk))  # type: ignore[attr-defined]
        )


def ensure_story(session: Session, story_id: int) -> None:
    """The story `story_id`, created back (empty) if it was deleted."""
    if session.get(Story, story_id) is None:
        session.add(Story(id=story_id, title="", features=[]))
        session.flush()


def originals_at(session: Session, urls: Sequence[str]) -> list[tuple[int, int | None]]:
    """(article id, story id) of the originals at these URLs."""
    stmt = select(Article.id, Article.story_id).where(
        Article.url.in_(urls), Article.duplicate_of_id.is_(None)
    )
    return [(article_id, story_id) for article_id, story_id in session.execute(stmt)]
