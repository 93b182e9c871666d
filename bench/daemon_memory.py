"""Memory of the daemon across scheduled crawls: `veille run` with a 2 s crawl interval.

The replay fixture outlets (those with articles) are served on 127.0.0.1; `veille run`
starts with `schedule.crawl: 2s` (no digest) and a fresh SQLite file. Every 0.25 s the
daemon's own RSS (psutil; its crawl children are separate processes and not counted),
its thread and file-descriptor counts and the finished crawl_runs rows are sampled.
After CRAWLS finished crawls the daemon gets SIGTERM.

Figures: RSS after the first and the last crawl (ratio, target <= 1.05: flat), the
maximum, and the least-squares slope in KiB per crawl.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Figure, bench_config, child_env, log, ratio, veille, write_config

CRAWLS = 20
INTERVAL = "2s"
TIMEOUT = 420.0
TARGET = 1.05


def _finished_crawls(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("select count(*) from crawl_runs where kind = 'crawl' "
                                   "and status != 'running'").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0  # not created yet, or locked for a moment


def _slope(points: list[tuple[int, float]]) -> float | None:
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def run(workdir: Path, crawls: int = CRAWLS) -> list[Figure]:
    import psutil

    from bench.quality import FIXTURES, expected_outlets
    from veille.crawler.replay import ReplayServer

    db = workdir / "daemon.db"
    with ReplayServer(FIXTURES, list(expected_outlets())) as srv:
        cfg = write_config(workdir / "daemon.yaml", bench_config(
            srv.outlet_configs(), db, crawl={"concurrency_per_domain": 4, "timeout": 10, "retries": 0},
            schedule={"timezone": "Africa/Casablanca", "crawl": INTERVAL, "digest": None}))
        log(f"daemon_memory: veille run, crawl every {INTERVAL}, until {crawls} crawls")
        proc = subprocess.Popen(veille("run", "--config", str(cfg), "--log-format", "json"),
                                env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        daemon = psutil.Process(proc.pid)
        samples: list[tuple[int, float]] = []  # (finished crawls, RSS bytes) at each new crawl
        peak, seen, t0 = 0, -1, time.monotonic()
        first_res = last_res = (0, 0)
        try:
            while time.monotonic() - t0 < TIMEOUT and proc.poll() is None:
                done = _finished_crawls(db)
                try:
                    rss = daemon.memory_info().rss
                    res = (daemon.num_threads(), daemon.num_fds())
                except psutil.Error:
                    break
                peak = max(peak, rss)
                if done != seen and done > 0:
                    samples.append((done, float(rss)))
                    seen = done
                    first_res = first_res if len(samples) > 1 else res
                    last_res = res
                if done >= crawls:
                    break
                time.sleep(0.25)
        finally:
            elapsed = time.monotonic() - t0
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(45)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if len(samples) < 2:
        return [Figure("daemon_memory", "daemon RSS", None,
                       note=f"only {len(samples)} crawl(s) finished in {elapsed:.0f} s (exit {proc.returncode})")]
    first, last = samples[0][1], samples[-1][1]
    slope = _slope(samples)
    r = ratio(last, first)
    return [
        Figure("daemon_memory", f"daemon RSS after crawl {samples[-1][0]}", round(last / 2**20, 1), "MiB",
               round(first / 2**20, 1), f"MiB after crawl {samples[0][0]}", r, f"≤ {TARGET}",
               r is not None and r <= TARGET,
               f"{len(samples)} samples over {elapsed:.0f} s; threads {first_res[0]}→{last_res[0]}, "
               f"fds {first_res[1]}→{last_res[1]}; exit {proc.returncode} after SIGTERM"),
        Figure("daemon_memory", "daemon RSS, maximum", round(peak / 2**20, 1), "MiB"),
        Figure("daemon_memory", "daemon RSS slope", round((slope or 0) / 1024, 1), "KiB/crawl",
               note="least squares over the crawls; the crawls themselves run in child processes"),
    ]


def main() -> int:
    import tempfile

    from bench.common import machine
    from bench.report import print_table

    with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
        figures = run(Path(tmp))
    print_table(figures, machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
