"""storage/views.py on a real database: a story's timeline (every article, copies
included, in the order it joined) and `updated` (when it last gained one), as
`list_stories` and `veille stories --json` give them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import repo_topics
from veille.cli import main
from veille.storage import digests as digest_store
from veille.storage import pages as page_store
from veille.storage import views as view_store
from veille.storage.db import Database
from veille.storage.models import Article, Story

T0 = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)


def _article(outlet_id: int, story_id: int, url: str, seen: datetime, *, language: str = "fr",
             published: datetime | None = None, copy_of: int | None = None,
             updated: datetime | None = None) -> Article:
    return Article(url=url, outlet_id=outlet_id, story_id=story_id, title=f"Titre {url}",
                   text="corps", language=language, published=published, duplicate_of_id=copy_of,
                   first_seen=seen, updated_at=updated or seen,
                   content_hash=digest_store.recipients_key([url]))


def _developing_story(db: Database) -> int:
    """A story first reported at noon by le360, in Arabic by hespress in the evening (a
    copy of it at Barlamane two days later), the le360 article re-fetched on day 3.

    last_seen is what the story rules make it (the latest `updated_at`): day 3."""
    with db.transaction() as s:
        le360 = page_store.ensure_outlet(s, "le360", "https://fr.le360.ma", "fr")
        hespress = page_store.ensure_outlet(s, "hespress", "https://www.hespress.com", "ar")
        barlamane = page_store.ensure_outlet(s, "barlamane", "https://www.barlamane.com", "ar")
        story = Story(title="Hammouchi à Paris", features=[], first_seen=T0,
                      last_seen=T0 + timedelta(days=3))
        s.add(story)
        s.flush()
        # added out of order: the timeline sorts by when veille stored each article
        ar = _article(hespress, story.id, "https://www.hespress.com/h-2.html", T0 + timedelta(hours=7),
                      language="ar", published=T0 - timedelta(days=1))
        fr = _article(le360, story.id, "https://fr.le360.ma/h-1/", T0, published=T0 - timedelta(hours=1),
                      updated=T0 + timedelta(days=3))
        s.add_all([ar, fr])
        s.flush()
        s.add(_article(barlamane, story.id, "https://www.barlamane.com/h-3", T0 + timedelta(days=2),
                       language="ar", copy_of=ar.id))
        return story.id


def test_timeline_in_joining_order_with_copies(db: Database) -> None:
    story_id = _developing_story(db)
    with db.transaction() as s:
        (view,) = view_store.list_stories(s)
    assert view.id == story_id
    assert [(e.outlet, e.language, e.is_copy) for e in view.timeline] == [
        ("le360", "fr", False), ("hespress", "ar", False), ("barlamane", "ar", True),
    ]
    assert [e.first_seen for e in view.timeline] == [T0, T0 + timedelta(hours=7), T0 + timedelta(days=2)]
    hespress = view.timeline[1]
    assert view.timeline[2].copy_of == hespress.article_id
    assert hespress.url == "https://www.hespress.com/h-2.html" and hespress.title.startswith("Titre ")
    assert hespress.published == T0 - timedelta(days=1)
    # the articles list keeps its own order (by publication), the timeline does not follow it
    assert [a.outlet for a in view.articles][:2] == ["hespress", "le360"]
    # updated: the copy joining on day 2, not the re-fetch on day 3 that moved last_seen
    assert view.updated == T0 + timedelta(days=2)
    assert view.last_seen == T0 + timedelta(days=3)


def test_story_json_gains_updated_and_timeline(db: Database) -> None:
    _developing_story(db)
    with db.transaction() as s:
        (view,) = view_store.list_stories(s)
    doc = view.as_json()
    assert list(doc) == ["id", "title", "first_seen", "last_seen", "published", "topics", "articles",
                         "updated", "timeline"]
    assert doc["updated"] == (T0 + timedelta(days=2)).isoformat()
    copy = doc["timeline"][2]
    assert copy == {
        "first_seen": (T0 + timedelta(days=2)).isoformat(), "outlet": "barlamane", "language": "ar",
        "title": "Titre https://www.barlamane.com/h-3", "url": "https://www.barlamane.com/h-3",
        "published": None, "copy": True, "copy_of": "https://www.hespress.com/h-2.html",
    }
    assert doc["timeline"][0]["copy"] is False and doc["timeline"][0]["copy_of"] is None


def test_stories_json_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    db = Database(url)
    _developing_story(db)
    db.dispose()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"url": url}, "topics": repo_topics()}, allow_unicode=True))
    assert main(["stories", "--all", "--json", "--since", "2024-06-01", "--config", str(cfg)]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["updated"] == (T0 + timedelta(days=2)).isoformat()
    assert [(e["outlet"], e["copy"]) for e in doc["timeline"]] == [
        ("le360", False), ("hespress", False), ("barlamane", True),
    ]


def _plans(db: Database, call: Any) -> list[str]:
    """SQLite's plan of every statement `call(session)` sends."""
    from sqlalchemy import event

    sent: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
        sent.append((statement, params))

    with db.transaction() as s:
        conn = s.connection()
        event.listen(conn, "before_cursor_execute", grab)
        call(s)
        event.remove(conn, "before_cursor_execute", grab)
        return [" | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + st, p))
                for st, p in sent]


def test_the_story_list_and_the_digest_read_by_index(tmp_path: Path) -> None:
    """The topic filter starts from the window (EXISTS per story) instead of listing every
    flagged story of the archive, and the digest's "not yet mailed" test reads the unique
    (story_id, recipients_key) index instead of building a temporary one each run."""
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    _developing_story(db)
    since = datetime.now(UTC) - timedelta(days=7)
    plans = _plans(db, lambda s: view_store.list_stories(s, topics=["maroc-france-securite"], since=since))
    assert "SCAN topic_matches" not in plans[0] and "ix_stories_first_seen" in plans[0], plans[0]
    plans = _plans(db, lambda s: digest_store.unsent_story_ids(s, ["maroc-france-securite"], ["a@b.c"], since))
    assert "SCAN digest_items" not in plans[0] and "AUTOMATIC" not in plans[0], plans[0]
    assert "SEARCH digest_items USING COVERING INDEX" in plans[0], plans[0]
    db.dispose()
