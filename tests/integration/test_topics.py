"""`veille topics test` on the replay: what adding and removing a term changes.

One outlet of the replay (chamalpress: French and Arabic, on- and off-topic stories) is
crawled for real into a SQLite file with the repository's topic and a narrow one,
`hammouchi`. The edit swaps the Arabic spelling حموشي for "dgsn": the back-test must
drop the Arabic story only حموشي matched and add the DGSN stories, and its prediction
must be exactly what a crawl with the edited rule stores (the oracle: the same outlet
crawled again, into another database, with the edited config). The storage read behind
it streams stories whole on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FIXTURE_OUTLETS, replay_config, write_config
from veille.cli import main
from veille.crawl import run_crawl_subprocess
from veille.crawler.replay import ReplayServer
from veille.storage import pages as page_store
from veille.storage.archive import StoredMatch, archived_stories
from veille.storage.db import Database
from veille.storage.models import Article, Story, TopicMatchRow

OUTLET = "chamalpress"
BEFORE = {"name": "hammouchi", "require": [["hammouchi", "حموشي"]]}
AFTER = {"name": "hammouchi", "require": [["hammouchi", "dgsn"]]}  # حموشي removed, dgsn added
ARABIC = "حموشي يبحث مع وفد أمني فرنسي تعزيز التعاون في مكافحة الإرهاب"
DGSN = "La DGSN ouvre un concours pour recruter 3 000 gardiens de la paix"


@dataclass
class Replayed:
    config: Path  # what was crawled with
    edited: Path  # the same, the hammouchi rule edited
    db_url: str
    oracle_url: str  # the outlet crawled with the edited config


def with_topic(data: dict[str, Any], topic: dict[str, Any], db: Path) -> dict[str, Any]:
    return {**data, "database": {"url": f"sqlite:///{db}"}, "topics": [*data["topics"], topic]}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    tmp = tmp_path_factory.mktemp("topics")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VEILLE_DATABASE_URL", raising=False)
        mp.delenv("VEILLE_CONFIG", raising=False)
        with ReplayServer(FIXTURE_OUTLETS, outlets=[OUTLET]) as srv:
            data = replay_config(srv, tmp / "unused.db", outlets=[OUTLET])
            config = write_config(tmp / "config.yaml", with_topic(data, BEFORE, tmp / "veille.db"))
            edited = write_config(tmp / "edited.yaml", with_topic(data, AFTER, tmp / "veille.db"))
            oracle = write_config(tmp / "oracle.yaml", with_topic(data, AFTER, tmp / "oracle.db"))
            # the timeout is a safety net against a hung test, never an assertion
            assert run_crawl_subprocess(config, timeout=600) == 0
            assert run_crawl_subprocess(oracle, timeout=600) == 0
        yield Replayed(config, edited, f"sqlite:///{tmp / 'veille.db'}", f"sqlite:///{tmp / 'oracle.db'}")


def veille(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def changes(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> list[dict[str, Any]]:
    code, out, err = veille(capsys, "topics", "test", "--config", str(config), "--json", *args)
    assert code == 0, err
    result: list[dict[str, Any]] = json.loads(out)
    return result


def flagged(db_url: str, topic: str) -> set[str]:
    """Titles of the stories an original of which is stored flagged for `topic`."""
    db = Database(db_url)
    try:
        with db.transaction() as s:
            stmt = (select(Story.title).join(Article, Article.story_id == Story.id)
                    .join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
                    .where(TopicMatchRow.topic == topic, Article.duplicate_of_id.is_(None)))
            return set(s.scalars(stmt))
    finally:
        db.dispose()


def test_the_rule_as_crawled_changes_nothing(replayed: Replayed, capsys: pytest.CaptureFixture[str]) -> None:
    assert flagged(replayed.db_url, "maroc-france-securite") and flagged(replayed.db_url, "hammouchi")
    assert changes(capsys, replayed.config) == []
    code, out, _ = veille(capsys, "topics", "test", "--config", str(replayed.config))
    assert code == 0
    kept = len(flagged(replayed.db_url, "hammouchi"))
    assert f"hammouchi: would add 0 · would drop 0 · unchanged {kept} (of 13 stories in the archive)" in out


def test_adding_and_removing_a_term_shows_exactly_what_it_changes(
        replayed: Replayed, capsys: pytest.CaptureFixture[str]) -> None:
    found = changes(capsys, replayed.edited)
    assert {c["topic"] for c in found} == {"hammouchi"}, found  # the other topic was not edited
    adds = {c["title"]: c for c in found if c["change"] == "add"}
    drops = {c["title"]: c for c in found if c["change"] == "drop"}
    assert DGSN in adds and ARABIC in drops
    for c in adds.values():  # the added term's stories, with the term in the reason
        assert "dgsn" in {m["term"] for m in c["matched"]} and "hammouchi" not in c["reason"]
        assert c["reason"].startswith("matches now, score ") and "dgsn (" in c["reason"]
    for c in drops.values():  # the removed term's stories: nothing of the group is left
        assert c["reason"].startswith("no term of require group 1/1 (hammouchi, dgsn); no longer counted: حموشي;")
        assert c["lost"] == ["حموشي"]
        assert c["missing_groups"] == [1] and c["stored_score"] > 0
    # what a crawl with the edited rule stores is what the back-test predicted
    before, after = flagged(replayed.db_url, "hammouchi"), flagged(replayed.oracle_url, "hammouchi")
    assert (set(adds), set(drops)) == (after - before, before - after)


def test_the_table_groups_counts_then_changes_per_topic(
        replayed: Replayed, capsys: pytest.CaptureFixture[str]) -> None:
    found = changes(capsys, replayed.edited)
    n_add = sum(c["change"] == "add" for c in found)
    n_drop = sum(c["change"] == "drop" for c in found)
    code, out, _ = veille(capsys, "topics", "test", "--config", str(replayed.edited))
    assert code == 0
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("hammouchi: "))
    assert lines[head].startswith(f"hammouchi: would add {n_add} · would drop {n_drop} · unchanged ")
    assert any(line.startswith("maroc-france-securite: would add 0 · would drop 0") for line in lines[:head])
    table = "\n".join(lines[head + 1:])
    for c in found:
        assert f" {c['story_id']} " in table and c["date"][:10] in table


def test_topic_and_since_narrow_the_test(replayed: Replayed, capsys: pytest.CaptureFixture[str]) -> None:
    assert changes(capsys, replayed.edited, "--topic", "maroc-france-securite") == []
    everything = changes(capsys, replayed.edited, "--topic", "hammouchi")
    since = "2025-10-15"  # after the Arabic story, before the DGSN one
    later = changes(capsys, replayed.edited, "--since", since)
    assert later == [c for c in everything if c["date"] >= since]
    assert {c["title"] for c in later} >= {DGSN} and ARABIC not in {c["title"] for c in later}


def test_an_unknown_topic_is_one_line_and_exit_2(replayed: Replayed, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = veille(capsys, "topics", "test", "--config", str(replayed.edited), "--topic", "nope")
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"veille: error: {replayed.edited}: no topic named 'nope'"]


# ------------------------------------------------------------ the storage read, both backends


def test_archived_stories_streams_whole_stories_of_originals(db: Database) -> None:
    day = datetime(2025, 1, 10, 8, tzinfo=UTC)
    with db.transaction() as s:
        outlet = page_store.ensure_outlet(s, "o", "https://o.example/", "fr")

        def article(n: int, story: Story | None, topics: dict[str, float],
                    copy_of: Article | None = None) -> Article:
            art = Article(url=f"https://o.example/{n}", outlet_id=outlet, story=story, title=f"t{n}",
                          text=f"text {n}", content_hash=str(n), duplicate_of_id=copy_of.id if copy_of else None)
            art.topics.extend(TopicMatchRow(topic=t, score=v, matched=[{"term": "maroc", "field": "title",
                              "count": 1}] if v > 5 else []) for t, v in topics.items())
            s.add(art)
            s.flush()
            return art

        dated = Story(title="dated", published=day, published_offset=60, features=[])
        undated = Story(title="undated", published=None, first_seen=day + timedelta(days=50), features=[])
        old = Story(title="old", published=day - timedelta(days=60), features=[])
        s.add_all([dated, undated, old])
        first = article(1, dated, {"secu": 7.0})
        article(2, dated, {"other": 2.0})
        article(3, dated, {"secu": 9.0}, copy_of=first)  # a copy: left out
        article(4, undated, {})
        article(5, old, {"secu": 3.0})
        article(6, None, {"secu": 1.0})  # not placed in a story yet: left out
        ids = (dated.id, undated.id, old.id)

    with db.transaction() as s:
        stories = list(archived_stories(s, batch=1))  # a story spans several batches
        assert [st.id for st in stories] == sorted(ids)
        by_title = {st.title: st for st in stories}
        assert [(a.title, a.topics) for a in by_title["dated"].articles] == [
            ("t1", {"secu": StoredMatch(7.0, ("maroc",))}), ("t2", {"other": StoredMatch(2.0, ())})]
        assert by_title["dated"].date == day and by_title["dated"].date.utcoffset() == timedelta(hours=1)
        assert by_title["undated"].date == day + timedelta(days=50)  # first seen stands in
        only = list(archived_stories(s, day - timedelta(days=1), topics=["secu"], batch=2))
        assert {st.title for st in only} == {"dated", "undated"}  # the story's date decides
        assert [list(a.topics) for st in only for a in st.articles] == [["secu"], [], []]
