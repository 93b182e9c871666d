"""The storage layer on a real SQLite file: migrations, idempotent writes, runs, stories."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from storage import queries as q
from storage.db import Database, current_revision, table_names
from storage.models import Article, CrawlRun, Page, Story, TopicMatchRow

HEAD = "0003"


@pytest.fixture()
def db(db_url: str) -> Database:
    return Database(db_url)


def test_migrations_from_empty(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "v.db"
    assert not path.exists()
    db = Database(f"sqlite:///{path}")
    assert path.exists()
    assert current_revision(db.engine) == HEAD
    assert {"articles", "stories", "topic_matches", "crawl_runs", "outlet_runs", "feed_state",
            "digests", "digest_items", "pages", "outlets"} <= set(table_names(db.engine))
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    Database(f"sqlite:///{path}")  # a second open is a no-op upgrade
    assert current_revision(db.engine) == HEAD


def test_upgrade_keeps_rows_and_matches_the_models(db_url: str) -> None:
    """A database at 0001 with an article upgrades in place; the result is what the
    models describe (Alembic's autogenerate finds nothing to add or drop)."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.db import alembic_config, make_engine
    from storage.models import Base

    engine = make_engine(db_url)
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql("INSERT INTO outlets (id, name, url) VALUES (1, 'bladi', '')")
        conn.exec_driver_sql(
            "INSERT INTO articles (url, outlet_id, title, text, content_hash, first_seen, "
            "updated_at, versions) VALUES ('https://b/1', 1, 't', 'x', 'h', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)")
    engine.dispose()
    db = Database(db_url)
    assert current_revision(db.engine) == HEAD
    with db.transaction() as s:
        row = s.scalars(select(Article)).one()
        assert (row.url, row.features) == ("https://b/1", None)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    db.dispose()


def _article(outlet_id: int, url: str, story_id: int | None, text: str = "corps") -> Article:
    return Article(url=url, outlet_id=outlet_id, story_id=story_id, title="t", text=text,
                   content_hash=q.recipients_key([url]))


def test_same_url_twice_is_one_article(db: Database) -> None:
    with db.transaction() as s:
        oid = q.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr")
        s.add(_article(oid, "https://www.bladi.net/a,1.html", None))
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(_article(oid, "https://www.bladi.net/a,1.html", None))
    with db.transaction() as s:
        assert s.scalar(select(func.count(Article.id))) == 1
        # ensure_outlet and record_page are upserts
        assert q.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr") == oid
        q.record_page(s, "https://www.bladi.net/a,1.html", oid, "article")
        q.record_page(s, "https://www.bladi.net/a,1.html", oid, "article")
    with db.transaction() as s:
        assert s.scalar(select(func.count(Page.id))) == 1
        assert q.settled_urls(s, ["https://www.bladi.net/a,1.html", "https://x/y"]) == {
            "https://www.bladi.net/a,1.html"
        }


def test_story_with_articles_from_two_outlets(db: Database) -> None:
    with db.transaction() as s:
        a = q.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr")
        b = q.ensure_outlet(s, "hespress", "https://www.hespress.com", "ar")
        story = Story(title="Hammouchi à Paris", features=["hammouchi", "paris"])
        s.add(story)
        s.flush()
        art1 = _article(a, "https://www.bladi.net/h,1.html", story.id)
        art2 = _article(b, "https://www.hespress.com/h-2.html", story.id)
        s.add_all([art1, art2])
        s.flush()
        q.replace_topic_matches(s, art1, [("maroc-france-securite", 7.0, [{"term": "dgsn", "field": "title", "count": 1}])])
        q.replace_topic_matches(s, art2, [("maroc-france-securite", 5.0, [{"term": "الأمن", "field": "text", "count": 2}])])
        # replacing is idempotent: the unique (article, topic) constraint holds
        q.replace_topic_matches(s, art2, [("maroc-france-securite", 5.0, [{"term": "الأمن", "field": "text", "count": 2}])])
    with db.transaction() as s:
        assert s.scalar(select(func.count(TopicMatchRow.id))) == 2
        views = q.list_stories(s, topics=["maroc-france-securite"])
        assert len(views) == 1
        view = views[0]
        assert [x.outlet for x in view.articles] == ["bladi", "hespress"]
        assert view.topics[0].score == 7.0
        assert {m["term"] for m in view.topics[0].matched} == {"dgsn", "الأمن"}
        assert q.list_stories(s, topics=["other"]) == []
        doc = view.as_json()
        assert set(doc) >= {"id", "title", "first_seen", "last_seen", "topics", "articles"}
        assert doc["articles"][1]["outlet"] == "hespress"


def test_crawl_run_record(db: Database) -> None:
    with db.transaction() as s:
        run_id = q.start_run(s)
        q.save_outlet_counts(s, run_id, "bladi", q.OutletCounts(discovered=10, fetched=8, new=7, failed=1, errors=["u: 500"]))
        q.save_outlet_counts(s, run_id, "bladi", q.OutletCounts(discovered=11, fetched=8, new=7, failed=1))
        q.save_outlet_counts(s, run_id, "hespress", q.OutletCounts(status="blocked", failed=3))
    with db.transaction() as s:
        run = s.get(CrawlRun, run_id)
        assert run is not None and run.status == "running" and run.finished_at is None
        q.finish_run(s, run_id, "ok", errors=["hespress: blocked"])
    with db.transaction() as s:
        (run,) = q.last_runs(s)
        assert run.status == "ok" and run.finished_at is not None and run.finished_at >= run.started_at
        by = {o.outlet: o for o in run.outlets}
        assert by["bladi"].discovered == 11 and by["hespress"].status == "blocked"
        assert q.last_successful_run(s) is not None


def test_abandoned_runs_are_closed(db: Database) -> None:
    with db.transaction() as s:
        keep = q.start_run(s)
        dead = q.start_run(s)
    with db.transaction() as s:
        assert q.mark_abandoned_runs(s, alive=[keep]) == 1
    with db.transaction() as s:
        assert s.get(CrawlRun, dead).status == "interrupted"  # type: ignore[union-attr]
        assert s.get(CrawlRun, keep).status == "running"  # type: ignore[union-attr]


def test_feed_validators_roundtrip(db: Database) -> None:
    url = "https://www.bladi.net/spip.php?page=backend"
    with db.transaction() as s:
        assert q.feed_validators(s, url) is None
        q.save_feed_validators(s, url, '"abc"', "Mon, 01 Jan 2024 00:00:00 GMT", full_fetch=True)
    with db.transaction() as s:
        v = q.feed_validators(s, url)
        assert v is not None and v.etag == '"abc"' and v.last_full_fetch is not None
        q.save_feed_validators(s, url, None, None, full_fetch=False)  # a 304 keeps validators
    with db.transaction() as s:
        v = q.feed_validators(s, url)
        assert v is not None and v.etag == '"abc"'


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    from storage.db import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError) as err:
        Database(f"sqlite:///{blocker / 'sub' / 'v.db'}")
    assert "\n" not in str(err.value) and str(blocker) in str(err.value)
