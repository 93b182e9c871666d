"""Crawl runs and their per-outlet counts: what `veille status` and the daemon read.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from veille.storage.models import CrawlRun, OutletRun
from veille.storage.timestamps import as_utc, utcnow


def start_run(session: Session, kind: str = "crawl") -> int:
    run = CrawlRun(kind=kind, pid=os.getpid(), host=socket.gethostname(), status="running")
    session.add(run)
    session.flush()
    return run.id


@dataclass
class OutletCounts:
    discovered: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    status: str = "ok"  # ok | failing | blocked
    errors: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # pages not stored, by named reason


def save_outlet_counts(session: Session, run_id: int, outlet: str, counts: OutletCounts) -> None:
    row = session.scalar(
        select(OutletRun).where(OutletRun.run_id == run_id, OutletRun.outlet == outlet)
    )
    if row is None:
        row = OutletRun(run_id=run_id, outlet=outlet)
        session.add(row)
    for name in ("discovered", "fetched", "new", "updated", "skipped", "failed", "status"):
        setattr(row, name, getattr(counts, name))
    row.errors = list(counts.errors[:50])


def finish_run(
    session: Session,
    run_id: int,
    status: str,
    errors: Sequence[str] = (),
    message: str | None = None,
) -> None:
    run = session.get(CrawlRun, run_id)
    if run is None:
        return
    run.status, run.finished_at, run.message = status, utcnow(), message
    run.errors = list(errors)[:100]


def mark_abandoned_runs(session: Session, alive: Iterable[int] = ()) -> int:
    """Runs left 'running' by a killed process are closed as interrupted."""
    keep = list(alive)
    stmt = update(CrawlRun).where(CrawlRun.status == "running")
    if keep:
        stmt = stmt.where(CrawlRun.id.not_in(keep))
    result = session.execute(
        stmt.values(status="interrupted", finished_at=utcnow(), message="process ended mid-run")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def last_runs(session: Session, kind: str | None = None, limit: int = 10) -> list[CrawlRun]:
    stmt = select(CrawlRun).options(selectinload(CrawlRun.outlets))
    if kind:
        stmt = stmt.where(CrawlRun.kind == kind)
    return list(session.scalars(stmt.order_by(CrawlRun.started_at.desc()).limit(limit)))


def last_successful_run(session: Session, kind: str = "crawl") -> CrawlRun | None:
    stmt = (
        select(CrawlRun)
        .where(CrawlRun.kind == kind, CrawlRun.status == "ok")
        .order_by(CrawlRun.started_at.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def running_runs(session: Session) -> list[CrawlRun]:
    """Runs still marked running (live, or left behind by a killed process), oldest first."""
    stmt = select(CrawlRun).where(CrawlRun.status == "running").order_by(CrawlRun.started_at)
    return list(session.scalars(stmt))


def close_runs(session: Session, run_ids: Sequence[int], status: str, message: str) -> int:
    """Close exactly these runs, if they are still running; returns how many were closed."""
    if not run_ids:
        return 0
    result = session.execute(
        update(CrawlRun)
        .where(CrawlRun.id.in_(list(run_ids)), CrawlRun.status == "running")
        .values(status=status, finished_at=utcnow(), message=message)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def outlet_history(session: Session, outlet: str, limit: int = 100) -> list[OutletRun]:
    """The outlet's rows in finished crawl runs, newest first (each with its `run` loaded)."""
    from sqlalchemy.orm import contains_eager

    stmt = (
        select(OutletRun)
        .join(CrawlRun, OutletRun.run_id == CrawlRun.id)
        .where(OutletRun.outlet == outlet, CrawlRun.kind == "crawl", CrawlRun.status != "running")
        .options(contains_eager(OutletRun.run))
        .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def outlet_last_success(session: Session) -> dict[str, datetime]:
    """Per outlet, when the last crawl that reached it without failing started."""
    stmt = (
        select(OutletRun.outlet, func.max(CrawlRun.started_at))
        .join(CrawlRun, OutletRun.run_id == CrawlRun.id)
        .where(OutletRun.status == "ok", CrawlRun.kind == "crawl", CrawlRun.status != "running")
        .group_by(OutletRun.outlet)
    )
    out: dict[str, datetime] = {}
    for name, when in session.execute(stmt):
        if when is not None:
            out[name] = as_utc(when)
    return out


def prune_runs(session: Session, before: datetime, keep: int = 0) -> int:
    """Delete finished runs (crawls and digests) started before `before`, with their
    per-outlet rows; `keep` spares this run. Returns how many runs went.

    The history `veille status` reads stays bounded (a run every 30 minutes is 17,520 a
    year, times the outlets in outlet_runs). Outlet rows go first in one statement: the
    cascade would look each run's rows up without an index on run_id.
    """
    old = (select(CrawlRun.id)
           .where(CrawlRun.started_at < before, CrawlRun.status != "running", CrawlRun.id != keep))
    session.execute(delete(OutletRun).where(OutletRun.run_id.in_(old)))
    result = session.execute(delete(CrawlRun).where(CrawlRun.id.in_(old)))
    return int(getattr(result, "rowcount", 0) or 0)
