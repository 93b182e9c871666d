"""crawler/lifeline: each guard alone, on real processes.

tests/integration/test_crawl_orphans.py kills a real crawl and checks that its extraction
workers go, with both guards on. Here each guard is shown to work by itself, on small
Python processes: the kernel's parent-death signal (Linux), the watchdog when the crawl
process is gone, and the watchdog when the worker's own parent died and it was
re-parented. Waits are for events (a line printed, a process gone), bounded generously.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

BOUND = 60.0  # seconds: only a bound on events that come much sooner

# A parent that starts one child running `child` and prints its pid, then waits for ever;
# the child inherits the parent's stdout.
PARENT = """
import subprocess, sys, threading
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
print(child.pid, flush=True)
threading.Event().wait()
"""
DIES_WITH_PARENT = """
import threading
from veille.crawler.lifeline import die_with_parent
print("armed" if die_with_parent() else "not armed", flush=True)
threading.Event().wait()
"""
WATCHES = """
import sys, threading
from veille.crawler.lifeline import exit_with
thread = exit_with(int(sys.argv[1]), every=0.01)
thread.join(0.2)  # a few looks at a live process: still here
print("watching", flush=True)
threading.Event().wait()
"""


def gone(pid: int) -> bool:
    """Exited (a zombie has exited too: only its parent's wait is due)."""
    try:
        proc = psutil.Process(pid)
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int) -> None:
    end = time.monotonic() + BOUND
    while not gone(pid):
        assert time.monotonic() < end, f"process {pid} is still running"
        time.sleep(0.02)


def line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


@pytest.fixture()
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts, killed at its end whatever happened."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def start(procs: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    procs.append(proc)
    return proc


def kill_child_at_end(pid: int) -> None:
    if not gone(pid):
        psutil.Process(pid).kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_kernel_kills_a_worker_whose_parent_dies(procs: list[subprocess.Popen[str]]) -> None:
    parent = start(procs, "-c", PARENT, DIES_WITH_PARENT)
    child = int(line(parent))
    try:
        assert line(parent) == "armed"
        assert not gone(child)
        parent.kill()
        parent.wait()
        wait_gone(child)
    finally:
        kill_child_at_end(child)


def test_a_worker_exits_once_the_crawl_it_watches_is_gone(procs: list[subprocess.Popen[str]]) -> None:
    crawl = start(procs, "-c", "import threading; threading.Event().wait()")
    worker = start(procs, "-c", WATCHES, str(crawl.pid))
    assert line(worker) == "watching"
    assert worker.poll() is None
    crawl.kill()
    crawl.wait()
    assert worker.wait(timeout=BOUND) == 1


def test_a_worker_told_to_watch_a_process_already_gone_exits(procs: list[subprocess.Popen[str]]) -> None:
    crawl = start(procs, "-c", "pass")
    crawl.wait()
    worker = start(procs, "-c", WATCHES, str(crawl.pid))
    assert worker.wait(timeout=BOUND) == 1
    assert line(worker) == ""  # it never got to say it was watching


def test_a_worker_whose_parent_died_exits_though_the_crawl_lives(procs: list[subprocess.Popen[str]]) -> None:
    """The forkserver (its parent) died: the worker is re-parented, and goes, even while
    the process it watches (here, this test) is alive."""
    parent = start(procs, "-c", PARENT, WATCHES, str(os.getpid()))
    child = int(line(parent))
    try:
        assert line(parent) == "watching"
        parent.kill()
        parent.wait()
        wait_gone(child)
    finally:
        kill_child_at_end(child)
