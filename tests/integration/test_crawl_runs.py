"""storage/crawl_runs on both backends (SQLite file, PostgreSQL via the `db` fixture).

What `veille status`, the daemon and the digest read from the run records: runs newest
or oldest first as each caller needs, only finished crawls in an outlet's history, the
last success per outlet, runs closed exactly as asked (never a finished one), and the
errors kept bounded. Runs get explicit start times so the order never rests on the clock.
tests/integration/test_storage.py has the basic record (counts upserted, finish_run).
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from veille.storage import crawl_runs as run_store
from veille.storage.crawl_runs import OutletCounts
from veille.storage.db import Database
from veille.storage.models import CrawlRun

T0 = datetime(2025, 6, 1, 8, tzinfo=UTC)


def run(db: Database, hours: int, status: str = "ok", kind: str = "crawl",
        outlets: dict[str, str] | None = None) -> int:
    """A run started T0 + `hours`, ended with `status`, with each outlet's status."""
    with db.transaction() as s:
        run_id = run_store.start_run(s, kind=kind)
        s.execute(update(CrawlRun).where(CrawlRun.id == run_id).values(started_at=T0 + timedelta(hours=hours)))
        for name, outlet_status in (outlets or {}).items():
            run_store.save_outlet_counts(s, run_id, name, OutletCounts(fetched=hours, status=outlet_status))
        if status != "running":
            run_store.finish_run(s, run_id, status)
    return run_id


def statuses(db: Database) -> dict[int, tuple[str, str | None]]:
    with db.transaction() as s:
        return {r.id: (r.status, r.message) for r in run_store.last_runs(s, limit=100)}


def test_a_run_records_who_runs_it(db: Database) -> None:
    with db.transaction() as s:
        run_id = run_store.start_run(s, kind="digest")
    with db.transaction() as s:
        row = s.get(CrawlRun, run_id)
        assert row is not None
        assert (row.kind, row.status, row.pid, row.host) == ("digest", "running", os.getpid(), socket.gethostname())


def test_errors_are_kept_bounded(db: Database) -> None:
    with db.transaction() as s:
        run_id = run_store.start_run(s)
        run_store.save_outlet_counts(s, run_id, "bladi", OutletCounts(failed=80, errors=[f"u{i}: 500" for i in range(80)]))
        run_store.finish_run(s, run_id, "ok", errors=[f"e{i}" for i in range(150)], message="done")
    with db.transaction() as s:
        (row,) = run_store.last_runs(s)
        assert len(row.errors) == 100 and row.errors[0] == "e0" and row.message == "done"
        (outlet,) = row.outlets
        assert len(outlet.errors) == 50 and outlet.errors[-1] == "u49: 500" and outlet.failed == 80


def test_last_runs_newest_first_by_kind_and_bounded(db: Database) -> None:
    crawls = [run(db, h) for h in (1, 3, 2)]
    digest = run(db, 4, kind="digest")
    with db.transaction() as s:
        assert [r.id for r in run_store.last_runs(s)] == [digest, crawls[1], crawls[2], crawls[0]]
        assert [r.id for r in run_store.last_runs(s, kind="crawl", limit=2)] == [crawls[1], crawls[2]]
        run_store.finish_run(s, 10_000, "ok")  # no such run: nothing happens


def test_the_last_successful_run_is_the_newest_ok_one_of_its_kind(db: Database) -> None:
    with db.transaction() as s:
        assert run_store.last_successful_run(s) is None
    ok = run(db, 1)
    run(db, 2, status="failed")
    run(db, 3, status="running")
    digest = run(db, 4, kind="digest")
    with db.transaction() as s:
        found = run_store.last_successful_run(s)
        assert found is not None and found.id == ok
        found = run_store.last_successful_run(s, kind="digest")
        assert found is not None and found.id == digest


def test_running_runs_are_listed_oldest_first(db: Database) -> None:
    late, early = run(db, 5, status="running"), run(db, 1, status="running")
    run(db, 0)
    with db.transaction() as s:
        assert [r.id for r in run_store.running_runs(s)] == [early, late]


def test_close_runs_closes_exactly_those_still_running(db: Database) -> None:
    a, b, c = run(db, 1, status="running"), run(db, 2, status="running"), run(db, 3, status="running")
    done = run(db, 4, status="ok")
    with db.transaction() as s:
        assert run_store.close_runs(s, [], "interrupted", "x") == 0
        assert run_store.close_runs(s, [a, b, done], "interrupted", "stopped by the daemon (timeout)") == 2
    got = statuses(db)
    assert got[a] == got[b] == ("interrupted", "stopped by the daemon (timeout)")
    assert got[c] == ("running", None) and got[done] == ("ok", None)
    with db.transaction() as s:
        assert {r.id for r in run_store.last_runs(s) if r.finished_at is None} == {c}


def test_runs_left_running_by_a_killed_process_are_all_interrupted(db: Database) -> None:
    left = [run(db, h, status="running") for h in (1, 2)]
    done = run(db, 3, status="failed")
    with db.transaction() as s:
        assert run_store.mark_abandoned_runs(s) == 2
    got = statuses(db)
    assert all(got[r] == ("interrupted", "process ended mid-run") for r in left)
    assert got[done] == ("failed", None)


def test_an_outlets_history_is_its_finished_crawls_newest_first(db: Database) -> None:
    first = run(db, 1, outlets={"bladi": "ok", "le360": "blocked"})
    second = run(db, 2, status="failed", outlets={"bladi": "failing"})
    run(db, 3, status="running", outlets={"bladi": "ok"})  # not finished: not history yet
    run(db, 4, kind="digest", outlets={"bladi": "ok"})
    third = run(db, 5, outlets={"bladi": "ok"})
    with db.transaction() as s:
        history = run_store.outlet_history(s, "bladi")
        assert [(o.run.id, o.status) for o in history] == [(third, "ok"), (second, "failing"), (first, "ok")]
        assert [o.run_id for o in run_store.outlet_history(s, "bladi", limit=1)] == [third]
        assert [o.run_id for o in run_store.outlet_history(s, "le360")] == [first]
        assert run_store.outlet_history(s, "unknown") == []


def test_each_outlets_last_success_is_when_that_crawl_started(db: Database) -> None:
    run(db, 1, outlets={"bladi": "ok", "le360": "ok", "hespress": "blocked"})
    run(db, 2, status="failed", outlets={"bladi": "ok", "le360": "failing"})  # the run failed, bladi did not
    run(db, 3, status="running", outlets={"bladi": "ok", "le360": "ok"})  # still running
    with db.transaction() as s:
        last = run_store.outlet_last_success(s)
    assert last == {"bladi": T0 + timedelta(hours=2), "le360": T0 + timedelta(hours=1)}
    assert all(when.tzinfo is not None and when.utcoffset() == timedelta(0) for when in last.values())
