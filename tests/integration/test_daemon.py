"""The daemon and the crawl lock with real processes, the replay server and SQLite files.

`veille run`, `veille crawl` and `veille status` run as child processes exactly as a user
or cron starts them; the tests read the database they write.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from tests.conftest import FIXTURE_OUTLETS, replay_config, without_env_overrides, write_config
from veille.crawler.replay import ReplayServer
from veille.daemon import (
    close_abandoned_runs,
    make_trigger,
    needs_catch_up,
    process_alive,
    schedule_period,
)
from veille.storage import crawl_runs as run_store
from veille.storage.db import Database
from veille.storage.lock import LockHeld, crawl_lock
from veille.storage.models import Article, CrawlRun, Page, Story

ROOT = Path(__file__).resolve().parents[2]
OUTLET = "bladi"  # the fixture outlet the tests crawl


# ---------------------------------------------------------------- helpers


def make_config(tmp_path: Path, srv: ReplayServer, *, crawl: str = "1h", digest: str | None = None,
                name: str = "config.yaml", db: str = "veille.db",
                **crawl_opts: Any) -> tuple[Path, Database]:
    data = replay_config(srv, tmp_path / db, **crawl_opts)
    data["schedule"] = {"timezone": "Africa/Casablanca", "crawl": crawl, "digest": digest}
    if digest:  # an SMTP server that refuses connections: every digest fails
        data["digest"] = {"to": ["analyst@example.org"], "send_empty": True,
                          "smtp": {"host": "127.0.0.1", "port": closed_port(), "timeout": 2}}
    return write_config(tmp_path / name, data), Database(data["database"]["url"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = without_env_overrides()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def veille(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`veille ARGS --config CONFIG` as a child process, to the end."""
    return subprocess.run([sys.executable, "-m", "veille.cli", *args, "--config", str(config)],
                          cwd=config.parent, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def spawn(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """`veille ARGS --config CONFIG` in the background, in a process group of its own."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "veille.cli", *args, "--config", str(config)],
                                cwd=config.parent, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float, proc: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> tuple[int, float]:
    """SIGTERM the process; return (exit code, seconds it took to exit)."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout + 5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"still running {timeout + 5}s after SIGTERM")
    return code, time.monotonic() - t0


def runs(db: Database, kind: str = "crawl") -> list[CrawlRun]:
    """Runs of this kind, oldest first."""
    with db.transaction() as s:
        return list(reversed(run_store.last_runs(s, kind=kind, limit=100)))


def lock_held(db: Database) -> bool:
    try:
        with crawl_lock(db.url):
            return False
    except LockHeld:
        return True


def stored(db: Database) -> dict[str, Any]:
    with db.transaction() as s:
        urls = list(s.scalars(select(Article.url)))
        pages = list(s.execute(select(Page.url, Page.kind)))
        return {"articles": len(urls), "urls": set(urls), "pages": len(pages), "page_kinds": set(pages),
                "stories": int(s.scalar(select(func.count(Story.id))) or 0)}


def hang(srv: ReplayServer, seconds: float, *, hold: bool = False) -> str:
    """Delay one article of OUTLET by `seconds` (the page itself is still served); its path.

    `hold`: answer it only once the test calls `srv.release()` (or never)."""
    expected = yaml.safe_load((FIXTURE_OUTLETS / OUTLET / "expected.yaml").read_text(encoding="utf-8"))
    routes = yaml.safe_load((FIXTURE_OUTLETS / OUTLET / "routes.yaml").read_text(encoding="utf-8"))
    path = str(max(expected["articles"], key=lambda a: a["published"])["path"])
    srv.set_override(OUTLET, {path: {**routes[path], "hang": seconds, "hold": hold}})
    return path


@pytest.fixture()
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(FIXTURE_OUTLETS, outlets=[OUTLET]) as srv:
        yield srv


# ---------------------------------------------------------------- the daemon


def test_daemon_crawls_on_schedule_and_stops_on_sigterm(tmp_path: Path, replay: ReplayServer) -> None:
    config, db = make_config(tmp_path, replay, crawl="2s", digest="3s")
    log = tmp_path / "daemon.log"
    daemon = spawn(config, "run", log=log)
    try:
        wait_for("two finished crawls",
                 lambda: len([r for r in runs(db) if r.status == "ok"]) >= 2, 90, daemon)
        # a failing digest is recorded and logged; the daemon goes on crawling
        wait_for("a failed digest", lambda: any(r.status == "failed" for r in runs(db, "digest")),
                 30, daemon)
        crawls = len(runs(db))
        wait_for("one more crawl", lambda: len(runs(db)) > crawls, 30, daemon)
    finally:
        code, seconds = stop(daemon)
    assert code == 0 and seconds < 30, (code, seconds, log.read_text()[-3000:])
    done = runs(db)
    assert all(r.status in {"ok", "interrupted"} for r in done), [(r.id, r.status, r.message) for r in done]
    first = done[0]
    assert [o.outlet for o in first.outlets] == [OUTLET] and first.outlets[0].new > 0
    assert stored(db)["articles"] == first.outlets[0].new  # later crawls found nothing new
    # every job's end is logged with its run id and status, one JSON object per line
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    ends = {d["run_id"]: d["status"] for d in lines if d.get("job") == "crawl" and "run_id" in d}
    assert {r.id: r.status for r in done if r.status == "ok"}.items() <= ends.items()
    failed = [d for d in lines if d.get("job") == "digest" and d.get("status") == "failed"]
    assert failed and "SMTP" in failed[0]["message"], failed
    assert not lock_held(db)


def test_manual_crawl_during_a_daemon_crawl_exits_3(tmp_path: Path, replay: ReplayServer) -> None:
    slow = hang(replay, 60)  # the daemon's crawl waits on this page (its timeout: 10 s)
    config, db = make_config(tmp_path, replay, crawl="1h", timeout=10)
    log = tmp_path / "daemon.log"
    daemon = spawn(config, "run", log=log)  # never crawled: it catches up at once
    try:
        wait_for("the slow page to be requested", lambda: replay.requests_for(OUTLET, slow), 60, daemon)
        assert lock_held(db)
        manual = veille(config, "crawl")
        assert manual.returncode == 3, manual.stderr
        lines = manual.stderr.strip().splitlines()
        assert len(lines) == 1 and "another crawl is running" in lines[0], manual.stderr
        wait_for("the other articles committed", lambda: stored(db)["articles"] >= 4, 30, daemon)
    finally:
        code, seconds = stop(daemon)  # while its crawl still waits on the slow page
    assert code == 0 and seconds < 30, (code, seconds, log.read_text()[-3000:])
    (run,) = runs(db)  # the manual crawl recorded nothing
    assert run.status == "interrupted" and run.finished_at is not None, (run.status, run.message)
    assert not lock_held(db)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert not [e for e in events if e["level"] == "error"], [e["message"] for e in events]


def test_sigkill_mid_crawl_then_rerun_stores_every_article_once(tmp_path: Path, replay: ReplayServer) -> None:
    # No wall time decides anything here: the crawls' download timeout is far above what
    # a page of the replay needs (with the 3 s default, a busy machine made the reference
    # crawl lose a page: "pages 8 vs 7, articles 6 vs 5"), and the newest article is held
    # unanswered until the crawl is killed, so the kill always lands mid-run.
    reference, ref_db = make_config(tmp_path, replay, name="reference.yaml", db="reference.db",
                                    timeout=120)
    assert veille(reference, "crawl").returncode == 0  # one uninterrupted crawl
    (ref_run,) = runs(ref_db)
    assert [(o.failed, o.errors) for o in ref_run.outlets] == [(0, [])]  # the whole outlet
    expected = stored(ref_db)
    assert expected["articles"] > 1

    hang(replay, 0, hold=True)
    config, db = make_config(tmp_path, replay, timeout=120)
    crawl = spawn(config, "crawl", log=tmp_path / "killed.log")
    wait_for("some articles committed", lambda: stored(db)["articles"] > 0, 60, crawl)
    assert stored(db)["articles"] < expected["articles"]  # really mid-run
    os.killpg(crawl.pid, signal.SIGKILL)  # the crawl and its extraction workers
    assert crawl.wait(10) == -signal.SIGKILL
    killed = runs(db)[-1]
    assert killed.status == "running"  # nobody could close it

    replay.set_override(OUTLET, None)
    rerun = veille(config, "crawl")
    assert rerun.returncode == 0, rerun.stderr
    got = stored(db)  # the same articles, pages and stories, each once
    assert got == expected, (got["urls"] ^ expected["urls"], got["page_kinds"] ^ expected["page_kinds"],
                             {k: (got[k], expected[k]) for k in ("articles", "pages", "stories")})
    assert runs(db)[-1].status == "ok"
    with db.transaction() as s:
        status = s.get(CrawlRun, killed.id).status  # type: ignore[union-attr]
    assert status == "interrupted"


def test_daemon_start_closes_a_killed_crawls_run(tmp_path: Path, replay: ReplayServer) -> None:
    config, db = make_config(tmp_path, replay, crawl="1h")
    with db.transaction() as s:  # a crawl of this host whose process is gone
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        s.add(CrawlRun(kind="crawl", pid=gone.pid, host=socket.gethostname(), status="running"))
    daemon = spawn(config, "run", log=tmp_path / "daemon.log")
    try:
        wait_for("a successful catch-up crawl",
                 lambda: any(r.status == "ok" for r in runs(db)), 60, daemon)
    finally:
        assert stop(daemon)[0] == 0
    assert [r.status for r in runs(db)] == ["interrupted", "ok"]


# ---------------------------------------------------------------- status


def test_status_reports_an_outlet_whose_server_is_down(tmp_path: Path) -> None:
    with ReplayServer(FIXTURE_OUTLETS, outlets=[OUTLET, "le360"]) as srv:
        srv.set_override("le360", {"*": {"status": 500}})
        config, _ = make_config(tmp_path, srv, crawl="1h")
        crawl = veille(config, "crawl")
        assert crawl.returncode == 0, crawl.stderr  # a run with a failing outlet completes

    result = veille(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    health = {o["name"]: o for o in status["outlets"]}
    assert health["le360"]["state"] == "failing"
    assert health["le360"]["consecutive_failures"] == 1
    assert health["le360"]["last_success"] is None and "500" in health["le360"]["last_error"]
    assert health[OUTLET]["state"] == "ok" and health[OUTLET]["articles_7d"] > 0
    (run,) = status["runs"]
    assert (run["kind"], run["status"], run["outlets"]) == ("crawl", "ok", 2)
    assert status["crawl_running"] is False
    assert status["next"]["crawl"] and status["next"]["digest"] is None

    table = veille(config, "status")
    assert table.returncode == 0, table.stderr
    assert "le360" in table.stdout and "failing" in table.stdout


# ---------------------------------------------------------------- abandoned runs


def test_close_abandoned_runs_spares_live_processes(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'veille.db'}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        old = datetime.now(UTC) - timedelta(hours=3)
        with db.transaction() as s:
            for pid, h, kind, started in [
                (dead.pid, host, "crawl", None),     # dead here: closed
                (alive.pid, host, "crawl", None),    # alive here: kept
                (os.getpid(), host, "digest", old),  # this pid, but it is younger than the run: reused
                (1234, "elsewhere", "crawl", None),  # other host, lock free: closed
                (1234, "elsewhere", "digest", None), # other host, recent digest: kept
            ]:
                s.add(CrawlRun(kind=kind, pid=pid, host=h, status="running",
                               started_at=started or datetime.now(UTC)))
        assert process_alive(alive.pid, datetime.now(UTC))
        assert not process_alive(dead.pid, datetime.now(UTC) - timedelta(seconds=10))
        assert close_abandoned_runs(db) == 3
        statuses = [(r.pid, r.host, r.status) for r in runs(db) + runs(db, "digest")]
        assert sorted(statuses, key=str) == sorted([
            (dead.pid, host, "interrupted"), (alive.pid, host, "running"),
            (1234, "elsewhere", "interrupted"), (os.getpid(), host, "interrupted"),
            (1234, "elsewhere", "running")], key=str)
        with crawl_lock(db.url):  # another crawl holds the lock: other hosts' crawls stay
            with db.transaction() as s:
                s.add(CrawlRun(kind="crawl", pid=1, host="elsewhere", status="running"))
            assert close_abandoned_runs(db) == 0
        # with a shared queue, workers run without the lock: a recent remote crawl is live,
        # an old one (past stale_after) is not
        with db.transaction() as s:
            s.add(CrawlRun(kind="crawl", pid=2, host="worker-2", status="running"))
            s.add(CrawlRun(kind="crawl", pid=3, host="worker-3", status="running", started_at=old))
        assert close_abandoned_runs(db, holding_lock=True, shared_queue=True) == 1
        assert {(r.host, r.status) for r in runs(db) if r.host and r.host.startswith("worker-")} == {
            ("worker-2", "running"), ("worker-3", "interrupted")}
    finally:
        alive.kill()
        alive.wait()



# ---------------------------------------------------------------- schedules (no processes)


def test_schedule_periods_and_catch_up() -> None:
    tz = "Africa/Casablanca"
    now = datetime(2025, 4, 14, 10, 0, tzinfo=UTC)
    assert schedule_period("15m", tz) == timedelta(minutes=15)
    assert schedule_period("*/30 * * * *", tz, now) == timedelta(minutes=30)
    assert schedule_period("0 7 * * *", tz, now) == timedelta(days=1)
    fire = make_trigger("0 7 * * *", tz).get_next_fire_time(None, now)
    assert fire is not None and fire.isoformat() == "2025-04-15T07:00:00+01:00"
    assert needs_catch_up(None, timedelta(minutes=30), now)
    assert needs_catch_up(now - timedelta(minutes=31), timedelta(minutes=30), now)
    assert not needs_catch_up(now - timedelta(minutes=29), timedelta(minutes=30), now)
