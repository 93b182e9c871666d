"""Every statement of a routine crawl finds its rows by an index, on SQLite.

A routine crawl (pages stored one by one: new originals, a copy, an update, a page seen
before; then the story pass and the duplicate index's pruning) runs on a database that
already holds articles; each statement it sent is then explained (EXPLAIN QUERY PLAN)
with the parameters it was sent with, the planner taking every table for a big one (no
ANALYZE). None may read a whole table of the archive (`SCAN articles`, unless it stops
at its first rows: LIMIT without a sort) nor sort every row it found to keep a few
(`USE TEMP B-TREE` with a LIMIT), nor walk a table in id order until a row fits (a bare
`SEARCH articles` of min/max): their cost follows the pages stored, not the archive.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from tests.conftest import repo_topics
from tests.replay_pages import fixture_articles
from veille.pipeline.config import Config, config_from_dict
from veille.pipeline.process import Processor
from veille.pipeline.types import Article, RawPage
from veille.storage.db import Database

# tables that stay small whatever the archive: one row per configured outlet, the schema's
# revision, one row per feed
SMALL = {"outlets", "alembic_version", "feed_state"}
SCAN = re.compile(r"^SCAN (\w+)")
WALK = re.compile(r"^SEARCH (\w+)$")  # no index, no key: rows read in rowid order until one fits


def _raw(a: Article) -> RawPage:
    return RawPage(url=a.url, final_url=a.url, outlet=a.outlet, status=200, headers={}, body=b"",
                   fetched_at=datetime.now(UTC))


def _plans(path: Path, statements: list[tuple[str, Any]]) -> dict[str, list[str]]:
    """Each explainable statement → its plan's lines."""
    conn = sqlite3.connect(path)
    out: dict[str, list[str]] = {}
    try:
        for sql, params in statements:
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in {"SELECT", "UPDATE", "DELETE", "INSERT", "WITH"} or sql in out:
                continue
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            out[sql] = [r[-1] for r in rows]
    finally:
        conn.close()
    return out


def _unbounded(plans: dict[str, list[str]], small: set[str] = SMALL) -> dict[str, list[str]]:
    """The statements whose plan reads a whole table, walks one, or sorts for a LIMIT."""
    unbounded = {}
    for sql, lines in plans.items():
        limited = " LIMIT " in sql
        sorts = any("USE TEMP B-TREE" in line for line in lines)
        bad = [line for line in lines
               if (m := SCAN.match(line)) and m.group(1) not in small and not (limited and not sorts)
               or (m := WALK.match(line)) and m.group(1) not in small
               or "USE TEMP B-TREE" in line and limited]
        if bad:
            unbounded[" ".join(sql.split())[:200]] = bad
    return unbounded


class Recorder:
    """Every statement sent to `db` while recording, with its parameters."""

    def __init__(self, db: Database) -> None:
        self.db, self.sent = db, []  # type: list[tuple[str, Any]]

    def _capture(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                 executemany: bool) -> None:
        self.sent.append((statement, parameters[0] if executemany and parameters else parameters))

    def __enter__(self) -> Recorder:
        event.listen(self.db.engine, "before_cursor_execute", self._capture)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._capture)


def _archive(tmp_path: Path, **extra: Any) -> tuple[Path, Database, Config, list[Article]]:
    """A database holding older articles of two outlets, placed in stories (no ANALYZE:
    the planner then takes every table for a big one), and the fresher articles left."""
    path = tmp_path / "v.db"
    url = f"sqlite:///{path}"
    outlets = [{"name": n, "url": f"https://{n}.example/", "language": "fr"} for n in ("bladi", "hespress")]
    cfg = config_from_dict({"database": {"url": url}, "outlets": outlets, "topics": repo_topics(), **extra})
    arts = [a for _, _, a in fixture_articles() if isinstance(a, Article) and a.published]
    assert len(arts) >= 12
    db = Database(url)
    archive = Processor(db, cfg)
    for i, a in enumerate(arts[6:]):  # the archive: older articles, placed in stories
        a = replace(a, url=f"https://bladi.example/old/{i}", outlet="bladi",
                    published=a.published - timedelta(days=3))  # type: ignore[operator]
        archive.store(_raw(a), a)
    archive.settle()
    return path, db, cfg, arts


def test_a_routine_crawl_reads_by_index_only(tmp_path: Path) -> None:
    path, db, cfg, arts = _archive(tmp_path)
    crawl = Processor(db, cfg)
    with Recorder(db) as rec:
        fresh = [replace(a, url=f"https://bladi.example/new/{i}", outlet="bladi") for i, a in enumerate(arts[:6])]
        kinds = [crawl.store(_raw(a), a).kind for a in fresh]
        copy = replace(fresh[0], url="https://hespress.example/copy", outlet="hespress",
                       text=fresh[0].text + "\n\nLire aussi notre dossier.")
        kinds.append(crawl.store(_raw(copy), copy).kind)
        update = replace(fresh[1], text=fresh[1].text + "\n\nMise à jour : un paragraphe de plus.")
        kinds.append(crawl.store(_raw(update), update).kind)
        kinds.append(crawl.store(_raw(fresh[2]), fresh[2]).kind)
        report = crawl.settle()
    db.dispose()
    assert {"new", "duplicate", "updated", "unchanged"} <= set(kinds)
    assert report.placed >= 5

    plans = _plans(path, rec.sent)
    assert len(plans) > 20  # the store, the pass and the pruning were all seen
    assert not _unbounded(plans), _unbounded(plans)


# crawl_runs and outlet_runs are kept for `database.keep_runs_days` (storage.crawl_runs):
# they follow the retention, not the archive
RUNS = {"crawl_runs", "outlet_runs"}


def test_the_reading_commands_and_a_crawls_template_reads_follow_the_new_work(tmp_path: Path) -> None:
    """`veille status`, the digest (after one was sent: the look-back starts from it) and
    the template evidence a crawl loads per outlet read by index, none a whole table."""
    from veille.digest import build_digest
    from veille.pipeline import learn
    from veille.status import collect_status
    from veille.storage import digests as digest_store
    from veille.storage.models import Story

    to = ["veille@example.org"]
    topics = [t["name"] for t in repo_topics()]
    path, db, cfg, arts = _archive(tmp_path, digest={"topics": topics, "to": to, "developing": True})
    with db.transaction() as s:  # a digest sent to the list, carrying every story
        sent = digest_store.create_digest(s, to, "hier")
        digest_store.mark_digest_sent(s, sent, list(s.scalars(select(Story.id))), "<m@example.org>")
    crawl = Processor(db, cfg)
    for i, a in enumerate(arts[:6]):
        crawl.store(_raw(a), replace(a, url=f"https://bladi.example/new/{i}", outlet="bladi"))
    crawl.settle()

    with Recorder(db) as rec:
        status = collect_status(db, cfg)
        draft = build_digest(db, cfg)
        with db.transaction() as s:  # what the handover asks of the stories it is about to mail
            digest_store.unsent_story_ids(s, topics, to, None, among=draft.story_ids or [1])
        evidence = learn.load(db, "bladi")
        evidence.learn({"a line no page of the archive carried"}, "")
        evidence.snapshot()
    db.dispose()
    assert {o["name"]: o["has_articles"] for o in status["outlets"]} == {"bladi": True, "hespress": False}
    assert draft.story_ids  # the new stories are found from the digest sent before them
    assert evidence.pages > 0

    plans = _plans(path, rec.sent)
    assert any("digest_items" in sql for sql in plans) and any("template_lines" in sql for sql in plans)
    # an outlet's lines are read by how many pages carried them (the template's), or by
    # fingerprint (those a page carried), never all of the outlet's (up to 20,000 rows)
    lines = {sql: plan for sql, plan in plans.items() if re.match(r"SELECT template_lines\.fingerprint", sql)}
    assert len(lines) == 2 and all(
        any("(outlet_id=? AND pages>?)" in p or "(outlet_id=? AND fingerprint=?)" in p for p in plan)
        for plan in lines.values()), lines
    bad = _unbounded(plans, SMALL | RUNS)
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())
