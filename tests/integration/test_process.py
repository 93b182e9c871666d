"""The pipeline on the replay pages, without Scrapy: extract → fold → stories → topics → storage.

Pages are fetched over HTTP from the replay server (so charsets and headers are the
served ones) and processed into a real database, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import func, select

from tests.conftest import FIXTURE_OUTLETS, TEST_CRAWL, repo_topics
from veille import cli
from veille.crawler.canonical import canonical_url
from veille.crawler.replay import ReplayServer
from veille.pipeline.config import Config, config_from_dict
from veille.pipeline.process import Processor
from veille.pipeline.types import Article as ArticleData
from veille.pipeline.types import RawPage
from veille.storage import digests as digest_store
from veille.storage import story_pass as pass_store
from veille.storage.db import Database
from veille.storage.models import Article, Page, Story, TopicMatchRow

TOPIC = "maroc-france-securite"


def _expected() -> dict[str, dict[str, Any]]:
    out = {}
    for folder in sorted(FIXTURE_OUTLETS.glob("*/expected.yaml")):
        out[folder.parent.name] = yaml.safe_load(folder.read_text(encoding="utf-8")) or {}
    return out


EXPECTED = _expected()


def _fetch(url: str, outlet: str, hint: str) -> RawPage:
    with urllib.request.urlopen(urllib.request.quote(url, safe=":/?=&%,"), timeout=10) as resp:  # noqa: S310
        body = resp.read()
        headers = {k.lower(): v for k, v in resp.headers.items()}
        final = resp.geturl()
    canon = canonical_url(final) or final
    return RawPage(url=canon, final_url=final, outlet=outlet, status=200, headers=headers,
                   body=body, fetched_at=datetime.now(UTC), language_hint=hint)


@pytest.fixture(scope="module")
def pages() -> tuple[list[RawPage], dict[str, dict[str, Any]], dict[str, Any]]:
    """Every expected article and skipped page, fetched once; expectations by URL."""
    with ReplayServer(FIXTURE_OUTLETS) as srv:
        cfgs = {o["name"]: o for o in srv.outlet_configs()}
        fetched, by_url, skipped = [], {}, {}
        for outlet, exp in EXPECTED.items():
            base = srv.base(outlet)
            for a in exp.get("articles") or []:
                page = _fetch(base + a["path"], outlet, cfgs[outlet]["language"])
                fetched.append(page)
                by_url[page.url] = {**a, "outlet": outlet, "base": base}
            for path in exp.get("skipped") or []:
                page = _fetch(base + path, outlet, cfgs[outlet]["language"])
                fetched.append(page)
                skipped[page.url] = path
        data = {"crawl": TEST_CRAWL, "outlets": list(cfgs.values()), "topics": repo_topics()}
    return fetched, by_url, {"config": data, "skipped": skipped}


def _config(data: dict[str, Any], url: str) -> Config:
    return config_from_dict({**data, "database": {"url": url}})


def _process(url: str, data: dict[str, Any], pages: list[RawPage]) -> Database:
    db = Database(url)
    proc = Processor(db, _config(data, url))
    for p in pages:
        proc.process(p)
    proc.settle()
    return db


def _partition(db: Database) -> tuple[set[frozenset[str]], dict[str, str], set[str]]:
    """(stories as sets of article URLs, article URL → folded-into URL, flagged URLs)."""
    with db.transaction() as s:
        groups: dict[int, set[str]] = defaultdict(set)
        for url, sid in s.execute(select(Article.url, Article.story_id)):
            groups[sid].add(url)
        folded = {
            page: art for page, art in s.execute(
                select(Page.url, Article.url).join(Article, Article.id == Page.article_id).where(Page.kind == "duplicate")
            )
        }
        flagged = set(s.scalars(
            select(Article.url).join(TopicMatchRow, TopicMatchRow.article_id == Article.id).where(TopicMatchRow.topic == TOPIC)
        ))
    return {frozenset(g) for g in groups.values()}, folded, flagged


def _stable(page: RawPage) -> tuple[str, str]:
    """A page's place in a shuffled order: outlet and path, not the URL, whose port the
    replay server draws afresh each run (a seed must mean the same order every run)."""
    return page.outlet, urlsplit(page.url).path


def _key(exp: dict[str, Any]) -> str:
    return f"{exp['outlet']}:{exp['path']}"


def test_pipeline_on_the_replay(db_url: str, pages: Any) -> None:
    fetched, by_url, extra = pages
    db = _process(db_url, extra["config"], fetched)
    stories, folded, flagged = _partition(db)
    stored = {u for g in stories for u in g}
    urls = {_key(e): u for u, e in by_url.items()}

    # exactly the expected articles; an outlet's own update is folded into its original
    own_updates = {u for u, e in by_url.items()
                   if e.get("duplicate_of") and e["duplicate_of"].split(":", 1)[0] == e["outlet"]}
    assert stored == set(by_url) - own_updates
    assert {u: urls[by_url[u]["duplicate_of"]] for u in own_updates} == {
        u: a for u, a in folded.items() if u in own_updates}
    assert not stored & set(extra["skipped"])  # no listing, tag or video page

    # the topic: precision and recall 1.0 (a story's articles are judged per article)
    on_topic = {u for u in stored if by_url[u]["on_topic"]}
    assert flagged == on_topic

    # stories: one per event (syndicated copies included), nothing unrelated joined
    def event(u: str) -> str:
        e = by_url[u]
        return e.get("event") or f"solo:{u}"

    by_event: dict[str, set[str]] = defaultdict(set)
    for u in stored:
        by_event[event(u)].add(u)
    for group in stories:
        assert len({event(u) for u in group}) == 1, f"unrelated articles share a story: {sorted(group)}"
    for ev, members in by_event.items():
        if ev.startswith("solo:"):
            continue
        homes = [g for g in stories if members & g]
        same_lang = defaultdict(set)
        for u in members:
            same_lang[by_url[u]["language"]].add(u)
        for lang, urls_l in same_lang.items():  # same language: must meet
            assert any(urls_l <= g for g in homes), f"{ev} ({lang}) split across stories: {homes}"


def test_reprocessing_changes_nothing(tmp_path: Path, pages: Any) -> None:
    fetched, _, extra = pages
    url = f"sqlite:///{tmp_path / 'v.db'}"
    db = _process(url, extra["config"], fetched)

    def snapshot() -> tuple[Any, ...]:
        with db.transaction() as s:
            return (
                sorted(s.execute(select(Article.url, Article.content_hash, Article.versions, Article.story_id)).all()),
                s.scalar(select(func.count(Story.id))),
                s.scalar(select(func.count(TopicMatchRow.id))),
                sorted(s.execute(select(Page.url, Page.kind)).all()),
            )

    before = snapshot()
    proc = Processor(db, _config(extra["config"], url))
    outcomes = {proc.process(p).kind for p in fetched}
    assert outcomes <= {"unchanged", "skipped"}
    report = proc.settle()
    assert report.start is None  # nothing to place, nothing re-examined
    assert snapshot() == before


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_crawl_order_does_not_change_the_result(tmp_path: Path, pages: Any, seed: int) -> None:
    fetched, _, extra = pages
    shuffled = list(fetched)
    random.Random(seed).shuffle(shuffled)
    a = _process(f"sqlite:///{tmp_path / 'a.db'}", extra["config"], fetched)
    b = _process(f"sqlite:///{tmp_path / 'b.db'}", extra["config"], shuffled)
    assert _partition(a) == _partition(b)


def test_runs_that_bring_earlier_reports_later_end_with_the_same_stories(
    tmp_path: Path, pages: Any
) -> None:
    """Three crawls, each storing a random third of the pages: each pass re-examines
    from the earliest new article, and the end is what one crawl makes of them all.
    Each third is many new articles for the few stories known, so each pass matches
    everything again (`settle.idf_drifts`); without that, this order ends with two
    Arabic reports of different events in one story, merged under the first third's IDF."""
    fetched, _, extra = pages
    reference = _partition(_process(f"sqlite:///{tmp_path / 'one.db'}", extra["config"], fetched))
    url = f"sqlite:///{tmp_path / 'three.db'}"
    order = sorted(fetched, key=_stable)
    random.Random(5).shuffle(order)
    thirds = [order[i::3] for i in range(3)]
    db = Database(url)
    for part in thirds:
        proc = Processor(db, _config(extra["config"], url))
        for p in part:
            proc.process(p)
        proc.settle()
    assert _partition(db) == reference


def test_a_mailed_story_keeps_its_articles(tmp_path: Path, pages: Any) -> None:
    """Half the pages, placed and mailed; then the rest: a story already in someone's
    inbox never loses an article, whatever the later pass would rather do."""
    fetched, _, extra = pages
    url = f"sqlite:///{tmp_path / 'v.db'}"
    order = sorted(fetched, key=_stable)
    random.Random(3).shuffle(order)
    db = _process(url, extra["config"], order[::2])
    with db.transaction() as s:
        before = {a: sid for a, sid in s.execute(select(Article.id, Article.story_id))}
        mailed = set(before.values())
        digest = digest_store.create_digest(s, ["a@example.org"], "digest")
        digest_store.mark_digest_sent(s, digest, sorted(mailed), "<m@x>")
    proc = Processor(db, _config(extra["config"], url))
    for p in order[1::2]:
        proc.process(p)
    proc.settle()
    with db.transaction() as s:
        after = {a: sid for a, sid in s.execute(select(Article.id, Article.story_id))}
        assert set(s.scalars(select(Story.id))) >= mailed  # none deleted
    assert {a: after[a] for a in before} == before  # by id: an earlier URL may replace one
    assert None not in after.values()


def test_stories_settle_places_what_a_killed_crawl_left(tmp_path: Path, pages: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A crawl killed before its pass leaves articles without a story: `veille stories
    --settle` places them as the crawl would have."""
    fetched, _, extra = pages
    reference = _partition(_process(f"sqlite:///{tmp_path / 'ref.db'}", extra["config"], fetched))
    url = f"sqlite:///{tmp_path / 'v.db'}"
    db = Database(url)
    proc = Processor(db, _config(extra["config"], url))
    for p in fetched:
        proc.process(p)  # and no settle(): the process died here
    with db.transaction() as s:
        assert set(s.scalars(select(Article.story_id))) == {None}
        originals = s.scalar(select(func.count(Article.id)).where(Article.duplicate_of_id.is_(None)))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**extra["config"], "database": {"url": url}}), encoding="utf-8")
    assert cli.main(["stories", "--settle", "--all", "--json", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert f"{originals} placed" in err  # copies follow their original, uncounted
    assert _partition(db) == reference
    assert len(json.loads(out)) == len(reference[0])


def test_a_long_crawl_places_stories_as_it_goes(tmp_path: Path, pages: Any) -> None:
    """Every SETTLE_EVERY seconds of storing, a story pass: stories show while it runs."""
    from veille.pipeline.process import SETTLE_EVERY

    fetched, _, extra = pages
    url = f"sqlite:///{tmp_path / 'v.db'}"
    db = Database(url)
    proc = Processor(db, _config(extra["config"], url))
    half = len(fetched) // 2
    for p in fetched[:half]:
        proc.process(p)
    start = time.monotonic()
    assert proc.settle_if_due(now=start) is None  # not yet due

    def unplaced() -> int:
        with db.transaction() as s:
            return pass_store.count_unplaced(s)

    waiting = unplaced()
    assert waiting > 0
    report = proc.settle_if_due(now=start + SETTLE_EVERY + 1)
    assert report is not None and report.placed == waiting and unplaced() == 0
    assert proc.settle_if_due(now=start + 2 * SETTLE_EVERY + 2) is None  # nothing stored since
    for p in fetched[half:]:
        proc.process(p)
    proc.settle()
    assert unplaced() == 0


@pytest.mark.parametrize("republishes", [True, False])
def test_an_aggregators_copy_stored_first_yields_to_the_original(
        tmp_path: Path, pages: Any, republishes: bool) -> None:
    """Maghress's copies of two Hespress articles arrive before them. With maghress marked
    `republishes`, Hespress's articles become the originals (the copies point to them);
    without it, the dates (one day apart at most) cannot tell, and arrival order stays."""
    fetched, by_url, extra = pages
    config = {**extra["config"], "outlets": [
        {**o, "republishes": republishes and o["name"] == "maghress"} for o in extra["config"]["outlets"]]}
    copies = [p for p in fetched if p.url in by_url and by_url[p.url].get("duplicate_of")
              and by_url[p.url]["outlet"] == "maghress"]
    assert len(copies) == 2
    order = copies + [p for p in fetched if p not in copies]
    db = _process(f"sqlite:///{tmp_path / 'v.db'}", config, order)
    with db.transaction() as s:
        rows = {a.url: a for a in s.scalars(select(Article))}
    for copy in copies:
        source = by_url[copy.url]["duplicate_of"]
        original = next(u for u, e in by_url.items() if _key(e) == source)
        maghress, hespress = rows[copy.url], rows[original]
        assert maghress.story_id == hespress.story_id is not None
        if republishes:
            assert (maghress.duplicate_of_id, hespress.duplicate_of_id) == (hespress.id, None)
            assert hespress.features and not maghress.features
        else:
            assert (maghress.duplicate_of_id, hespress.duplicate_of_id) == (None, maghress.id)
    assert _partition(db)[0] == _partition(_process(f"sqlite:///{tmp_path / 'ref.db'}", config, fetched))[0]


def test_a_copy_dated_days_before_the_stored_one_is_its_original(tmp_path: Path, pages: Any) -> None:
    from dataclasses import replace

    from tests.replay_pages import fixture_articles

    fetched, _, extra = pages
    url = f"sqlite:///{tmp_path / 'v.db'}"
    db = Database(url)
    proc = Processor(db, _config(extra["config"], url))
    art = next(a for _, _, a in fixture_articles() if isinstance(a, ArticleData) and a.published)
    assert art.published is not None
    late = replace(art, url="http://b.example/copy", outlet="hespress", published=art.published + timedelta(days=3))
    early = replace(art, url="http://a.example/first", outlet="bladi")

    def raw(a: ArticleData) -> RawPage:
        return RawPage(url=a.url, final_url=a.url, outlet=a.outlet, status=200, headers={}, body=b"",
                       fetched_at=datetime.now(UTC))

    assert proc.store(raw(late), late).kind == "new"
    outcome = proc.store(raw(early), early)
    assert (outcome.kind, outcome.reason) == ("new", "original of a copy stored earlier")
    assert proc.changed == {outcome.article_id}  # it takes the copy's story: matched again
    proc.settle()
    with db.transaction() as s:
        rows = {a.url: a for a in s.scalars(select(Article))}
    first, copy = rows["http://a.example/first"], rows["http://b.example/copy"]
    assert (first.duplicate_of_id, copy.duplicate_of_id) == (None, first.id)
    assert first.story_id == copy.story_id is not None
