"""The story pass (pipeline.settle) on hand-made articles, on SQLite and PostgreSQL.

Articles are written with their story features directly, so each case shows one rule:
a later, earlier-published report can take an article from a story, unless that story
was mailed; copies follow their original; an undated article is a story of its own; a
second pass changes nothing; a story left empty is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from veille import cli
from veille.crawl import run_crawl_subprocess
from veille.pipeline.settle import (
    DRIFT_SHARE,
    idf_drifts,
    pin_mailed,
    refresh_stories,
    settle_stories,
)
from veille.pipeline.stories import MIN_IDF_STORIES
from veille.storage import articles as article_store
from veille.storage import digests as digest_store
from veille.storage import pages as page_store
from veille.storage import story_pass as pass_store
from veille.storage.db import Database
from veille.storage.models import Article, CrawlRun, Story

T0 = datetime(2025, 3, 1, 8, tzinfo=UTC)
A = ["x:a1", "x:a2", "x:a3", "x:a4", "n:501", "k:lat:police"]  # an event
B = ["x:b1", "x:b2", "x:b3", "n:601", "k:lat:police"]  # another event
C = list(dict.fromkeys(A + B))  # a report naming both: closer to A than to B, and close enough to B alone


@pytest.fixture()
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def add(db: Database, url: str, features: list[str] | None, published: datetime | None,
        copy_of: str | None = None) -> int:
    with db.transaction() as s:
        outlet = page_store.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr")
        original = article_store.article_by_url(s, copy_of) if copy_of else None
        row = Article(url=url, outlet_id=outlet, title=f"title of {url}", text="text",
                      content_hash=url, features=features, published=published,
                      duplicate_of_id=original.id if original else None,
                      story_id=original.story_id if original else None)
        s.add(row)
        s.flush()
        return row.id


def stories(db: Database) -> dict[str, int | None]:
    with db.transaction() as s:
        return {url: sid for url, sid in s.execute(select(Article.url, Article.story_id))}


def mail(db: Database, story_ids: set[int | None]) -> None:
    with db.transaction() as s:
        digest = digest_store.create_digest(s, ["a@example.org"], "digest")
        digest_store.mark_digest_sent(s, digest, sorted(i for i in story_ids if i is not None), "<m@x>")


def test_an_earlier_report_can_take_an_article_from_a_story(db: Database) -> None:
    add(db, "b", B, T0 + timedelta(days=1))
    add(db, "c", C, T0 + timedelta(days=1, hours=12))
    settle_stories(db)
    first = stories(db)
    assert first["b"] == first["c"]  # without A, C is B's story

    add(db, "a", A, T0 + timedelta(hours=12))
    report = settle_stories(db)
    now = stories(db)
    assert now["c"] == now["a"] != now["b"]  # one pass in date order: C reads A first
    assert now["b"] == first["b"]  # B's story keeps its id: it keeps its first article
    assert (report.examined, report.placed, report.moved) == (3, 1, 2)


def test_a_mailed_story_keeps_its_articles(db: Database) -> None:
    add(db, "b", B, T0 + timedelta(days=1))
    add(db, "c", C, T0 + timedelta(days=1, hours=12))
    settle_stories(db)
    first = stories(db)
    mail(db, set(first.values()))

    add(db, "a", A, T0 + timedelta(hours=12))
    settle_stories(db)
    now = stories(db)
    assert (now["b"], now["c"]) == (first["b"], first["c"])
    assert now["a"] not in (None, first["b"])


def test_copies_follow_their_original(db: Database) -> None:
    add(db, "b", B, T0 + timedelta(days=1))
    add(db, "b-copy", None, T0 + timedelta(days=1, hours=2), copy_of="b")
    add(db, "c", C, T0 + timedelta(days=1, hours=12))
    settle_stories(db)
    placed = stories(db)
    assert placed["b-copy"] == placed["b"] == placed["c"] is not None

    add(db, "a", A, T0 + timedelta(hours=12))
    add(db, "c-copy", None, T0 + timedelta(days=2), copy_of="c")  # stored before the pass
    settle_stories(db)
    now = stories(db)
    assert now["b-copy"] == now["b"] != now["c"]
    assert now["c-copy"] == now["c"] == now["a"]


def test_undated_articles_are_stories_of_their_own(db: Database) -> None:
    add(db, "b", B, None)
    add(db, "c", C, None)
    report = settle_stories(db)
    placed = stories(db)
    assert None not in placed.values() and placed["b"] != placed["c"]
    assert report.start is None and report.placed == 2


def test_a_second_pass_changes_nothing(db: Database) -> None:
    for i, feats in enumerate([A, B, C, A + ["x:z"], B + ["n:77"]]):
        add(db, f"u{i}", feats, T0 + timedelta(hours=7 * i))
    settle_stories(db)
    first = stories(db)
    with db.transaction() as s:
        rows = sorted((st.id, st.title, st.published, st.features) for st in s.scalars(select(Story)))
    report = settle_stories(db, since=T0)  # everything re-examined
    assert report.examined == 5 and report.moved == 0 and report.created == 0
    assert stories(db) == first
    with db.transaction() as s:
        assert sorted((st.id, st.title, st.published, st.features) for st in s.scalars(select(Story))) == rows


def _row(i: int, story: int | None) -> pass_store.PassRow:
    return pass_store.PassRow(i, f"u{i}", story, ["x:a"], T0)


def test_the_idf_drifts_when_new_articles_are_many_for_the_stories_known() -> None:
    known = [_row(i, i) for i in range(100)]
    limit = int(DRIFT_SHARE * 100)
    assert not idf_drifts(known + [_row(100 + i, None) for i in range(limit)], [], ())
    assert idf_drifts(known + [_row(100 + i, None) for i in range(limit + 1)], [], ())
    counted = [(str(i), ["x:b"], T0) for i in range(1000)]  # stories weighing in the IDF only
    assert not idf_drifts([_row(i, None) for i in range(limit + 1)], counted, ())
    assert idf_drifts(known, [], range(limit + 1))  # articles whose text changed count as new
    young = int(DRIFT_SHARE * MIN_IDF_STORIES)  # the IDF never counts fewer stories than this
    assert not idf_drifts([_row(0, 0)] + [_row(1 + i, None) for i in range(young)], [], ())
    assert idf_drifts([_row(0, 0)] + [_row(1 + i, None) for i in range(young + 1)], [], ())


def test_a_young_archive_matches_everything_again_a_settled_one_what_changed(db: Database) -> None:
    for i in range(40):  # forty stories of their own, a day apart
        add(db, f"old{i}", [f"x:e{i}", f"x:f{i}", f"n:{i}", f"k:lat:w{i}"], T0 + timedelta(days=i / 2))
    assert settle_stories(db).drifted
    add(db, "late", A, T0 + timedelta(days=5))  # one report among forty stories: routine
    report = settle_stories(db)
    assert not report.drifted and report.rematched < report.examined
    for i in range(10):  # a first crawl of a new outlet: ten reports at once
        add(db, f"new{i}", [f"x:g{i}", f"n:{100 + i}"], T0 + timedelta(days=5, hours=i))
    report = settle_stories(db)
    assert report.drifted and report.rematched == report.examined
    assert "all matched again" in str(report)


def test_story_title_and_date_come_from_its_earliest_article(db: Database) -> None:
    add(db, "c", C, T0 + timedelta(days=1, hours=12))
    add(db, "b", B, T0 + timedelta(days=1))
    settle_stories(db)
    with db.transaction() as s:
        story = s.scalars(select(Story)).one()
        assert story.title == "title of b"
        assert story.published == T0 + timedelta(days=1)
        assert set(story.features) == set(C)


def test_a_story_left_empty_is_deleted(db: Database) -> None:
    add(db, "b", B, T0 + timedelta(days=1))
    add(db, "c", C, T0 + timedelta(days=1, hours=12))
    settle_stories(db)
    with db.transaction() as s:  # as if C had been placed alone by an older pass
        c = article_store.article_by_url(s, "c")
        assert c is not None
        c.story_id = pass_store.new_story(s)
        lone = c.story_id
    settle_stories(db, since=T0)
    with db.transaction() as s:
        assert s.get(Story, lone) is None
        assert s.scalar(select(func.count(Story.id))) == 1
    assert len(set(stories(db).values())) == 1


def test_a_failed_story_pass_leaves_the_articles_for_the_next(
        config_dict: dict[str, Any], config_file: Path) -> None:
    """A real crawl whose story pass the database refuses (an SQLite trigger, as a full
    disk or a lost server would): the run still ends, says why in its message, keeps
    every article; `veille stories --settle` places them once the database allows it."""
    url = config_dict["database"]["url"]
    db = Database(url)
    refuse = ("CREATE TRIGGER refuse_stories BEFORE UPDATE OF story_id ON articles "
              "BEGIN SELECT RAISE(ABORT, 'database refuses story updates'); END")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(refuse)
    assert run_crawl_subprocess(config_file, timeout=120) == 0
    with db.transaction() as s:
        run = s.scalars(select(CrawlRun)).one()
        stored = s.scalar(select(func.count(Article.id)))
        waiting = pass_store.count_unplaced(s)
    assert run.status == "ok" and "story pass failed" in (run.message or "")
    assert stored > 20 and waiting > 0
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse_stories")
    assert cli.main(["stories", "--settle", "--config", str(config_file)]) == 0
    with db.transaction() as s:
        assert s.scalar(select(func.count(Article.id)).where(Article.story_id.is_(None))) == 0
        assert s.scalar(select(func.count(Article.id))) == stored
    db.dispose()


def test_pinning_what_was_mailed_brings_back_a_deleted_story(db: Database) -> None:
    """What the digest does when a pass emptied and deleted a story it was sending."""
    add(db, "b", B, T0 + timedelta(days=1))
    add(db, "c", C, T0 + timedelta(days=2))
    with db.transaction() as s:
        b, c = article_store.article_by_url(s, "b"), article_store.article_by_url(s, "c")
        assert b is not None and c is not None
        x, y = pass_store.new_story(s), pass_store.new_story(s)
        pass_store.move_articles(s, {b.id: x, c.id: y})
        refresh_stories(s, {x, y}, 80)
    with db.transaction() as s:  # a pass moves c into x: y is left empty and deleted
        pass_store.move_articles(s, {c.id: x})
        assert refresh_stories(s, {x, y}, 80) == 1
        assert s.get(Story, y) is None
    with db.transaction() as s:  # but y, with c, had just been mailed
        assert pin_mailed(s, {y: ["c"]}, 80) == 1
    with db.transaction() as s:
        story = s.get(Story, y)
        assert story is not None and story.title == "title of c"
    assert stories(db) == {"b": x, "c": y}


def test_an_old_late_article_does_not_reopen_every_story_since(db: Database) -> None:
    """With at most 2 placed articles to re-examine, an article dated months back joins
    its own days' story; the stories in between are not reopened."""
    add(db, "b", B, T0)
    for week in range(1, 5):  # four later events, each its own story
        add(db, f"e{week}", [f"x:p{week}", f"x:q{week}", f"n:{700 + week}", f"e:r{week}"],
            T0 + timedelta(weeks=week))
    settle_stories(db)
    before = stories(db)
    add(db, "c", C, T0 + timedelta(hours=12))  # B's event, stored months late
    add(db, "z", ["x:z1", "x:z2", "n:999", "e:z3"], T0 + timedelta(weeks=4, days=1))
    report = settle_stories(db, reopen_max=2)
    now = stories(db)
    assert now["c"] == now["b"] == before["b"]  # placed among the stories of its days
    assert report.start == T0 + timedelta(weeks=3)  # only the newest 2 placed reopened
    assert {k: now[k] for k in before} == before
    assert now["z"] not in before.values() and None not in now.values()


def test_the_pass_reads_the_stories_born_in_its_context_window(db: Database) -> None:
    """Before `start`, only stories whose first original falls in the 30 days before it:
    an older story cannot be matched (7-day window) and is out of the IDF; a copy's
    earlier date does not make a story older."""
    start = T0
    add(db, "old-first", A, T0 - timedelta(days=40))
    add(db, "old-second", A, T0 - timedelta(days=20))
    add(db, "recent", B, T0 - timedelta(days=20))
    add(db, "recent-copy", None, T0 - timedelta(days=40), copy_of="recent")
    add(db, "new", C, T0 + timedelta(hours=1))
    with db.transaction() as s:
        ids = {url: a for url, a in s.execute(select(Article.url, Article.id))}
        old, recent = pass_store.new_story(s), pass_store.new_story(s)
        pass_store.move_articles(s, {ids["old-first"]: old, ids["old-second"]: old, ids["recent"]: recent})
        rows = pass_store.story_pass_rows(s, start, start - timedelta(days=30))
    assert {r.url for r in rows} == {"recent", "new"}
