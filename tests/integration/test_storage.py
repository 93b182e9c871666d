"""The storage layer on a real SQLite file: migrations, idempotent writes, runs, stories."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from veille.storage import articles as article_store
from veille.storage import crawl_runs as run_store
from veille.storage import digests as digest_store
from veille.storage import pages as page_store
from veille.storage import views as view_store
from veille.storage.db import Database, current_revision, include_name, table_names
from veille.storage.models import Article, CrawlRun, Page, Story, TopicMatchRow

HEAD = "0008"
COMPARE = {"include_name": include_name}  # the search index is the migrations', not the models'


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

    from veille.storage.db import alembic_config, make_engine
    from veille.storage.models import Base

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
        diff = compare_metadata(MigrationContext.configure(conn, opts=COMPARE), Base.metadata)
    assert diff == []
    db.dispose()


def _article(outlet_id: int, url: str, story_id: int | None, text: str = "corps") -> Article:
    return Article(url=url, outlet_id=outlet_id, story_id=story_id, title="t", text=text,
                   content_hash=digest_store.recipients_key([url]))


def test_same_url_twice_is_one_article(db: Database) -> None:
    with db.transaction() as s:
        oid = page_store.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr")
        s.add(_article(oid, "https://www.bladi.net/a,1.html", None))
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(_article(oid, "https://www.bladi.net/a,1.html", None))
    with db.transaction() as s:
        assert s.scalar(select(func.count(Article.id))) == 1
        # ensure_outlet and record_page are upserts
        assert page_store.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr") == oid
        page_store.record_page(s, "https://www.bladi.net/a,1.html", oid, "article")
        page_store.record_page(s, "https://www.bladi.net/a,1.html", oid, "article")
    with db.transaction() as s:
        assert s.scalar(select(func.count(Page.id))) == 1
        assert page_store.settled_urls(s, ["https://www.bladi.net/a,1.html", "https://x/y"]) == {
            "https://www.bladi.net/a,1.html"
        }


def test_story_with_articles_from_two_outlets(db: Database) -> None:
    with db.transaction() as s:
        a = page_store.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr")
        b = page_store.ensure_outlet(s, "hespress", "https://www.hespress.com", "ar")
        story = Story(title="Hammouchi à Paris", features=["hammouchi", "paris"])
        s.add(story)
        s.flush()
        art1 = _article(a, "https://www.bladi.net/h,1.html", story.id)
        art2 = _article(b, "https://www.hespress.com/h-2.html", story.id)
        s.add_all([art1, art2])
        s.flush()
        article_store.replace_topic_matches(s, art1, [("maroc-france-securite", 7.0, [{"term": "dgsn", "field": "title", "count": 1}])])
        article_store.replace_topic_matches(s, art2, [("maroc-france-securite", 5.0, [{"term": "الأمن", "field": "text", "count": 2}])])
        # replacing is idempotent: the unique (article, topic) constraint holds
        article_store.replace_topic_matches(s, art2, [("maroc-france-securite", 5.0, [{"term": "الأمن", "field": "text", "count": 2}])])
    with db.transaction() as s:
        assert s.scalar(select(func.count(TopicMatchRow.id))) == 2
        views = view_store.list_stories(s, topics=["maroc-france-securite"])
        assert len(views) == 1
        view = views[0]
        assert [x.outlet for x in view.articles] == ["bladi", "hespress"]
        assert view.topics[0].score == 7.0
        assert {m["term"] for m in view.topics[0].matched} == {"dgsn", "الأمن"}
        assert view_store.list_stories(s, topics=["other"]) == []
        doc = view.as_json()
        assert set(doc) >= {"id", "title", "first_seen", "last_seen", "topics", "articles"}
        assert doc["articles"][1]["outlet"] == "hespress"


def test_crawl_run_record(db: Database) -> None:
    with db.transaction() as s:
        run_id = run_store.start_run(s)
        run_store.save_outlet_counts(s, run_id, "bladi", run_store.OutletCounts(discovered=10, fetched=8, new=7, failed=1, errors=["u: 500"]))
        run_store.save_outlet_counts(s, run_id, "bladi", run_store.OutletCounts(discovered=11, fetched=8, new=7, failed=1))
        run_store.save_outlet_counts(s, run_id, "hespress", run_store.OutletCounts(status="blocked", failed=3))
    with db.transaction() as s:
        run = s.get(CrawlRun, run_id)
        assert run is not None and run.status == "running" and run.finished_at is None
        run_store.finish_run(s, run_id, "ok", errors=["hespress: blocked"])
    with db.transaction() as s:
        (run,) = run_store.last_runs(s)
        assert run.status == "ok" and run.finished_at is not None and run.finished_at >= run.started_at
        by = {o.outlet: o for o in run.outlets}
        assert by["bladi"].discovered == 11 and by["hespress"].status == "blocked"
        assert run_store.last_successful_run(s) is not None


def test_abandoned_runs_are_closed(db: Database) -> None:
    with db.transaction() as s:
        keep = run_store.start_run(s)
        dead = run_store.start_run(s)
    with db.transaction() as s:
        assert run_store.mark_abandoned_runs(s, alive=[keep]) == 1
    with db.transaction() as s:
        assert s.get(CrawlRun, dead).status == "interrupted"  # type: ignore[union-attr]
        assert s.get(CrawlRun, keep).status == "running"  # type: ignore[union-attr]


def test_feed_validators_roundtrip(db: Database) -> None:
    url = "https://www.bladi.net/spip.php?page=backend"
    with db.transaction() as s:
        assert page_store.feed_validators(s, url) is None
        page_store.save_feed_validators(s, url, '"abc"', "Mon, 01 Jan 2024 00:00:00 GMT", full_fetch=True)
    with db.transaction() as s:
        v = page_store.feed_validators(s, url)
        assert v is not None and v.etag == '"abc"' and v.last_full_fetch is not None
        page_store.save_feed_validators(s, url, None, None, full_fetch=False)  # a 304 keeps validators
    with db.transaction() as s:
        v = page_store.feed_validators(s, url)
        assert v is not None and v.etag == '"abc"'


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    from veille.storage.db import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError) as err:
        Database(f"sqlite:///{blocker / 'sub' / 'v.db'}")
    assert "\n" not in str(err.value) and str(blocker) in str(err.value)


def test_upgrade_from_0003_keeps_dates_and_adds_the_stated_offset(db_url: str) -> None:
    """A 0003 database with a dated story and article upgrades in place: the instants
    stay, their stated offset is not known (NULL, read in UTC as before), and the schema
    is what the models describe."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import insert

    from veille.storage.db import alembic_config, make_engine
    from veille.storage.models import Base

    when = datetime(2020, 6, 8, 3, 30, tzinfo=UTC)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(insert(Base.metadata.tables["outlets"]).values(id=1, name="bladi", url=""))
        conn.execute(insert(Base.metadata.tables["stories"]).values(id=1, title="t", published=when))
        conn.execute(insert(Base.metadata.tables["articles"]).values(
            url="https://b/1", outlet_id=1, story_id=1, title="t", text="x", content_hash="h", published=when))
    engine.dispose()
    db = Database(db_url)
    assert current_revision(db.engine) == HEAD
    with db.transaction() as s:
        row = s.scalars(select(Article)).one()
        story = s.scalars(select(Story)).one()
        assert (row.published, row.published_offset) == (when, None)
        assert (story.published, story.published_offset) == (when, None)
        (view,) = view_store.list_stories(s)
        assert view.as_json()["published"] == view.as_json()["articles"][0]["published"] == "2020-06-08T03:30:00+00:00"
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=COMPARE), Base.metadata) == []
    db.dispose()



def test_upgrade_from_0004_counts_mailed_stories_articles_as_mailed(db_url: str) -> None:
    """A 0004 database whose digest mailed a story of two articles upgrades with both
    articles recorded as mailed to that list (nothing old comes back as "developing"),
    an unmailed story's article is not, and the schema is what the models describe."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import insert

    from veille.storage.db import alembic_config, make_engine
    from veille.storage.models import Base, DigestArticle

    engine = make_engine(db_url)
    t = Base.metadata.tables
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.execute(insert(t["outlets"]).values(id=1, name="bladi", url=""))
        conn.execute(insert(t["stories"]).values([{"id": 1, "title": "a"}, {"id": 2, "title": "b"}]))
        conn.execute(insert(t["articles"]).values([
            {"id": 1, "url": "https://b/1", "outlet_id": 1, "story_id": 1, "title": "t", "text": "x", "content_hash": "1"},
            {"id": 2, "url": "https://b/2", "outlet_id": 1, "story_id": 1, "title": "t", "text": "x", "content_hash": "2"},
            {"id": 3, "url": "https://b/3", "outlet_id": 1, "story_id": 2, "title": "t", "text": "x", "content_hash": "3"},
        ]))
        conn.execute(insert(t["digests"]).values(id=1, status="sent", recipients="a@x", recipients_key="k"))
        conn.execute(insert(t["digest_items"]).values(digest_id=1, story_id=1, recipients_key="k"))
    engine.dispose()
    db = Database(db_url)
    assert current_revision(db.engine) == HEAD
    with db.transaction() as s:
        rows = s.scalars(select(DigestArticle).order_by(DigestArticle.article_id)).all()
        assert [(r.article_id, r.story_id, r.recipients_key, r.digest_id) for r in rows] == [
            (1, 1, "k", 1), (2, 1, "k", 1)]
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=COMPARE), Base.metadata) == []
    db.dispose()

# ------------------------------------------------- the day the page states (issue 12, item 5)

NEW_YORK = timezone(timedelta(hours=-4))  # 2020-06-07 23:30 there is 2020-06-08 03:30 UTC
PARIS = timezone(timedelta(hours=2))
TOPIC = {"name": "dgst", "require": [["DGST"]]}


def _veille_config(tmp_path: Path, db_url: str, tz: str = "Africa/Casablanca") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "database": {"url": db_url}, "topics": [TOPIC], "schedule": {"timezone": tz},
        "digest": {"topics": ["dgst"], "to": ["a@example.org"]},
        "outlets": [{"name": "bladi", "url": "https://www.bladi.net/", "language": "fr"},
                    {"name": "hespress", "url": "https://www.hespress.com/", "language": "fr"}],
    }))
    return path


def _page_article(url: str, published: datetime | None, outlet: str = "bladi",
                  text: str = "La DGST et la DGSI se sont réunies à Rabat pour coordonner leur action.") -> Any:
    from veille.pipeline.types import Article as Extracted
    from veille.pipeline.types import RawPage

    art = Extracted(url=url, outlet=outlet, title="La DGST reçoit la DGSI", text=text, published=published,
                    author=None, site_name=None, language="fr")
    page = RawPage(url=url, final_url=url, outlet=outlet, status=200, headers={}, body=b"",
                   fetched_at=datetime(2020, 6, 9, tzinfo=UTC), language_hint="fr")
    return page, art


def _processor(config: Path) -> Any:
    from veille.pipeline.config import load_config
    from veille.pipeline.process import Processor

    cfg = load_config(config)
    return Processor(Database(cfg.database.url), cfg)


def _stories_json(config: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    from veille.cli import main

    capsys.readouterr()
    assert main(["stories", "--json", "--all", "--config", str(config)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture()
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)


@pytest.mark.usefixtures("_no_env")
def test_stories_json_keeps_the_offset_and_the_day_the_page_states(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An article the page dates 2020-06-07 23:30 -04:00 is stored at 03:30 UTC the next
    day, and comes back from `veille stories --json` as the page stated it; the story too."""
    config = _veille_config(tmp_path, db_url)
    proc = _processor(config)
    page, art = _page_article("https://www.bladi.net/dgst,1.html", datetime(2020, 6, 7, 23, 30, tzinfo=NEW_YORK))
    assert proc.store(page, art).kind == "new"
    proc.settle()
    with proc.db.transaction() as s:
        row = s.scalars(select(Article)).one()
        assert row.published == datetime(2020, 6, 8, 3, 30, tzinfo=UTC)  # the instant, in UTC
        assert row.published_offset == -240
    (story,) = _stories_json(config, capsys)
    assert story["published"] == "2020-06-07T23:30:00-04:00"
    assert story["articles"][0]["published"] == "2020-06-07T23:30:00-04:00"
    assert story["first_seen"].endswith("+00:00")  # times veille saw stay UTC

    # the table shows the day the page states, not UTC's
    from rich.console import Console

    from veille.report import print_stories

    console = Console(record=True, width=200)
    with proc.db.transaction() as s:
        print_stories(view_store.list_stories(s), console)
    shown = console.export_text()
    assert "2020-06-07" in shown and "2020-06-08" not in shown
    proc.db.dispose()


@pytest.mark.usefixtures("_no_env")
def test_the_first_publication_keeps_its_own_offset(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An update stated later in another offset keeps the first publication and its
    offset; an earlier-dated copy from another outlet gives the story its date and offset."""
    config = _veille_config(tmp_path, db_url)
    proc = _processor(config)
    url = "https://www.bladi.net/dgst,1.html"
    first = datetime(2020, 6, 7, 23, 30, tzinfo=NEW_YORK)
    proc.store(*_page_article(url, first))
    later = _page_article(url, datetime(2020, 6, 8, 12, 0, tzinfo=PARIS),
                          text="La DGST et la DGSI se sont réunies à Rabat. Mise à jour : un communiqué suit.")
    assert proc.store(*later).kind == "updated"
    proc.settle()
    (story,) = _stories_json(config, capsys)
    assert story["articles"][0]["published"] == story["published"] == "2020-06-07T23:30:00-04:00"
    restated = _page_article(url, datetime(2020, 6, 7, 20, 0, tzinfo=timezone(timedelta(hours=1))),
                             text="La DGST et la DGSI se sont réunies à Rabat. Un communiqué conjoint suit.")
    assert proc.store(*restated).kind == "updated"  # now states an earlier time, in +01:00
    proc.settle()
    (story,) = _stories_json(config, capsys)
    assert story["articles"][0]["published"] == story["published"] == "2020-06-07T20:00:00+01:00"

    earlier = datetime(2020, 6, 5, 8, 0, tzinfo=PARIS)
    proc.store(*_page_article("https://www.hespress.com/dgst-2.html", earlier, outlet="hespress"))
    proc.settle()
    (story,) = _stories_json(config, capsys)
    assert story["published"] == "2020-06-05T08:00:00+02:00"
    assert {a["outlet"]: a["published"] for a in story["articles"]} == {
        "hespress": "2020-06-05T08:00:00+02:00", "bladi": "2020-06-07T20:00:00+01:00"}
    proc.db.dispose()


@pytest.mark.usefixtures("_no_env")
def test_an_earlier_url_of_a_stored_article_brings_its_offset(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The outlet's own article met first under a later URL: the earlier-dated URL becomes
    its identity, with the time and offset that page states."""
    config = _veille_config(tmp_path, db_url)
    proc = _processor(config)
    body = " ".join(f"Phrase numéro {i} sur la coopération entre la DGST marocaine et la DGSI "
                    "française, réunies à Rabat." for i in range(12))
    proc.store(*_page_article("https://www.bladi.net/a,2.html", datetime(2020, 6, 8, 10, tzinfo=PARIS), text=body))
    outcome = proc.store(*_page_article("https://www.bladi.net/a,1.html", datetime(2020, 6, 7, 23, 30, tzinfo=NEW_YORK),
                                        text=body + " Une phrase de plus."))
    assert (outcome.kind, outcome.reason) == ("updated", "earlier URL of a stored article")
    proc.settle()
    (story,) = _stories_json(config, capsys)
    assert [(a["url"], a["published"]) for a in story["articles"]] == [
        ("https://www.bladi.net/a,1.html", "2020-06-07T23:30:00-04:00")]
    assert story["published"] == "2020-06-07T23:30:00-04:00"
    proc.db.dispose()


@pytest.mark.usefixtures("_no_env")
def test_the_digest_shows_times_in_the_schedule_time_zone(db_url: str, tmp_path: Path) -> None:
    """Display converts to `schedule.timezone`; what is stored does not change with it."""
    from sqlalchemy import update

    from veille.digest_draft import draft_from_stories
    from veille.pipeline.config import load_config

    config = _veille_config(tmp_path, db_url, tz="Asia/Tokyo")
    proc = _processor(config)
    proc.store(*_page_article("https://www.bladi.net/dgst,1.html", datetime(2020, 6, 7, 23, 30, tzinfo=NEW_YORK)))
    proc.settle()
    with proc.db.transaction() as s:
        s.execute(update(Story).values(first_seen=datetime(2020, 6, 8, 16, 0, tzinfo=UTC)))
    with proc.db.transaction() as s:
        views = view_store.list_stories(s)
    draft = draft_from_stories(views, load_config(config))
    (shown,) = draft.stories
    assert shown.first_seen_local == "2020-06-09 01:00"  # 16:00 UTC in Tokyo
    assert views[0].published == datetime(2020, 6, 8, 3, 30, tzinfo=UTC)  # the same instant
    assert views[0].published is not None and views[0].published.utcoffset() == timedelta(hours=-4)
    proc.db.dispose()
