"""Run history stays bounded (issue 16): `RunRecord.tidy` forgets runs older than
`database.keep_runs_days` with their outlet rows, keeps the rest, and refreshes the
planner's statistics — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from veille.storage import crawl_runs as run_store
from veille.storage.db import Database
from veille.storage.models import CrawlRun, OutletRun
from veille.storage.runs import RunRecord
from veille.storage.timestamps import utcnow


def _run(db: Database, age_days: float, status: str = "ok", kind: str = "crawl") -> int:
    with db.transaction() as s:
        run_id = run_store.start_run(s, kind)
        run_store.save_outlet_counts(s, run_id, "le360", run_store.OutletCounts(fetched=3))
        run = s.get(CrawlRun, run_id)
        assert run is not None
        run.started_at, run.status = utcnow() - timedelta(days=age_days), status
    return run_id


def test_tidy_forgets_old_runs_and_their_outlet_rows(db: Database) -> None:
    old_crawl, old_digest = _run(db, 40), _run(db, 35, kind="digest")
    stuck = _run(db, 50, status="running")  # a live (or abandoned) run is closed elsewhere
    recent = _run(db, 2)
    record = RunRecord.start(db)
    with db.transaction() as s:  # this run itself started long ago (a crawl may run for hours)
        current = s.get(CrawlRun, record.id)
        assert current is not None
        current.started_at = utcnow() - timedelta(days=45)
    record.finish({}, "ok", None)

    assert record.tidy(30) is None
    with db.transaction() as s:
        left = set(s.scalars(select(CrawlRun.id)))
        assert left == {stuck, recent, record.id}
        assert old_crawl not in left and old_digest not in left
        assert set(s.scalars(select(OutletRun.run_id))) == {stuck, recent}
        assert run_store.outlet_last_success(s).keys() == {"le360"}
    assert record.tidy(30) is None  # nothing more to forget, no error


def test_keep_days_zero_keeps_everything(db: Database) -> None:
    _run(db, 4000)
    record = RunRecord.start(db)
    record.finish({}, "ok", None)
    assert record.tidy(0) is None
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(CrawlRun)) == 2
