"""pipeline/story_rules.py: what a story shows, given its articles; no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from veille.pipeline.story_rules import FAR, pin_moves, stories_to_delete, story_fields
from veille.storage.story_pass import StoryMember

T0 = datetime(2024, 3, 1, 8, tzinfo=UTC)


def member(url: str, published: datetime | None, *, features: list[str] | None = None,
           offset: int | None = None, copy: bool = False, first_seen: datetime | None = T0,
           updated_at: datetime | None = T0) -> StoryMember:
    return StoryMember(url, f"title of {url}", published, offset, features, copy, first_seen, updated_at)


def test_the_earliest_article_gives_title_date_and_stated_offset() -> None:
    late = member("a", T0 + timedelta(hours=2), offset=0)
    early = member("z", T0, offset=120)
    fields = story_fields([late, early], 80)
    assert (fields.title, fields.published, fields.published_offset) == ("title of z", T0, 120)
    assert story_fields([early, late], 80) == fields  # whatever order storage gives


def test_a_tie_on_the_date_goes_to_the_smallest_url() -> None:
    fields = story_fields([member("b", T0, offset=60), member("a", T0, offset=-300)], 80)
    assert (fields.title, fields.published_offset) == ("title of a", -300)


def test_a_naive_date_reads_as_utc() -> None:
    naive = member("b", (T0 - timedelta(hours=1)).replace(tzinfo=None))
    assert story_fields([member("a", T0), naive], 80).title == "title of b"


def test_undated_articles_come_after_every_dated_one() -> None:
    fields = story_fields([member("a", None, offset=0), member("b", T0 + timedelta(days=300))], 80)
    assert (fields.title, fields.published) == ("title of b", T0 + timedelta(days=300))
    alone = story_fields([member("b", None), member("a", None)], 80)
    assert (alone.title, alone.published, alone.published_offset) == ("title of a", None, None)


def test_a_copy_can_head_the_story() -> None:
    fields = story_fields([member("a", T0 + timedelta(hours=1)), member("c", T0, copy=True)], 80)
    assert fields.title == "title of c"


def test_features_merge_the_originals_in_order_without_repeats_up_to_the_cap() -> None:
    rows = [
        member("late", T0 + timedelta(hours=1), features=["x:c", "x:a", "x:d"]),
        member("copy", T0, features=["x:copy"], copy=True),  # a copy's features do not count
        member("first", T0, features=["x:a", "x:b"]),
        member("unknown", T0 + timedelta(hours=2), features=None),
    ]
    assert story_fields(rows, 80).features == ["x:a", "x:b", "x:c", "x:d"]
    assert story_fields(rows, 3).features == ["x:a", "x:b", "x:c"]
    assert story_fields(rows, 0).features == []


def test_seen_from_the_first_sighting_to_the_last_update() -> None:
    rows = [
        member("a", T0, first_seen=T0 + timedelta(days=2), updated_at=T0 + timedelta(days=3)),
        member("b", T0 + timedelta(days=1), first_seen=T0 + timedelta(days=1),
               updated_at=T0 + timedelta(days=5)),
    ]
    fields = story_fields(rows, 80)
    assert (fields.first_seen, fields.last_seen) == (T0 + timedelta(days=1), T0 + timedelta(days=5))
    # an article never updated counts as updated last, as it always did
    assert story_fields([member("a", T0, updated_at=None)], 80).last_seen == FAR


def test_a_story_without_articles_has_no_fields() -> None:
    with pytest.raises(ValueError):
        story_fields([], 80)


def test_an_empty_story_goes_unless_it_was_mailed() -> None:
    assert stories_to_delete([3, 1, 2], {2}) == [3, 1]
    assert stories_to_delete([], {2}) == []


def test_mailed_articles_go_back_to_the_story_they_were_mailed_in() -> None:
    moves, left = pin_moves({7: [(1, 7), (2, 9), (3, None)], 8: [(4, 7)]})
    assert moves == {2: 7, 3: 7, 4: 8}
    assert left == {9, 7}
    assert pin_moves({7: [(1, 7)]}) == ({}, set())
