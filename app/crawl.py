"""`python -m veille.crawl`: one crawl in this process, then exit (the crawl child).

`veille crawl` and the daemon run crawls as children so a crawl's memory and Twisted
reactor die with it; tests and benchmarks start the same child with
`run_crawl_subprocess`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from rich.console import Console

from veille.crawler.run import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CrawlError,
    run_crawl,
    select_outlets,
    tune_gc_for_a_crawl,
)
from veille.pipeline.config import ConfigError, load_config
from veille.storage.db import StorageError

log = logging.getLogger(__name__)


def run_crawl_subprocess(config_path: str | os.PathLike[str], outlets: Sequence[str] | None = None,
                         timeout: float | None = None, *, progress: bool = False,
                         grace: float = 30.0) -> int:
    """Run one crawl in a child process (`python -m veille.crawl`); return its exit code.

    Args:
        config_path: the config file the child loads (env overrides apply there too).
        outlets: outlet names; None for all.
        timeout: seconds before the child gets SIGTERM (graceful stop), then SIGKILL after
            `grace` more seconds. None: no limit beyond the config's wall_clock_limit.
        progress: let the child draw progress and its summary (stdout is inherited).
    """
    cmd = [sys.executable, "-m", "veille.crawl", "--config", str(config_path)]
    for name in outlets or ():
        cmd += ["--outlet", name]
    cmd.append("--progress" if progress else "--quiet")
    env = dict(os.environ)
    # A session of its own: a terminal Ctrl-C reaches only us, and we forward exactly one
    # SIGTERM (a second signal would make Scrapy stop uncleanly).
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("crawl process %s passed its %ss timeout: stopping it", proc.pid, timeout)
        return _stop(proc, grace)
    except BaseException:
        _stop(proc, grace)
        raise


def _stop(proc: subprocess.Popen[bytes], grace: float) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m veille.crawl --config PATH [--outlet NAME]...`: one crawl, then exit."""
    ap = argparse.ArgumentParser(prog="python -m veille.crawl", description="Run one crawl.")
    ap.add_argument("--config", metavar="PATH", help="config file (default ./config.yaml, env VEILLE_CONFIG)")
    ap.add_argument("--outlet", action="append", metavar="NAME", help="only this outlet (repeatable)")
    ap.add_argument("--progress", dest="progress", action="store_true", default=True,
                    help="live table on a terminal and a summary table (default)")
    ap.add_argument("--quiet", dest="progress", action="store_false", help="no tables")
    ap.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    ap.add_argument("--workers", type=int, default=None, help="extraction processes (default: CPUs)")
    ap.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        select_outlets(cfg, args.outlet)
    except (ConfigError, CrawlError) as exc:
        print(f"veille crawl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from veille.logs import setup_logging

    setup_logging("auto", args.log_level)
    console = Console(stderr=args.json)
    try:
        tune_gc_for_a_crawl()  # this process only crawls
        summary = run_crawl(cfg, args.outlet, progress=args.progress, console=console,
                            workers=args.workers)
    except (CrawlError, StorageError) as exc:
        print(f"veille crawl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    return EXIT_OK if summary.status in ("ok", "interrupted") else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
