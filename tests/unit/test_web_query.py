"""web_query: the web view's query parameters (one clear line for a bad one), the window the
story list reads, and what a page shows of a story (right-to-left per article language)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest

from veille.storage.views import ArticleView, StoryView, TimelineEntry, TopicView
from veille.web_query import (
    DEFAULT_LIMIT,
    BadRequest,
    StoryFilters,
    Term,
    by_day,
    card,
    keep_topics,
    link_safe,
    local,
    parse_filters,
    reasons,
    right_to_left,
    terms,
    timeline,
)

TZ = ZoneInfo("Africa/Casablanca")
NOW = datetime(2025, 4, 14, 12, 0, tzinfo=UTC)
TOPICS = ["maroc-france-securite", "sport"]


def test_no_parameter_is_the_tracked_topics_of_the_last_week() -> None:
    f = parse_filters({}, TOPICS)
    assert f == StoryFilters()
    assert f.topics(TOPICS) == TOPICS
    assert f.window(TZ, NOW) == (NOW - timedelta(days=7), None, None)


def test_topic_all_days_since_and_paging_are_read() -> None:
    f = parse_filters({"topic": "sport", "days": "30", "page": "3", "limit": "20",
                       "outlet": "le360", "language": "ar"}, TOPICS)
    assert (f.topic, f.days, f.page, f.limit, f.outlet, f.language) == ("sport", 30, 3, 20, "le360", "ar")
    assert f.topics(TOPICS) == ["sport"]
    assert f.window(TZ, NOW)[0] == NOW - timedelta(days=30)
    assert parse_filters({"all": "1"}, TOPICS).topics(TOPICS) is None
    since = parse_filters({"since": "2025-04-01"}, TOPICS)
    assert since.window(TZ, NOW) == (datetime(2025, 4, 1, tzinfo=UTC), None, None)  # naive: UTC, as the CLI


def test_a_day_is_the_configured_zones_day() -> None:
    f = parse_filters({"day": "2025-04-14", "days": "3"}, TOPICS)
    since, start, end = f.window(TZ, NOW)
    assert since is None  # a day overrides the recent window
    assert start == datetime(2025, 4, 13, 23, tzinfo=UTC)  # Casablanca is UTC+1
    assert end == datetime(2025, 4, 14, 23, tzinfo=UTC)


@pytest.mark.parametrize(("params", "line"), [
    ({"since": "yesterday"}, "since: 'yesterday' is not an ISO date/time"),
    ({"day": "14/04/2025"}, "day: '14/04/2025' is not a date"),
    ({"days": "0"}, "days: 0 is not between 1 and 3650"),
    ({"days": "a week"}, "days: 'a week' is not a whole number"),
    ({"page": "-1"}, "page: -1 is not between 1 and 10000"),
    ({"limit": "501"}, "limit: 501 is not between 1 and 500"),
    ({"topic": "meteo"}, "topic: no topic named 'meteo'"),
    ({"all": "perhaps"}, "all: 'perhaps' is not 1 or 0"),
    ({"day": "9999-12-31"}, "day: '9999-12-31' is out of range"),
    ({"since": "9999-12-31T23:59-05:00"}, "since: '9999-12-31T23:59-05:00' is out of range"),
])
def test_a_bad_parameter_is_one_line_naming_it(params: dict[str, str], line: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_filters(params, TOPICS)
    assert str(info.value).startswith(line)
    assert "\n" not in str(info.value)


def test_query_keeps_what_was_given_and_drops_defaults() -> None:
    f = parse_filters({"topic": "sport", "outlet": "le 360 & co", "page": "2"}, TOPICS)
    assert dict(parse_qsl(f.query())) == {"topic": "sport", "outlet": "le 360 & co", "page": "2"}
    assert dict(parse_qsl(f.query(page=1, day=date(2025, 4, 1)))) == {
        "topic": "sport", "outlet": "le 360 & co", "day": "2025-04-01"}
    assert parse_filters(dict(parse_qsl(f.query())), TOPICS) == f  # a link reads back the same
    assert StoryFilters(limit=DEFAULT_LIMIT).query() == ""


def test_right_to_left_follows_the_article_language_then_the_script() -> None:
    assert right_to_left("ar", "Hammouchi") is True  # the language decides
    assert right_to_left("fr", "تعاون أمني") is False
    assert right_to_left(None, "تعاون أمني بين المغرب وفرنسا") is True
    assert right_to_left(None, "Coopération sécuritaire") is False


def test_only_http_links_are_links() -> None:
    assert link_safe("https://le360.ma/a") and link_safe("HTTP://x.ma/")
    assert not link_safe("javascript:alert(1)") and not link_safe("data:text/html,x")


def _story(story_id: int, title: str, lang: str, published: datetime) -> StoryView:
    seen = published + timedelta(minutes=5)
    arts = [ArticleView(10 * story_id + i, f"https://{o}.ma/{story_id}", o, title, published, lang,
                        f"{title}. Le texte de l'article {i}, assez long pour un extrait.", None)
            for i, o in enumerate(["le360", "bladi"])]
    entries = [TimelineEntry(a.id, seen + timedelta(hours=i), a.outlet, lang, a.title, a.url,
                             a.published, arts[0].id if i else None) for i, a in enumerate(arts)]
    matched: list[dict[str, Any]] = [{"term": "dgsi", "field": "title", "count": 1}]
    return StoryView(story_id, title, seen, seen, published,
                     [TopicView("maroc-france-securite", 4.5, matched)],
                     arts, seen + timedelta(hours=1), entries)


def test_cards_show_local_times_and_group_by_local_day() -> None:
    late = _story(1, "تعاون أمني", "ar", datetime(2025, 4, 13, 23, 30, tzinfo=UTC))  # 00:30 on the 14th in Casablanca
    early = _story(2, "Hammouchi à Rabat", "fr", datetime(2025, 4, 13, 22, 0, tzinfo=UTC))
    cards = [card(late, TZ), card(early, TZ)]
    assert cards[0].when == "2025-04-14 00:30" and cards[0].rtl
    assert cards[1].when == "2025-04-13 23:00" and not cards[1].rtl
    assert cards[0].outlets == ["le360", "bladi"] and cards[0].languages == ["ar"]
    assert [(d, [c.id for c in cs]) for d, cs in by_day(cards)] == [
        (date(2025, 4, 14), [1]), (date(2025, 4, 13), [2])]


def test_timeline_entries_carry_excerpts_copies_and_direction() -> None:
    view = _story(3, "تعاون أمني", "ar", datetime(2025, 4, 13, 10, tzinfo=UTC))
    entries = timeline(view, TZ)
    assert [e.outlet for e in entries] == ["le360", "bladi"]
    assert entries[0].copy_of is None and entries[1].copy_of == "le360: تعاون أمني"
    assert all(e.rtl and e.safe for e in entries)
    assert entries[0].excerpt.startswith("Le texte de l'article 0")  # the title is not repeated
    assert entries[0].joined == local(view.timeline[0].first_seen, TZ)
    (reason,) = reasons(view, {"maroc-france-securite": "Coopération"})
    assert (reason.label, reason.score, reason.terms) == ("Coopération", 4.5, [Term("dgsi", "title", False)])


def test_terms_once_each_title_hits_first_then_the_most_frequent() -> None:
    matched = [{"term": "france", "field": "text", "count": 1},
               {"term": "فرنسا", "field": "text", "count": 4},
               {"term": "hammouchi", "field": "text", "count": 2},
               {"term": "hammouchi", "field": "title", "count": 1},
               {"term": "", "field": "text", "count": 9}]
    assert terms(matched) == [Term("hammouchi", "text ×2, title", False),
                              Term("فرنسا", "text ×4", True), Term("france", "text", False)]


def test_keep_topics_keeps_only_those_asked_for() -> None:
    view = _story(4, "x", "fr", datetime(2025, 4, 13, 10, tzinfo=UTC))
    assert keep_topics([view], None) == [view]
    assert keep_topics([view], ["maroc-france-securite"]) == [view]
    (kept,) = keep_topics([view], ["sport"])
    assert kept.topics == [] and kept.timeline == view.timeline
