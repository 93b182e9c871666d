"""web_feeds: a topic's Atom feed as a feed reader parses it (feedparser): valid, one entry
per story with an id that never changes, ordered by when each story last developed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser

from veille.storage.views import ArticleView, StoryView, TimelineEntry
from veille.web_feeds import entry_id, feed_id, summary, topic_feed

T0 = datetime(2025, 4, 14, 8, tzinfo=UTC)


def story(story_id: int, title: str, outlets: list[tuple[str, str]], updated: datetime) -> StoryView:
    arts = [ArticleView(story_id * 10 + i, f"https://{o}.ma/{story_id}", o, title, T0, lang, "text", None)
            for i, (o, lang) in enumerate(outlets)]
    entries = [TimelineEntry(a.id, T0, a.outlet, a.language, a.title, a.url, a.published, None)
               for a in arts]
    return StoryView(story_id, title, T0, T0, T0, [], arts, updated, entries)


def render(stories: list[StoryView]) -> feedparser.FeedParserDict:
    body = topic_feed("maroc-france-securite", "Coopération Maroc–France", stories,
                      self_url="http://127.0.0.1:8080/topics/maroc-france-securite.atom",
                      page_url="http://127.0.0.1:8080/?topic=maroc-france-securite",
                      story_url=lambda i: f"http://127.0.0.1:8080/stories/{i}",
                      now=T0 + timedelta(days=1))
    return feedparser.parse(body)


def test_the_feed_is_valid_atom_with_an_entry_per_story() -> None:
    parsed = render([
        story(1, "Hammouchi reçoit le directeur de la DGSI", [("le360", "fr"), ("bladi", "fr")], T0),
        story(2, "تعاون أمني بين المغرب وفرنسا", [("hespress", "ar")], T0 + timedelta(hours=2)),
        story(3, "<script>alert(1)</script> <b>Extradition</b>\x00\x1b", [("h24info", "fr")], T0),
    ])
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.id == feed_id("maroc-france-securite")
    assert parsed.feed.title == "veille — Coopération Maroc–France"
    assert [e.id for e in parsed.entries] == [entry_id(2), entry_id(3), entry_id(1)]  # newest update first
    arabic, html, french = parsed.entries
    assert arabic.link == "http://127.0.0.1:8080/stories/2"
    assert arabic.title == "تعاون أمني بين المغرب وفرنسا" and arabic.title_detail.language == "ar"
    assert html.title == "<script>alert(1)</script> <b>Extradition</b>"  # text, control chars dropped
    assert html.title_detail.type == "text/plain"
    assert french.summary == "2 outlets: le360, bladi · fr"
    assert parsed.feed.updated_parsed[:6] == (T0 + timedelta(hours=2)).timetuple()[:6]


def test_ids_are_stable_and_updated_moves_when_a_story_develops() -> None:
    before = render([story(1, "Hammouchi", [("le360", "fr")], T0)])
    after = render([story(1, "Hammouchi", [("le360", "fr"), ("alyaoum24", "ar")], T0 + timedelta(hours=5))])
    assert before.entries[0].id == after.entries[0].id == entry_id(1)
    assert after.entries[0].updated_parsed > before.entries[0].updated_parsed
    assert before.feed.id == after.feed.id


def test_an_empty_feed_is_valid() -> None:
    parsed = render([])
    assert not parsed.bozo and parsed.entries == []
    assert parsed.feed.updated_parsed[:3] == (2025, 4, 15)


def test_summary_counts_outlets_once() -> None:
    view = story(4, "x", [("le360", "fr"), ("le360", "fr"), ("hespress", "ar")], T0)
    assert summary(view) == "2 outlets: le360, hespress · ar, fr"
