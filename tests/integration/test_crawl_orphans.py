"""kill -9 of a crawl takes its extraction processes with it (crawler.lifeline).

A real crawl process on the replay starts its process pool (forkserver, resource tracker,
two workers) and is then killed with SIGKILL while an outlet's feed is held open; every
process it had started must go. Waits are for events (processes appearing, then gone),
bounded generously; nothing depends on the machine's speed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import FIXTURE_OUTLETS, replay_config, without_env_overrides, write_config
from veille.crawler.replay import ReplayServer
from veille.crawler.run import PROJECT_ROOT

BOUND = 120.0  # seconds: only a bound on events that come much sooner
# `veille crawl`, with the pool started after the first page instead
# of the 50th (the replay's outlets are small).
CRAWL = ("import sys\n"
         "from veille.crawler import pipelines\n"
         "pipelines.POOL_AFTER_PAGES = 1\n"
         "from veille.cli import main\n"
         "raise SystemExit(main(['crawl', *sys.argv[1:]]))\n")


@pytest.fixture()
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(FIXTURE_OUTLETS) as srv:
        yield srv


def wait_for(what: str, check: Callable[[], bool], state: Callable[[], object] = lambda: "") -> None:
    end = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < end, f"never happened: {what} {state()}"
        time.sleep(0.1)


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} ({p.status()}, parent {p.ppid()}): {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            out.append(f"{p.pid} (gone)")
    return out


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie has exited too: its memory is freed, only the parent's wait is due)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_9_of_a_crawl_leaves_no_extraction_process_behind(
        replay: ReplayServer, tmp_path: Path) -> None:
    feed = {"file": "feed.xml", "type": "application/rss+xml", "hold": True}
    replay.set_override("slowoutlet", {"/feed/": feed})  # keeps the crawl running until killed
    data = replay_config(replay, tmp_path / "v.db", outlets=["bladi", "slowoutlet"], timeout=600)
    config = write_config(tmp_path / "config.yaml", data)
    proc = subprocess.Popen(
        [sys.executable, "-c", CRAWL, "--config", str(config), "--quiet", "--workers", "2"],
        cwd=PROJECT_ROOT, env=without_env_overrides(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    family: list[psutil.Process] = []
    try:
        crawl = psutil.Process(proc.pid)

        def pool_started() -> bool:
            family[:] = crawl.children(recursive=True)
            workers = [p for p in family if p.ppid() != crawl.pid]  # forked by the forkserver
            return len(workers) >= 2

        wait_for("two extraction workers", pool_started, lambda: describe(family))
        assert replay.requests_for("slowoutlet", "/feed/")  # and the crawl is still running
        assert proc.poll() is None

        proc.kill()  # SIGKILL
        proc.wait()
        left: list[psutil.Process] = []

        def all_gone() -> bool:
            left[:] = [p for p in family if not gone(p)]
            return not left

        wait_for(f"the end of the crawl's {len(family)} processes", all_gone, lambda: describe(left))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in family:  # what a failed run left: ours to end
            if not gone(p):
                p.kill()
        replay.release()
