"""Extraction workers die with the crawl that started them.

The pool's workers are forked by multiprocessing's forkserver, not by the crawl, and
each holds the forkserver's "alive" pipe and the resource tracker's pipe open: when the
crawl is killed (kill -9, the OOM killer) nothing tells them, so the workers wait for
work for ever and keep the forkserver and the tracker alive with them (~425 MB under
PID 1). Two guards, both in the worker:

- Linux: `prctl(PR_SET_PDEATHSIG, SIGKILL)`, so the kernel kills a worker when its parent
  (the forkserver) dies;
- everywhere: a watchdog thread that exits the worker once the crawl process is gone (or
  a zombie, or its pid reused) or the worker's parent changed. With the workers gone the
  forkserver reads end-of-file on its "alive" pipe and exits, then the tracker does.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

import psutil

log = logging.getLogger("crawler")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
CHECK_EVERY = 0.5  # seconds between the watchdog's looks at the crawl


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def exit_with(pid: int, every: float = CHECK_EVERY) -> threading.Thread:
    """Start a daemon thread that ends this process once process `pid` is gone.

    Also when this process's parent changes (it died: we were re-parented). Checked every
    `every` seconds; `os._exit`, since the process is an orphan with nobody to report to.
    """
    parent = os.getppid()
    try:
        crawl: psutil.Process | None = psutil.Process(pid)
    except psutil.Error:
        crawl = None

    def watch() -> None:
        while crawl is not None and _alive(crawl) and os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread


def _alive(proc: psutil.Process) -> bool:
    """Running, not a zombie, and the same process (is_running compares creation times)."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
