"""`veille run`: the crawl and digest schedules, each job run as a child process.

A crawl is exactly `veille crawl --config PATH` started by the daemon, so it takes the
same crawl lock as a crawl started by hand or by cron (exit code 3: someone else is
crawling, the tick is skipped). Child processes keep the daemon's own memory flat and let
a wall-clock limit stop a stuck crawl: SIGTERM (Scrapy closes gracefully, in-flight
articles commit), then SIGKILL after a grace period. SIGTERM/SIGINT to the daemon stops
scheduling, forwards SIGTERM to the running child and exits 0 within 30 seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from veille.child import Child
from veille.cli import EXIT_LOCKED
from veille.pipeline.config import Config, parse_schedule
from veille.procs import process_alive
from veille.storage import crawl_runs as run_store
from veille.storage.db import Database, describe
from veille.storage.lock import LockHeld, crawl_lock
from veille.storage.models import CrawlRun

log = logging.getLogger(__name__)

STOP_GRACE = 25.0  # seconds a child gets between SIGTERM and SIGKILL
# The crawl closes itself at crawl.wall_clock_limit (Scrapy's CLOSESPIDER_TIMEOUT); the
# daemon's limit, this much later, is for a crawl stuck beyond that.
LIMIT_SLACK = 60.0
DIGEST_LIMIT = 600.0  # wall-clock limit of a digest child, seconds


def make_trigger(spec: str, timezone: str) -> BaseTrigger:
    """An APScheduler trigger for a schedule string: 5-field cron or an interval (`15m`)."""
    parsed = parse_schedule(spec)
    if isinstance(parsed, timedelta):
        return IntervalTrigger(seconds=parsed.total_seconds(), timezone=ZoneInfo(timezone))
    return CronTrigger.from_crontab(parsed, timezone=ZoneInfo(timezone))


def schedule_period(spec: str, timezone: str, now: datetime | None = None) -> timedelta:
    """The time between two runs: the interval, or the gap between a cron's next two fires."""
    parsed = parse_schedule(spec)
    if isinstance(parsed, timedelta):
        return parsed
    trigger = make_trigger(spec, timezone)
    now = now or datetime.now(ZoneInfo(timezone))
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first) if first else None
    return (second - first) if first and second else timedelta(days=1)


def needs_catch_up(last_ok: datetime | None, period: timedelta, now: datetime) -> bool:
    """True when no crawl succeeded within one period (or ever): crawl at once on start."""
    return last_ok is None or now - last_ok > period


# ---------------------------------------------------------------- abandoned runs


def _lock_free(url: str) -> bool:
    try:
        with crawl_lock(url):
            return True
    except LockHeld:
        return False


def close_abandoned_runs(db: Database, *, holding_lock: bool = False, shared_queue: bool = False,
                         stale_after: timedelta = timedelta(hours=1)) -> int:
    """Close as interrupted the runs left "running" by processes that are gone.

    A run of this host is abandoned when its pid is dead (or reused). A crawl of another
    host is abandoned when nobody holds the crawl lock (`holding_lock`: the caller holds
    it, e.g. `veille crawl` before it starts) — unless crawls share a queue
    (`shared_queue`), whose workers run without that lock: then, like a digest of another
    host, only when older than `stale_after`. Returns how many runs were closed.
    """
    host, now = socket.gethostname(), datetime.now(UTC)
    with db.transaction() as s:
        running = run_store.running_runs(s)
    dead: list[int] = []
    lock_free: bool | None = None
    for run in running:
        if run.host == host:
            gone = not process_alive(run.pid, run.started_at)
        elif run.kind == "crawl" and not shared_queue:
            if lock_free is None:
                lock_free = holding_lock or _lock_free(db.url)
            gone = lock_free
        else:
            gone = now - run.started_at > stale_after
        if gone:
            dead.append(run.id)
    if not dead:
        return 0
    with db.transaction() as s:
        closed = run_store.close_runs(s, dead, "interrupted", "process ended mid-run")
    if closed:
        log.warning("closed %d run(s) left running by a dead process: %s", closed, dead)
    return closed


# ---------------------------------------------------------------- child processes


def _find_run(db: Database, kind: str, child: Child) -> CrawlRun | None:
    """The run the child recorded (same pid and host, started after the child)."""
    host = socket.gethostname()
    since = child.started - timedelta(seconds=1)
    with db.transaction() as s:
        for run in run_store.last_runs(s, kind=kind, limit=10):
            if run.pid == child.pid and run.host == host and run.started_at >= since:
                return run
    return None


# ---------------------------------------------------------------- the daemon


class Daemon:
    """The scheduler, its two jobs and the running children."""

    def __init__(self, cfg: Config, config_path: str, db: Database,
                 stopping: threading.Event | None = None) -> None:
        self.cfg, self.config_path, self.db = cfg, config_path, db
        self.tz = ZoneInfo(cfg.schedule.timezone)
        self.stopping = stopping or threading.Event()
        self._lock = threading.Condition()
        self._children: dict[str, Child] = {}
        self._active = 0
        self.scheduler = BackgroundScheduler(
            timezone=self.tz, job_defaults={"max_instances": 1, "coalesce": True}
        )

    def argv(self, command: str) -> list[str]:
        verbose = ["-v"] if logging.getLogger().isEnabledFor(logging.DEBUG) else []
        return [sys.executable, "-m", "veille.cli", command, "--config", self.config_path,
                "--log-format", "json", *verbose]

    # jobs ------------------------------------------------------------------------------
    def crawl_job(self) -> None:
        self._run_job("crawl", self.argv("crawl"), self.cfg.crawl.wall_clock_limit + LIMIT_SLACK)

    def digest_job(self) -> None:
        # the digest ends itself at smtp.deadline; the limit is for one stuck beyond that
        self._run_job("digest", self.argv("digest"),
                      max(DIGEST_LIMIT, self.cfg.digest.smtp.deadline + LIMIT_SLACK))

    def _run_job(self, kind: str, argv: list[str], limit: float) -> None:
        with self._lock:
            if self.stopping.is_set():
                return
            try:
                child = Child(kind, argv)
            except OSError as exc:
                log.error("%s: cannot start %s (%s)", kind, argv[0], exc, extra={"job": kind})
                return
            self._children[kind] = child
            self._active += 1
        try:
            log.info("%s started (pid %d)", kind, child.pid, extra={"job": kind, "child_pid": child.pid})
            t0 = time.monotonic()
            code = child.wait(limit)
            reason = "daemon stopping"
            if code is None:
                reason = f"wall-clock limit of {limit:.0f}s"
                log.warning("%s (pid %d) exceeded the %s", kind, child.pid, reason, extra={"job": kind})
                child.terminate()
                child.stop(time.monotonic() + STOP_GRACE)
                code = child.wait(10)
            self._finished(kind, child, code, time.monotonic() - t0, reason)
        except Exception:  # noqa: BLE001 - a job's failure must never kill the daemon
            log.exception("%s job failed", kind, extra={"job": kind})
        finally:
            with self._lock:
                self._children.pop(kind, None)
                self._active -= 1
                self._lock.notify_all()

    def _finished(self, kind: str, child: Child, code: int | None, seconds: float, reason: str) -> None:
        last = child.tail[-1] if child.tail else ""
        if kind == "crawl" and code == EXIT_LOCKED:
            log.warning("crawl skipped: %s", last or "another crawl holds the lock", extra={"job": kind})
            return
        run = _find_run(self.db, kind, child)
        run_id, status = (run.id, run.status) if run else (None, "failed")
        if run is not None and run.status == "running":  # killed before it could close its run
            with self.db.transaction() as s:
                run_store.close_runs(s, [run.id], "interrupted", f"stopped by the daemon ({reason})")
            status = "interrupted"
        elif run is None and child.terminated:
            log.info("%s stopped (%s) before it recorded a run", kind, reason, extra={"job": kind})
            return
        elif run is None and code != 0:  # died before recording anything: record the failure
            message = last or f"exit code {code}"
            with self.db.transaction() as s:
                run_id = run_store.start_run(s, kind=kind)
                run_store.finish_run(s, run_id, "failed", message=message)
        rss = psutil.Process().memory_info().rss / 1e6
        failed = status == "failed" or (code != 0 and not child.terminated)
        level = logging.ERROR if failed else logging.INFO
        log.log(level, "%s finished: run %s %s in %.1fs (exit %s)%s", kind, run_id, status, seconds, code,
                f": {last}" if level == logging.ERROR and last else "",
                extra={"job": kind, "run_id": run_id, "status": status, "exit_code": code,
                       "duration": round(seconds, 1), "daemon_rss_mb": round(rss, 1)})

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Add the jobs (the crawl at once when no crawl succeeded within one period) and start."""
        sched = self.cfg.schedule
        now = datetime.now(self.tz)
        with self.db.transaction() as s:
            last = run_store.last_successful_run(s, kind="crawl")
        period = schedule_period(sched.crawl, sched.timezone, now)
        catch_up = needs_catch_up(last.started_at if last else None, period, now)
        self._add(self.crawl_job, sched.crawl, now, **({"next_run_time": now} if catch_up else {}))
        if sched.digest:
            self._add(self.digest_job, sched.digest, now)
        self.scheduler.start()
        nxt = {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
        digest = f"{sched.digest!r} next at {_fmt(nxt.get('digest_job'))}" if sched.digest else "off"
        log.info("daemon started (pid %d) on %s: crawl %r next at %s%s; digest %s",
                 os.getpid(), describe(self.db.url), sched.crawl, _fmt(nxt.get("crawl_job")),
                 " (catch-up: no successful crawl within one period)" if catch_up else "", digest)

    def _add(self, job: Any, spec: str, now: datetime, **kwargs: Any) -> None:
        """A job that runs one at a time; missed runs coalesce, late ones run within a period."""
        period = schedule_period(spec, self.cfg.schedule.timezone, now)
        self.scheduler.add_job(job, make_trigger(spec, self.cfg.schedule.timezone), id=job.__name__,
                               misfire_grace_time=int(max(1, min(period.total_seconds(), 3600))),
                               **kwargs)

    def shutdown(self, budget: float = 28.0) -> None:
        """Stop scheduling, SIGTERM the children, SIGKILL them after the grace period."""
        deadline = time.monotonic() + budget
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        with self._lock:
            children = list(self._children.values())
        for child in children:
            child.terminate()
        for child in children:
            child.stop(min(deadline - 2.0, time.monotonic() + STOP_GRACE))
        with self._lock:  # let the jobs record how their run ended
            self._lock.wait_for(lambda: self._active == 0, timeout=max(0.1, deadline - time.monotonic()))
        log.info("daemon stopped")


def _fmt(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "never"


def run_daemon(cfg: Config, *, config_path: str | os.PathLike[str] | None = None) -> int:
    """Run the scheduler until SIGTERM or SIGINT; return the exit code (0 on a clean stop).

    Args:
        cfg: the loaded config; its schedule drives the jobs.
        config_path: the config file the child processes load (default: `cfg.source`).
    """
    path = str(Path(config_path or cfg.source).resolve())
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if logging.getLogger().isEnabledFor(logging.DEBUG) else logging.WARNING)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            log.info("received %s: stopping", signal.Signals(signum).name)
        stopping.set()

    db = Database(cfg.database.url)
    daemon = Daemon(cfg, path, db, stopping)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        close_abandoned_runs(db, shared_queue=cfg.crawl.queue is not None)
        daemon.start()
        while not daemon.stopping.wait(1.0):
            pass
        daemon.shutdown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        close_abandoned_runs(db, shared_queue=cfg.crawl.queue is not None)
        db.dispose()
    return 0
