"""`python -m bench` (`make bench`): every benchmark in one run, one table, bench/results.json.

Benchmarks (run in this order; `--only` picks some):

- throughput: bare trafilatura vs `veille crawl` end to end on a synthetic corpus, plus
  stage costs and a profile (bench/profile_throughput.txt);
- incremental: the second crawl of the unchanged corpus vs the first;
- quality: extraction, dates, language, topic, duplicates and stories on the replay fixtures;
- dedup: duplicate detection and story clustering at 1k, 10k and 100k articles;
- daemon_memory: the daemon's RSS across 20 scheduled crawls;
- realpages: extraction and dates on public real pages (../shared/benchmarks) next to bare
  trafilatura and htmldate;
- archive: a routine crawl, the story pass and the reading commands on archives of 10k and
  100k stored articles (`--archive-sizes`; 1M with `python -m bench.archive`);
- outlets100: one crawl of 100 replay outlets with the shipped crawl settings.

Every figure is a ratio to a baseline measured in the same run (the machines are shared
and noisy), with the absolute values for context. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, Figure, Workspace, log, machine

NAMES = ("throughput", "incremental", "quality", "dedup", "daemon_memory", "realpages", "archive", "outlets100")
RESULTS = ROOT / "bench" / "results.json"


def _guard(name: str, fn: Callable[[], list[Figure]]) -> list[Figure]:
    t0 = time.perf_counter()
    try:
        figures = fn()
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        log(f"{name} failed:\n{traceback.format_exc()}")
        figures = [Figure(name, "benchmark failed", None, note=f"{type(exc).__name__}: {exc}")]
    log(f"{name}: {time.perf_counter() - t0:.0f} s")
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", metavar="NAME",
                    help=f"run only this benchmark (repeatable or comma-separated): {', '.join(NAMES)}")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (500 pages, dedup up to 20k, 5 daemon crawls, no profile); "
                         "results.json is only written with --out")
    ap.add_argument("--pages", type=int, help="corpus pages (default 2000, quick 500)")
    ap.add_argument("--no-profile", action="store_true", help="skip the profiled crawl")
    ap.add_argument("--out", type=Path, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (corpus, databases)")
    ap.add_argument("--archive-sizes", metavar="N,N", help="archive sizes (default 10000,100000; quick 2000,10000)")
    args = ap.parse_args(argv)

    only = [n.strip() for item in args.only or [] for n in item.split(",") if n.strip()]
    unknown = sorted(set(only) - set(NAMES))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {', '.join(NAMES)}")
    selected = [n for n in NAMES if not only or n in only]
    pages = args.pages or (500 if args.quick else 2000)
    profile = not (args.quick or args.no_profile)
    out = args.out or (None if args.quick else RESULTS)
    archive_sizes = tuple(int(n) for n in (args.archive_sizes or ("2000,10000" if args.quick else "10000,100000"))
                          .split(",") if n.strip())

    from bench import (
        archive,
        daemon_memory,
        dedup,
        incremental,
        outlets100,
        quality,
        realpages,
        throughput,
    )
    from bench.report import print_table, write_json

    started = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        ws = Workspace(workdir, pages)
        runs: dict[str, Callable[[], list[Figure]]] = {
            "throughput": lambda: throughput.run(ws, profile=profile, what_if=profile),
            "incremental": lambda: incremental.run(ws, profile=profile),
            "quality": lambda: quality.run(workdir / "quality"),
            "dedup": lambda: dedup.run(dedup.QUICK_SIZES if args.quick else dedup.SIZES),
            "daemon_memory": lambda: daemon_memory.run(workdir, crawls=5 if args.quick else daemon_memory.CRAWLS),
            "realpages": lambda: realpages.run(),
            "archive": lambda: archive.run(workdir / "archive", archive_sizes, profile_sizes=(
                archive.PROFILE_SIZES if profile else ()), extra=ws.extra),
            "outlets100": lambda: outlets100.run(workdir / "outlets100", extra=ws.extra),
        }
        (workdir / "quality").mkdir(exist_ok=True)
        figures: list[Figure] = []
        try:
            for name in selected:
                figures += _guard(name, runs[name])
        finally:
            ws.close()
    total = time.perf_counter() - started
    info["bench_seconds"] = round(total)
    print_table(figures, info)
    print(f"total {total / 60:.1f} min", flush=True)
    if out is not None:
        params = {"pages": pages, "dedup_sizes": list(dedup.QUICK_SIZES if args.quick else dedup.SIZES),
                  "quick": args.quick, "profile": profile, "only": selected,
                  "archive_sizes": list(archive_sizes)}
        if ws.manifest is not None:
            params["corpus"] = ws.manifest.as_dict()
        write_json(out, figures, info, {"parameters": params, **ws.extra})
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
