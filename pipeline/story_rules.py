"""What a story is, given its articles: pure rules, no database.

`pipeline.settle` reads a story's articles through `storage.story_pass`, decides here,
and has storage write the outcome. The rules are functions of the articles alone, so
the same articles always make the same story, whichever was stored first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from veille.storage.story_pass import StoryFields, StoryMember
from veille.storage.timestamps import as_utc

FAR = datetime.max.replace(tzinfo=UTC)  # an undated article sorts after every dated one


def story_fields(members: Sequence[StoryMember], max_features: int) -> StoryFields:
    """Title, date and stated offset of the earliest article (then the smallest URL, so
    ties do not depend on storage order; undated ones last, copies included); features
    merged from the originals in that order, first ones first, at most `max_features`
    (copies repeat their original's); seen from the first sighting to the last update;
    born when its first original was published (what the story pass dates it by).
    """
    if not members:
        raise ValueError("a story without articles has no fields")
    rows = sorted(members, key=lambda m: (as_utc(m.published) or FAR, m.url))
    head = rows[0]
    merged = [f for m in rows if not m.is_copy for f in (m.features or ())]
    dated = [as_utc(m.published) for m in rows if not m.is_copy and m.published is not None]
    return StoryFields(
        title=head.title,
        published=head.published,
        published_offset=head.published_offset,
        features=list(dict.fromkeys(merged))[:max_features],
        first_seen=min(as_utc(m.first_seen) or FAR for m in rows),
        last_seen=max(as_utc(m.updated_at) or FAR for m in rows),
        born=dated[0] if dated else None,
    )


def stories_to_delete(empty: Iterable[int], mailed: set[int]) -> list[int]:
    """The empty stories that go: a mailed one stays, so what was sent keeps its id."""
    return [i for i in empty if i not in mailed]


def pin_moves(
    mailed: Mapping[int, Sequence[tuple[int, int | None]]],
) -> tuple[dict[int, int], set[int]]:
    """Moves (article id → story id) putting each mailed article back in the story it
    was mailed in, given (article id, its story now) per mailed story; and the stories
    they leave, whose fields change too. What is recorded as sent is what was mailed."""
    moves: dict[int, int] = {}
    left: set[int] = set()
    for story_id, placed in mailed.items():
        for article_id, now in placed:
            if now != story_id:
                moves[article_id] = story_id
                if now is not None:
                    left.add(now)
    return moves, left
