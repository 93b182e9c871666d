"""The story pass reads only the context that can matter, and decides as if it read all.

`pipeline.settle` reads article by article only the stories an article of the pass can
still join; the other stories born in the IDF's 30 days count from their story rows.
Here passes over months of made-up articles (shared names, late arrivals, a mailed
story) run twice, once that way and once reading every original of those 30 days
(`storage.story_pass.story_pass_rows`, what the pass read before): the stories must be
the same after every pass.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from veille.pipeline import settle
from veille.pipeline.settle import settle_stories
from veille.pipeline.stories import DF_DAYS, KIND_WEIGHT, StoryIndex
from veille.storage import digests as digest_store
from veille.storage import pages as page_store
from veille.storage import story_pass as pass_store
from veille.storage.db import Database
from veille.storage.models import Article, Story

T0 = datetime(2025, 1, 1, 6, tzinfo=UTC)
NAMES = [f"x:p{i}" for i in range(40)]  # shared by several events: near misses
WORDS = [f"k:lat:mot{i}" for i in range(60)]


def _articles(seed: int, events: int = 70, days: int = 90, words: int = 60) -> list[tuple[str, list[str], datetime]]:
    """(url, features, published): `events` events over `days` days, 1 to 6 reports each;
    each report has 6 keywords of the first `words` (few words: features common enough
    to find no candidates)."""
    rng = random.Random(seed)
    out = []
    for e in range(events):
        day = T0 + timedelta(days=rng.uniform(0, days))
        core = rng.sample(NAMES, 3) + [f"n:{100 + e}", f"d:01-{1 + e % 28:02d}"]
        for r in range(rng.randint(1, 6)):
            feats = rng.sample(core, rng.randint(3, 5)) + rng.sample(NAMES, 1) + rng.sample(WORDS[:words], 6)
            out.append((f"https://o.example/e{e}-r{r}", list(dict.fromkeys(feats)),
                        day + timedelta(hours=rng.uniform(0, 120))))
    return out


def _reference_context(s: object, start: datetime, changed: set[int]) -> tuple[list[pass_store.PassRow], list[object]]:
    """What the pass read before: every original of the stories born in its 30 days."""
    return pass_store.story_pass_rows(s, start, start - timedelta(days=DF_DAYS)), []  # type: ignore[arg-type]


@pytest.fixture()
def dbs(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    a, b = Database(f"sqlite:///{tmp_path / 'a.db'}"), Database(f"sqlite:///{tmp_path / 'b.db'}")
    yield a, b
    a.dispose()
    b.dispose()


def _store(db: Database, batch: list[tuple[str, list[str], datetime]]) -> None:
    with db.transaction() as s:
        outlet = page_store.ensure_outlet(s, "o", "https://o.example", "fr")
        for url, feats, published in batch:
            s.add(Article(url=url, outlet_id=outlet, title=url, text="text", content_hash=url,
                          features=feats, published=published))


def _state(db: Database) -> tuple[dict[str, int | None], list[tuple[object, ...]]]:
    with db.transaction() as s:
        placed = {u: sid for u, sid in s.execute(select(Article.url, Article.story_id))}
        rows = sorted((st.id, st.title, st.published, st.born, st.features) for st in s.scalars(select(Story)))
    return placed, rows


def _batches(seed: int, events: int, words: int, passes: int,
             late: float) -> list[list[tuple[str, list[str], datetime]]]:
    """The articles of `_articles` in `passes` crawls by date, a `late` share of them
    stored 2 to 5 crawls after their date."""
    arts = sorted(_articles(seed, events, words=words), key=lambda a: a[2])
    rng = random.Random(seed)
    delayed = set(rng.sample(range(len(arts)), int(len(arts) * late)))  # stored weeks after their date
    batches: list[list[tuple[str, list[str], datetime]]] = [[] for _ in range(passes)]
    for i, art in enumerate(arts):
        slot = min(passes - 1, int(passes * i / len(arts)) + (rng.randint(2, 5) if i in delayed else 0))
        batches[slot].append(art)
    return batches


@pytest.mark.parametrize(("seed", "events", "words", "passes", "late"),
                         [(1, 70, 60, 12, 0.1), (2, 70, 60, 12, 0.1), (3, 70, 60, 12, 0.1),
                          (4, 700, 20, 40, 0.01)])  # a dense archive: common words, routine passes
def test_passes_reading_less_context_place_as_reading_all(
        dbs: tuple[Database, Database], seed: int, events: int, words: int, passes: int, late: float,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ours, reference = dbs
    batches = _batches(seed, events, words, passes, late)
    real_context = settle._context
    for n, batch in enumerate(batches):
        for db, context in ((ours, real_context), (reference, _reference_context)):
            _store(db, batch)
            monkeypatch.setattr(settle, "_context", context)
            settle_stories(db)
        assert _state(ours) == _state(reference), f"after pass {n}"
        if n == passes // 2:  # a story mailed midway keeps its articles on both sides
            for db in (ours, reference):
                with db.transaction() as s:
                    some = s.scalars(select(Story.id).order_by(Story.id).limit(5)).all()
                    digest = digest_store.create_digest(s, ["a@example.org"], "digest")
                    digest_store.mark_digest_sent(s, digest, list(some), "<m@x>")
    placed, _ = _state(ours)
    assert None not in placed.values() and len(set(placed.values())) > 20


def _groups(db: Database) -> set[frozenset[str]]:
    """Which articles share a story (ids aside: a full pass may name them otherwise)."""
    placed, _ = _state(db)
    by_story: dict[int | None, set[str]] = {}
    for url, sid in placed.items():
        by_story.setdefault(sid, set()).add(url)
    return {frozenset(urls) for urls in by_story.values()}


def _flat_weights(index: StoryIndex, features: Iterable[str]) -> dict[str, float]:
    """Weights without the IDF: what is left of a pass's decisions once the drift of
    document frequencies (a late report counted among the stories) is taken out."""
    return {f: KIND_WEIGHT.get(f[0], 1.0) for f in features}


@pytest.mark.parametrize(("seed", "events", "words", "passes", "late"),
                         [(5, 70, 60, 12, 0.2), (6, 70, 60, 12, 0.2), (7, 300, 20, 30, 0.05),
                          (8, 700, 20, 40, 0.02)])
def test_passes_matching_only_what_changed_group_as_passes_matching_all(
        dbs: tuple[Database, Database], seed: int, events: int, words: int, passes: int, late: float,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Routine passes match again only the placed articles a change reaches (`Placed.kept`);
    the reference matches every article since the earliest new one again (`since`), as
    every pass did before. Late reports (stored days after their date) take and give
    articles on both sides alike, while the routine side matches far fewer. With the
    IDF flattened, because that is the one thing the routine pass does not follow: a
    decision only the IDF's drift would flip stays as it was. With nothing for it to guard,
    the rule that matches everything again when the IDF moves much is off: these small
    archives would trip it at every pass (`settle.idf_drifts`)."""
    monkeypatch.setattr(StoryIndex, "weights", _flat_weights)
    monkeypatch.setattr(settle, "DRIFT_SHARE", math.inf)
    ours, reference = dbs
    batches = _batches(seed, events, words, passes, late)
    rematched = examined = moved = 0
    for n, batch in enumerate(batches):
        _store(ours, batch)
        report = settle_stories(ours)
        rematched, examined = rematched + report.rematched, examined + report.examined
        moved += report.moved - report.placed
        _store(reference, batch)
        settle_stories(reference, since=min(p for _, _, p in batch))
        assert _groups(ours) == _groups(reference), f"after pass {n}"
    assert moved > 0  # late reports did move placed articles
    assert rematched < 0.8 * examined  # what the routine side saved
    assert all(None not in _state(db)[0].values() for db in dbs)
