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

from sqlalchemy import event

from tests.conftest import repo_topics
from tests.replay_pages import fixture_articles
from veille.pipeline.config import config_from_dict
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


def test_a_routine_crawl_reads_by_index_only(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    url = f"sqlite:///{path}"
    outlets = [{"name": n, "url": f"https://{n}.example/", "language": "fr"} for n in ("bladi", "hespress")]
    cfg = config_from_dict({"database": {"url": url}, "outlets": outlets, "topics": repo_topics()})
    arts = [a for _, _, a in fixture_articles() if isinstance(a, Article) and a.published]
    assert len(arts) >= 12
    db = Database(url)
    archive = Processor(db, cfg)
    for i, a in enumerate(arts[6:]):  # the archive: older articles, placed in stories
        a = replace(a, url=f"https://bladi.example/old/{i}", outlet="bladi",
                    published=a.published - timedelta(days=3))  # type: ignore[operator]
        archive.store(_raw(a), a)
    archive.settle()  # no ANALYZE: the planner then takes every table for a big one

    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                executemany: bool) -> None:
        sent.append((statement, parameters[0] if executemany and parameters else parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    crawl = Processor(db, cfg)
    fresh = [replace(a, url=f"https://bladi.example/new/{i}", outlet="bladi") for i, a in enumerate(arts[:6])]
    kinds = [crawl.store(_raw(a), a).kind for a in fresh]
    copy = replace(fresh[0], url="https://hespress.example/copy", outlet="hespress",
                   text=fresh[0].text + "\n\nLire aussi notre dossier.")
    kinds.append(crawl.store(_raw(copy), copy).kind)
    update = replace(fresh[1], text=fresh[1].text + "\n\nMise à jour : un paragraphe de plus.")
    kinds.append(crawl.store(_raw(update), update).kind)
    kinds.append(crawl.store(_raw(fresh[2]), fresh[2]).kind)
    report = crawl.settle()
    event.remove(db.engine, "before_cursor_execute", capture)
    db.dispose()
    assert {"new", "duplicate", "updated", "unchanged"} <= set(kinds)
    assert report.placed >= 5

    plans = _plans(path, sent)
    assert len(plans) > 20  # the store, the pass and the pruning were all seen
    unbounded = {}
    for sql, lines in plans.items():
        limited = " LIMIT " in sql
        sorts = any("USE TEMP B-TREE" in line for line in lines)
        bad = [line for line in lines
               if (m := SCAN.match(line)) and m.group(1) not in SMALL and not (limited and not sorts)
               or (m := WALK.match(line)) and m.group(1) not in SMALL
               or "USE TEMP B-TREE" in line and limited]
        if bad:
            unbounded[" ".join(sql.split())[:200]] = bad
    assert not unbounded, unbounded
