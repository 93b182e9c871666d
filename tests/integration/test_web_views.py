"""storage.web_views on SQLite and PostgreSQL: the story list's page under each filter, a
topic feed's most recently developed stories, and sessions the database refuses writes in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from veille.storage import pages as page_store
from veille.storage import web_views as web_store
from veille.storage.db import Database
from veille.storage.models import Article, Story, TopicMatchRow

T0 = datetime(2025, 4, 14, 12, tzinfo=UTC)
TOPIC = "maroc-france-securite"


def add_story(db: Database, title: str, published: datetime, articles: list[tuple[str, str]],
              topic: str | None = TOPIC, seen: datetime | None = None) -> int:
    seen = seen or published + timedelta(minutes=10)
    with db.transaction() as s:
        story = Story(title=title, first_seen=seen, last_seen=seen, published=published, features=[])
        s.add(story)
        s.flush()
        for i, (outlet, lang) in enumerate(articles):
            art = Article(url=f"https://{outlet}.ma/{story.id}-{i}", title=title, text="texte",
                          outlet_id=page_store.ensure_outlet(s, outlet, f"https://{outlet}.ma/", lang),
                          story_id=story.id, language=lang, content_hash=f"{story.id}-{i}",
                          published=published, first_seen=seen + timedelta(minutes=i))
            if topic:
                art.topics.append(TopicMatchRow(topic=topic, score=3.0, matched=[]))
            s.add(art)
        return story.id


@pytest.fixture
def stories(db: Database) -> dict[str, int]:
    return {
        "fr": add_story(db, "Hammouchi à Rabat", T0 - timedelta(hours=2), [("le360", "fr"), ("bladi", "fr")]),
        "ar": add_story(db, "تعاون أمني", T0 - timedelta(hours=5), [("hespress", "ar")]),
        "yesterday": add_story(db, "Extradition", T0 - timedelta(days=1), [("le360", "fr")]),
        "untracked": add_story(db, "Météo", T0 - timedelta(hours=1), [("bladi", "fr")], topic=None),
        "old": add_story(db, "Ancienne affaire", T0 - timedelta(days=20), [("h24info", "fr")]),
    }


def test_story_page_filters_and_pages_newest_first(db: Database, stories: dict[str, int]) -> None:
    week = T0 - timedelta(days=7)
    with web_store.read_only(db) as s:
        tracked = web_store.story_page(s, topics=[TOPIC], since=week)
        every = web_store.story_page(s, since=week)
        first, second = (web_store.story_page(s, topics=[TOPIC], since=week, offset=o, limit=2) for o in (0, 2))
        by_outlet = web_store.story_page(s, topics=[TOPIC], since=week, outlet="le360")
        arabic = web_store.story_page(s, language="ar")
        day = web_store.story_page(s, start=T0 - timedelta(days=1, hours=1), end=T0 - timedelta(hours=12))
        outlets, languages = web_store.outlet_names(s), web_store.languages(s)
    assert tracked == [stories["fr"], stories["ar"], stories["yesterday"]]
    assert every == [stories["untracked"], *tracked]
    assert first + second == tracked and len(first) == 2
    assert by_outlet == [stories["fr"], stories["yesterday"]]
    assert arabic == [stories["ar"]]
    assert day == [stories["yesterday"]]
    assert outlets == ["bladi", "h24info", "hespress", "le360"] and languages == ["ar", "fr"]


def test_recently_updated_puts_a_developing_story_first(db: Database, stories: dict[str, int]) -> None:
    with web_store.read_only(db) as s:
        before = web_store.recently_updated(s, TOPIC, 10)
    assert before == [stories["fr"], stories["ar"], stories["yesterday"], stories["old"]]
    with db.transaction() as s:  # the old story gains an article now
        s.add(Article(url="https://alyaoum24.ma/suite", title="suite", text="t", story_id=stories["old"],
                      outlet_id=page_store.ensure_outlet(s, "alyaoum24", "https://alyaoum24.ma/", "ar"),
                      content_hash="suite", first_seen=T0))
    with web_store.read_only(db) as s:
        assert web_store.recently_updated(s, TOPIC, 2) == [stories["old"], stories["fr"]]
        assert web_store.recently_updated(s, "sport", 10) == []


def test_read_only_sessions_refuse_writes_and_leave_the_connection_writable(
        db: Database, stories: dict[str, int]) -> None:
    with pytest.raises(DBAPIError, match="(?i)read.only|readonly"), web_store.read_only(db) as s:
        s.execute(update(Story).where(Story.id == stories["fr"]).values(title="changed"))
    with db.transaction() as s:  # the pooled connection took writes again
        s.execute(update(Story).where(Story.id == stories["fr"]).values(title="renamed"))
    with web_store.read_only(db) as s:
        assert s.scalar(select(Story.title).where(Story.id == stories["fr"])) == "renamed"
