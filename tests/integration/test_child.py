"""The one child supervisor (veille.child): log lines relayed, SIGTERM once, SIGKILL to
the group after the grace period — real processes."""

from __future__ import annotations

import logging
import signal
import sys

import psutil
import pytest

from veille.child import Child, run_child

_LOGS = ("import json, sys\n"
         "print(json.dumps({'level': 'warning', 'logger': 'veille.x', 'message': 'disk low', 'outlet': 'le360'}))\n"
         "print('a plain summary line')\n"
         "print('oops', file=sys.stderr)\n"
         "sys.exit(4)\n")


def test_json_lines_become_log_records_and_the_exit_code_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert run_child("crawl", [sys.executable, "-c", _LOGS], timeout=120, grace=5) == 4
    records = {r.getMessage(): r for r in caplog.records}
    assert records["disk low"].name == "veille.x" and records["disk low"].levelno == logging.WARNING
    assert records["disk low"].outlet == "le360"
    assert records["a plain summary line"].levelno == logging.INFO
    assert records["oops"].levelno == logging.WARNING and records["oops"].name == "veille.crawl"


def test_past_its_limit_a_child_gets_sigterm_and_its_code_comes_back() -> None:
    sleeper = "import time\nwhile True: time.sleep(1)\n"
    assert run_child("crawl", [sys.executable, "-c", sleeper], timeout=0.5, grace=120) == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_with_its_group() -> None:
    stubborn = ("import signal, subprocess, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                "print(kid.pid, flush=True)\n"
                "while True: time.sleep(1)\n")
    child = Child("crawl", [sys.executable, "-c", stubborn])
    try:
        while not child.tail:  # the grandchild's pid, once it exists
            assert child.wait(0.05) is None, "the child ended early"
        grandchild = int(child.tail[0])
        child.terminate()
        child.terminate()  # once only: a second SIGTERM would make Scrapy stop uncleanly
        child.stop(deadline=0)  # no grace left: SIGKILL to the whole group
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    assert child.killed and child.wait(None) == -signal.SIGKILL
    try:  # not our child: wait() polls until it is gone (a bound, not a sleep)
        psutil.Process(grandchild).wait(timeout=120)
    except psutil.NoSuchProcess:
        pass
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
