"""`veille status`: last runs, per-outlet health, next scheduled times, a crawl running now.

Outlet health is read from the per-outlet rows of past crawls. The state a user most
needs to see is "silent": the outlet answers fine, but nothing new came from it for a
week although it used to yield articles — a changed feed URL or markup, not an outage.
An outlet whose last crawl left sitemaps unread (a sitemap-index trap, or an index
deeper or bigger than the crawler's limits) says so: its articles may be incomplete.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from veille.daemon import make_trigger
from veille.pipeline.config import Config, parse_schedule
from veille.storage import articles as article_store
from veille.storage import crawl_runs as run_store
from veille.storage import story_pass as pass_store
from veille.storage.db import Database, describe
from veille.storage.lock import LockHeld, crawl_lock
from veille.storage.models import CrawlRun

SILENT_DAYS = 7
HISTORY = 100  # per-outlet runs looked at for consecutive failures
FAILED = {"failing", "blocked"}
TRUNCATED = re.compile(r": sitemaps truncated: (.+)$")  # noted by crawler.spiders.context


def sitemaps_truncated(errors: Sequence[str]) -> str | None:
    """"depth limit (...), count limit (...)" when a run's errors note truncated sitemaps."""
    limits = [m.group(1) for e in errors if (m := TRUNCATED.search(str(e)))]
    return ", ".join(dict.fromkeys(limits)) or None


def consecutive_failures(statuses: Sequence[str]) -> int:
    """How many of the newest statuses (newest first) are failing or blocked in a row."""
    n = 0
    for status in statuses:
        if status not in FAILED:
            break
        n += 1
    return n


def outlet_state(statuses: Sequence[str], recent_articles: int, yielded: int) -> str:
    """ok | failing | blocked | silent | never crawled, from the newest-first statuses.

    Silent: the last crawl reached the outlet fine, but no article is new within the
    window although the outlet has yielded articles before (`yielded` non-zero).
    """
    if not statuses:
        return "never crawled"
    if statuses[0] in FAILED:
        return statuses[0]
    if recent_articles == 0 and yielded:
        return "silent"
    return "ok"


def next_fire(spec: str | None, timezone: str, last_start: datetime | None, now: datetime) -> datetime | None:
    """The next scheduled time: a cron's next fire, or an interval after the last run."""
    if not spec:
        return None
    parsed = parse_schedule(spec)
    if isinstance(parsed, timedelta):
        return max(now, last_start + parsed) if last_start else now
    fire: datetime | None = make_trigger(spec, timezone).get_next_fire_time(None, now)
    return fire


def _lock_state(url: str) -> tuple[bool, str | None]:
    try:
        with crawl_lock(url):
            return False, None
    except LockHeld as exc:
        m = re.search(r"\((pid [^)]*)\)", str(exc))
        return True, m.group(1) if m else None


def _run_json(run: CrawlRun, iso: Any) -> dict[str, Any]:
    totals = {k: sum(getattr(o, k) for o in run.outlets)
              for k in ("discovered", "fetched", "new", "updated", "skipped", "failed")}
    end = run.finished_at
    return {
        "id": run.id, "kind": run.kind, "status": run.status,
        "started": iso(run.started_at), "finished": iso(end),
        "duration_s": round((end - run.started_at).total_seconds(), 1) if end else None,
        "outlets": len(run.outlets), "totals": totals,
        # a crawl repeats its outlets' errors in its own list: count each once
        "errors": max(len(run.errors or []), sum(len(o.errors or []) for o in run.outlets)),
        "message": run.message,
    }


def collect_status(db: Database, cfg: Config, *, now: datetime | None = None, runs: int = 10) -> dict[str, Any]:
    """Everything `veille status` shows, as a JSON-able dict (times in the configured zone).

    Args:
        db: the database to read.
        cfg: the config: its outlets are the ones reported, its schedule gives next times.
        now: the reference time (default: now); tests pass a fixed one.
        runs: how many of the last runs to list.
    """
    tz = ZoneInfo(cfg.schedule.timezone)
    now = (now or datetime.now(UTC)).astimezone(tz)

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat(timespec="seconds") if value else None

    with db.transaction() as s:
        last = run_store.last_runs(s, limit=runs)
        running = [r for r in run_store.running_runs(s) if r.kind == "crawl"]
        last_crawl = run_store.last_runs(s, kind="crawl", limit=1)
        last_digest = run_store.last_runs(s, kind="digest", limit=1)
        successes = run_store.outlet_last_success(s)
        recent = article_store.outlet_article_counts(s, now - timedelta(days=SILENT_DAYS))
        yielded = article_store.outlets_with_articles(s)
        histories = {o.name: run_store.outlet_history(s, o.name, HISTORY) for o in cfg.outlets}
        unplaced = pass_store.count_unplaced(s)
    outlets = []
    for o in cfg.outlets:
        hist = histories[o.name]
        statuses = [h.status for h in hist]
        errors = next((h.errors for h in hist if h.errors), None) or []
        outlets.append({
            "name": o.name,
            "state": outlet_state(statuses, recent.get(o.name, 0), int(o.name in yielded)),
            "last_success": iso(successes.get(o.name)),
            "last_crawled": iso(hist[0].run.started_at) if hist else None,
            "consecutive_failures": consecutive_failures(statuses),
            "articles_7d": recent.get(o.name, 0),
            "has_articles": o.name in yielded,  # not a total: counting read the whole archive
            "last_error": str(errors[0]) if errors else None,
            "sitemaps_truncated": sitemaps_truncated(hist[0].errors or []) if hist else None,
        })
    locked, holder = _lock_state(db.url)
    sched = cfg.schedule
    return {
        "generated_at": iso(now),
        "database": describe(db.url),
        "timezone": sched.timezone,
        "crawl_running": locked,
        "crawl_lock_holder": holder,
        "running_runs": [{"id": r.id, "started": iso(r.started_at), "pid": r.pid, "host": r.host}
                         for r in running],
        "schedule": {"crawl": sched.crawl, "digest": sched.digest},
        "next": {
            "crawl": iso(next_fire(sched.crawl, sched.timezone,
                                   last_crawl[0].started_at if last_crawl else None, now)),
            "digest": iso(next_fire(sched.digest, sched.timezone,
                                    last_digest[0].started_at if last_digest else None, now)),
        },
        "runs": [_run_json(r, iso) for r in last],
        "outlets": outlets,
        "articles_without_story": unplaced,
    }


# ---------------------------------------------------------------- rendering

_STATE_STYLE = {"ok": "green", "failing": "bold red", "blocked": "bold red",
                "silent": "bold yellow", "never crawled": "dim"}
_RUN_STYLE = {"ok": "green", "failed": "bold red", "interrupted": "yellow", "running": "cyan"}


def _short(value: str | None) -> str:
    """`2025-04-14T11:30:00+01:00` → `2025-04-14 11:30`."""
    return value.replace("T", " ")[:16] if value else "—"


def _shorter(value: str | None) -> str:
    """`2025-04-14T11:30:00+01:00` → `04-14 11:30`, for table cells."""
    return _short(value)[5:] if value else "—"


def print_status(status: dict[str, Any], console: Any = None) -> None:
    """Render the status as Rich tables (plain text when the output is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    running = (f"[cyan]yes[/] ({status['crawl_lock_holder'] or 'lock held'})"
               if status["crawl_running"] else "no")
    console.print(f"[bold]veille status[/] — {status['database']} — {_short(status['generated_at'])} "
                  f"({status['timezone']})")
    console.print(f"crawl running now: {running}")
    sched, nxt = status["schedule"], status["next"]
    digest = f"{_short(nxt['digest'])} ({sched['digest']})" if sched["digest"] else "off"
    console.print(f"next crawl: {_short(nxt['crawl'])} ({sched['crawl']})   next digest: {digest}")
    waiting = status["articles_without_story"]
    if waiting and not status["crawl_running"]:  # a running crawl places its own at its end
        console.print(f"[bold yellow]{waiting} article(s) without a story[/]: a crawl stopped "
                      "before its story pass; the next crawl places them, or run "
                      "`veille stories --settle`")

    runs = Table(title="Last runs", title_justify="left")
    for col in ("id", "kind", "started", "took", "status", "new", "fetched", "failed", "errors"):
        runs.add_column(col, no_wrap=True,
                        justify="left" if col in {"kind", "started", "status"} else "right")
    for r in status["runs"]:
        t = r["totals"]
        took = f"{r['duration_s']:.0f}s" if r["duration_s"] is not None else "—"
        style = _RUN_STYLE.get(r["status"], "")
        runs.add_row(str(r["id"]), r["kind"], _shorter(r["started"]), took,
                     f"[{style}]{r['status']}[/]" if style else r["status"],
                     str(t["new"]), str(t["fetched"]), str(t["failed"]), str(r["errors"]))
    console.print(runs if status["runs"] else "no runs recorded yet")

    health = Table(title="Outlets (articles: new in the last 7 days)", title_justify="left")
    for col in ("outlet", "state", "last success", "failures in a row", "articles"):
        health.add_column(col, no_wrap=True,
                          justify="right" if col in {"failures in a row", "articles"} else "left")
    for o in status["outlets"]:
        style = _STATE_STYLE.get(o["state"], "")
        health.add_row(o["name"], f"[{style}]{o['state']}[/]", _shorter(o["last_success"]),
                       str(o["consecutive_failures"]), str(o["articles_7d"]))
    console.print(health)
    for o in status["outlets"]:
        if o["state"] in {"failing", "blocked"} and o["last_error"]:
            console.print(f"{o['name']}: {o['last_error']}", markup=False, highlight=False)
        if o.get("sitemaps_truncated"):
            console.print(f"{o['name']}: sitemaps truncated: {o['sitemaps_truncated']} "
                          "(the last crawl left sitemaps unread)", markup=False, highlight=False)
