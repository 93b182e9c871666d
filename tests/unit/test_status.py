"""Status computations on a hand-built SQLite database: failures in a row, silent outlets,
next scheduled times, the crawl lock, and the Rich rendering."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from veille.pipeline.config import Config, config_from_dict
from veille.status import collect_status, consecutive_failures, outlet_state, print_status
from veille.storage import crawl_runs as run_store
from veille.storage import pages as page_store
from veille.storage.db import Database
from veille.storage.lock import crawl_lock
from veille.storage.models import Article, CrawlRun

NOW = datetime(2025, 4, 14, 10, 0, tzinfo=UTC)  # 11:00 in Casablanca (UTC+1)
OUTLETS = ["steady", "broken", "quiet", "fresh", "walled", "newcomer"]


def _cfg(db_url: str, crawl: str = "*/30 * * * *", digest: str | None = "0 7 * * *") -> Config:
    return config_from_dict({
        "database": {"url": db_url},
        "outlets": [{"name": n, "url": f"http://{n}.example", "language": "fr"} for n in OUTLETS],
        "schedule": {"timezone": "Africa/Casablanca", "crawl": crawl, "digest": digest},
    })


def _run(db: Database, hours_ago: float, outlets: dict[str, tuple[str, int]],
         status: str = "ok", kind: str = "crawl") -> int:
    """A finished run `hours_ago` before NOW with per-outlet (status, new) rows."""
    with db.transaction() as s:
        run_id = run_store.start_run(s, kind=kind)
        for name, (ostatus, new) in outlets.items():
            errors = [f"GET http://{name}.example/: 500"] if ostatus != "ok" else []
            run_store.save_outlet_counts(s, run_id, name, run_store.OutletCounts(
                discovered=10, fetched=new, new=new, status=ostatus, errors=errors))
        run_store.finish_run(s, run_id, status)
        run = s.get(CrawlRun, run_id)
        assert run is not None
        run.started_at = NOW - timedelta(hours=hours_ago)
        run.finished_at = run.started_at + timedelta(minutes=2)
    return run_id


def _articles(db: Database, outlet: str, days_ago: float, n: int) -> None:
    with db.transaction() as s:
        oid = page_store.ensure_outlet(s, outlet, f"http://{outlet}.example", "fr")
        for i in range(n):
            url = f"http://{outlet}.example/{days_ago}/{i}"
            s.add(Article(url=url, outlet_id=oid, title=url, text="texte", content_hash=url,
                          first_seen=NOW - timedelta(days=days_ago)))


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'status.db'}")
    # 30 days ago everything yielded; since then: broken fails 3 times, walled is blocked,
    # quiet answers fine but yields nothing, fresh and steady keep yielding.
    _articles(db, "steady", 20, 3)
    _articles(db, "quiet", 20, 4)
    _articles(db, "broken", 20, 2)
    _articles(db, "steady", 1, 2)
    _articles(db, "fresh", 2, 1)
    _run(db, 24 * 30, {n: ("ok", 2) for n in ("steady", "quiet", "broken", "walled")})
    _run(db, 5, {"steady": ("ok", 1), "quiet": ("ok", 0), "broken": ("failing", 0),
                 "walled": ("blocked", 0), "fresh": ("ok", 1)})
    _run(db, 3, {"steady": ("ok", 0), "quiet": ("ok", 0), "broken": ("failing", 0),
                 "walled": ("ok", 0), "fresh": ("ok", 0)}, status="failed")
    _run(db, 1, {"steady": ("ok", 1), "quiet": ("ok", 0), "broken": ("blocked", 0),
                 "walled": ("blocked", 0), "fresh": ("ok", 0)})
    _run(db, 0.5, {}, kind="digest")
    return db


def test_consecutive_failures_counts_back_from_the_newest() -> None:
    assert consecutive_failures([]) == 0
    assert consecutive_failures(["ok", "failing"]) == 0
    assert consecutive_failures(["failing", "blocked", "ok", "failing"]) == 2
    assert consecutive_failures(["blocked"] * 4) == 4


@pytest.mark.parametrize(("statuses", "recent", "total", "state"), [
    ([], 0, 0, "never crawled"),
    ([], 0, 5, "never crawled"),
    (["failing", "ok"], 3, 9, "failing"),
    (["blocked"], 0, 9, "blocked"),
    (["ok", "failing"], 0, 9, "silent"),   # answers again, but nothing new for a week
    (["ok"], 0, 0, "ok"),                  # never yielded anything: not "silent"
    (["ok"], 2, 9, "ok"),
])
def test_outlet_state(statuses: list[str], recent: int, total: int, state: str) -> None:
    assert outlet_state(statuses, recent, total) == state


def test_outlet_health(db: Database) -> None:
    status = collect_status(db, _cfg(db.url), now=NOW)
    health = {o["name"]: o for o in status["outlets"]}
    assert list(health) == OUTLETS  # every configured outlet, in config order
    assert {n: o["state"] for n, o in health.items()} == {
        "steady": "ok", "broken": "blocked", "quiet": "silent", "fresh": "ok",
        "walled": "blocked", "newcomer": "never crawled"}
    assert {n: o["consecutive_failures"] for n, o in health.items()} == {
        "steady": 0, "broken": 3, "quiet": 0, "fresh": 0, "walled": 1, "newcomer": 0}
    assert {n: o["articles_7d"] for n, o in health.items()} == {
        "steady": 2, "broken": 0, "quiet": 0, "fresh": 1, "walled": 0, "newcomer": 0}
    # whether an outlet ever yielded an article (what "silent" needs), not a count of them
    assert {n: o["has_articles"] for n, o in health.items()} == {
        "steady": True, "broken": True, "quiet": True, "fresh": True, "walled": False, "newcomer": False}
    # last success: the newest run in which the outlet was ok, in the configured zone
    assert health["broken"]["last_success"] == "2025-03-15T10:00:00+00:00"  # Ramadan: UTC+0
    assert health["walled"]["last_success"] == "2025-04-14T08:00:00+01:00"
    assert health["steady"]["last_success"] == "2025-04-14T10:00:00+01:00"
    assert health["newcomer"]["last_success"] is None
    assert health["broken"]["last_error"] == "GET http://broken.example/: 500"


def test_runs_and_json(db: Database) -> None:
    status = collect_status(db, _cfg(db.url), now=NOW, runs=3)
    json.dumps(status)  # JSON-able as is
    kinds = [(r["kind"], r["status"]) for r in status["runs"]]
    assert kinds == [("digest", "ok"), ("crawl", "ok"), ("crawl", "failed")]
    crawl = status["runs"][1]
    assert crawl["duration_s"] == 120.0
    assert crawl["outlets"] == 5
    assert crawl["totals"]["new"] == 1
    assert crawl["errors"] == 2  # broken and walled each logged one error
    assert status["crawl_running"] is False


def test_next_times_cron_in_the_configured_zone(db: Database) -> None:
    status = collect_status(db, _cfg(db.url, crawl="15 * * * *"), now=NOW)
    assert status["next"] == {"crawl": "2025-04-14T11:15:00+01:00",
                              "digest": "2025-04-15T07:00:00+01:00"}


def test_next_times_interval_follows_the_last_run(db: Database) -> None:
    status = collect_status(db, _cfg(db.url, crawl="2h", digest=None), now=NOW)
    # last crawl started 1 h before NOW: the next one is due 1 h after NOW
    assert status["next"] == {"crawl": "2025-04-14T12:00:00+01:00", "digest": None}
    status = collect_status(db, _cfg(db.url, crawl="30m", digest=None), now=NOW)
    assert status["next"]["crawl"] == "2025-04-14T11:00:00+01:00"  # overdue: now


def test_crawl_running_is_the_lock(db: Database) -> None:
    with crawl_lock(db.url):
        status = collect_status(db, _cfg(db.url), now=NOW)
    assert status["crawl_running"] is True
    assert status["crawl_lock_holder"].startswith("pid ")
    assert collect_status(db, _cfg(db.url), now=NOW)["crawl_running"] is False


def test_empty_database(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    status = collect_status(db, _cfg(db.url, crawl="15m"), now=NOW)
    assert status["runs"] == []
    assert {o["state"] for o in status["outlets"]} == {"never crawled"}
    assert status["next"]["crawl"] == "2025-04-14T11:00:00+01:00"  # no run yet: due now


def test_print_status_renders_every_outlet(db: Database) -> None:
    from rich.console import Console

    out = io.StringIO()
    print_status(collect_status(db, _cfg(db.url), now=NOW), Console(file=out, width=160))
    text = out.getvalue()
    for word in [*OUTLETS, "silent", "blocked", "never crawled", "Last runs", "next crawl"]:
        assert word in text


def test_articles_a_stopped_crawl_left_without_a_story_are_reported(db: Database) -> None:
    from rich.console import Console

    from veille.pipeline.settle import settle_stories

    def shown() -> tuple[int, str]:
        status = collect_status(db, _cfg(db.url), now=NOW)
        out = io.StringIO()
        print_status(status, Console(file=out, width=200))
        return status["articles_without_story"], out.getvalue()

    count, text = shown()  # the fixture's articles were stored, never placed
    assert count == 12 and "12 article(s) without a story" in text and "veille stories --settle" in text
    settle_stories(db)
    count, text = shown()
    assert count == 0 and "without a story" not in text
