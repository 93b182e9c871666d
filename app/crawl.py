"""Run `veille crawl` as a supervised child process (tests and benchmarks).

A crawl runs in a process of its own so its memory and Twisted reactor (which cannot
restart) die with it: the daemon starts `veille crawl` for each tick, and so does
`run_crawl_subprocess`, through the same supervisor (`veille.child`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from veille.child import run_child


def crawl_argv(config_path: str | os.PathLike[str], outlets: Sequence[str] | None = None,
               *, workers: int | None = None) -> list[str]:
    """The command line of a quiet `veille crawl` child logging JSON lines."""
    argv = [sys.executable, "-m", "veille.cli", "crawl", "--config", str(config_path),
            "--quiet", "--log-format", "json"]
    for name in outlets or ():
        argv += ["--outlet", name]
    if workers is not None:
        argv += ["--workers", str(workers)]
    return argv


def run_crawl_subprocess(config_path: str | os.PathLike[str], outlets: Sequence[str] | None = None,
                         timeout: float | None = None, *, workers: int | None = None,
                         grace: float = 30.0) -> int:
    """Run one `veille crawl` in a child process; return its exit code.

    Args:
        config_path: the config file the child loads (env overrides apply there too).
        outlets: outlet names; None for all.
        timeout: seconds before the child gets SIGTERM (graceful stop), then SIGKILL after
            `grace` more seconds. None: no limit beyond the config's wall_clock_limit.
        workers: extraction processes (default: the crawl's own choice).
    """
    return run_child("crawl", crawl_argv(config_path, outlets, workers=workers), timeout, grace)
