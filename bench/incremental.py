"""Incremental re-crawl: the second `veille crawl` of an unchanged corpus.

Baseline: the first crawl of the corpus into a fresh SQLite file (the one the throughput
benchmark timed, or one made here). Figures: wall time and article GETs (from the replay
server's access log) of the second crawl, as ratios to the first. Targets: time ratio
<= 0.05 and zero article GETs (every article URL is already settled, feeds and
sitemaps answer 304 to conditional GETs).

Where the second crawl's time goes is measured too (py-spy, when installed): start-up
(imports), the database (migrations check, index rebuild) and the crawl proper.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.common import Figure, Workspace, crawl, log, ratio

STARTUP_STEPS = ("Processor.__init__", "CrawlerProcess.start", "CrawlerProcess.__init__",
                 "Database.__init__", "load_config", "run_crawl")
STARTUP_MARKS = {"imports": "_find_and_load", "alembic (schema check)": "alembic/"}
TIME_TARGET = 0.05


def run(ws: Workspace, profile: bool = True) -> list[Figure]:
    first = ws.first_crawl
    if first is None:
        log("incremental: first crawl (baseline)")
        first = crawl(ws, ws.workdir / "incremental.db")
        ws.first_crawl = first
    log("incremental: second crawl of the unchanged corpus")
    second = crawl(ws, first.db_path)
    ok = first.code == 0 and second.code == 0
    t_ratio = ratio(second.seconds, first.seconds)
    figures = [
        Figure("incremental", "second crawl: wall time", round(second.seconds, 2), "s",
               round(first.seconds, 2), "s first crawl", t_ratio, f"≤ {TIME_TARGET}",
               ok and t_ratio is not None and t_ratio <= TIME_TARGET,
               f"requests {second.requests} (first {first.requests}); {second.conditional} conditional; "
               f"exit codes {first.code}/{second.code}"),
        Figure("incremental", "second crawl: article GETs", second.article_gets, "GETs",
               first.article_gets, "first crawl", ratio(second.article_gets, first.article_gets),
               "0 GETs", ok and second.article_gets == 0,
               f"discovery requests {second.source_gets} (robots, feeds, sitemap indexes and children); "
               f"stored articles {first.counts.get('articles')} → {second.counts.get('articles')}"),
    ]
    if profile:
        from bench import profile as prof

        if prof.py_spy():
            out = ws.workdir / "incremental.profile"
            copy = ws.workdir / "incremental-profile.db"
            shutil.copyfile(first.db_path, copy)  # the state after the second crawl: a third is alike
            prefix, kind = prof.command(out)
            third = crawl(ws, copy, profiler=prefix)
            if third.code == 0 and out.exists():
                sec, _ = prof.summarize(out, kind, 1, third.seconds, STARTUP_STEPS, STARTUP_MARKS)
                parts = {k: v for k, v in sec.items() if k in STARTUP_MARKS or k in STARTUP_STEPS}
                figures.append(Figure(
                    "incremental", "second crawl: share spent importing", round(sec.get("imports", 0) / third.seconds, 2),
                    "share", note="py-spy, busy seconds: " + ", ".join(
                        f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
                    + f"; wall {third.seconds:.2f} s"))
    return figures


def main() -> int:
    import argparse
    import tempfile

    from bench.common import machine
    from bench.report import print_table

    ap = argparse.ArgumentParser(prog="python -m bench.incremental", description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="corpus pages")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
        ws = Workspace(Path(tmp), args.n)
        try:
            figures = run(ws)
        finally:
            ws.close()
    print_table(figures, machine())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
