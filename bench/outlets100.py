"""A hundred outlets: one crawl of a replay of 100 outlets with the shipped crawl settings.

The corpus generator (`bench.corpus.many_outlets`, `generate(per_outlet=...)`) writes 100
outlets (French, Arabic and English; SPIP, WordPress and Arc XP) with a feed, sitemaps
and a few articles each; `veille crawl` crawls them on 127.0.0.1 with the `crawl:`
section of the repository's config.yaml as shipped (download delay per site,
concurrency, AutoThrottle), into a fresh SQLite file.

Reported: every outlet's expected articles stored (share, and the outlets missing some);
the wall time against what the delays alone impose (each outlet's requests, from the
replay server's log, × download_delay: the outlets run in parallel, so the bound is the
largest); their ratio; peak RSS of the crawl's process tree; and starvation: for each
outlet, when its first article was stored (`articles.first_seen`) after the run started
(`crawl_runs.started_at`), as a share of the wall time (max and 90th percentile).

`python -m bench.outlets100 [--outlets 100] [--per-outlet 5]`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    ROOT,
    Figure,
    expected_articles,
    log,
    ratio,
    repo_topics,
    run_child,
    veille,
    write_config,
)

OUTLETS = 100
PER_OUTLET = 5
TARGET = 1.2


def shipped_crawl() -> dict[str, Any]:
    """The `crawl:` section of the repository's config.yaml, as shipped."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")) or {}
    return dict(data.get("crawl") or {})


def make_corpus(root: Path, outlets: int = OUTLETS, per_outlet: int = PER_OUTLET, seed: int = 31) -> Any:
    """`outlets` outlets of `per_outlet` articles each, published in the last two days
    (within the shipped sitemap age limit)."""
    from bench.corpus import generate, many_outlets

    end = datetime.now(UTC)
    return generate(root, seed=seed, outlets=many_outlets(outlets), per_outlet=per_outlet,
                    start=end - timedelta(days=3), span_days=1.0)


@dataclass
class Stored:
    """What the crawl left in the database."""

    started: datetime | None  # the run's start (crawl_runs)
    finished: datetime | None
    first: dict[str, datetime]  # outlet -> its first stored article's first_seen
    settled: set[str]  # URLs of pages pointing at an article (an article, or a folded update)


def _stored(db: Path) -> Stored:
    con = sqlite3.connect(db)
    try:
        started, finished = con.execute("select min(started_at), max(finished_at) from crawl_runs "
                                        "where kind = 'crawl'").fetchone()
        rows = con.execute("select o.name, min(a.first_seen) from articles a "
                           "join outlets o on o.id = a.outlet_id group by o.name").fetchall()
        settled = {u for (u,) in con.execute("select url from pages where article_id is not null")}
    finally:
        con.close()

    def parse(value: str | None) -> datetime | None:
        if value is None:
            return None
        dt = datetime.fromisoformat(value)
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)

    first = {name: when for name, value in rows if (when := parse(value)) is not None}
    return Stored(parse(started), parse(finished), first, settled)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def min_gap(entries: list[Any]) -> float | None:
    """The shortest time between two consecutive requests to one outlet (politeness)."""
    by_outlet: dict[str, list[float]] = {}
    for e in entries:
        by_outlet.setdefault(e.outlet, []).append(e.at)
    gaps = [b - a for ts in by_outlet.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
    return min(gaps) if gaps else None


def mean_gap(entries: list[Any]) -> float | None:
    """The mean time between consecutive requests to one outlet: the delay plus what each
    request waited beyond it (the answer's latency, a busy crawl process)."""
    by_outlet: dict[str, list[float]] = {}
    for e in entries:
        by_outlet.setdefault(e.outlet, []).append(e.at)
    gaps = [b - a for ts in by_outlet.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
    return sum(gaps) / len(gaps) if gaps else None


def logged_phases(stderr: str, spawned_at: datetime) -> dict[str, tuple[float, float]]:
    """phase -> (seconds after spawn when it ended, its length), from the crawl's JSON log."""
    out: dict[str, tuple[float, float]] = {}
    for line in stderr.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "phase" in doc and "time" in doc:
            ended = (datetime.fromisoformat(doc["time"]) - spawned_at).total_seconds()
            out[str(doc["phase"])] = (ended, float(doc.get("seconds", 0.0)))
    return out


def _timeline(times: list[float], phases: dict[str, tuple[float, float]], wall: float) -> dict[str, float]:
    """Where the wall time went: start-up (spawn → first request), requests (first → last),
    the pages still in hand after the last request, the story pass, and the rest (run
    record, search index, process exit); that rest split, when the crawl logs it, into the
    run record (`run_record`) and what follows it (`after_run_record`: the search index,
    the summary, the process's exit)."""
    if not times:
        return {}
    first, last = min(times), max(times)
    out = {"startup": first, "requests": last - first}
    crawl_end = phases.get("crawl", (None, 0.0))[0]
    settle_end, settle = phases.get("story pass", (None, 0.0))
    if crawl_end is not None:
        out["after_last_request"] = crawl_end - last
    if settle_end is not None:
        out["story_pass"] = settle
        out["after_story_pass"] = wall - settle_end
    record_end, record = phases.get("run record", (None, 0.0))
    if record_end is not None:
        out["run_record"] = record
        out["after_run_record"] = wall - record_end
    return {k: round(v, 2) for k, v in out.items()}


def run(workdir: Path, outlets: int = OUTLETS, per_outlet: int = PER_OUTLET,
        extra: dict[str, Any] | None = None) -> list[Figure]:
    from veille.crawler.canonical import canonical_url
    from veille.crawler.replay import ReplayServer

    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "outlets100"
    manifest = make_corpus(root, outlets, per_outlet)
    log(f"outlets100: {len(manifest.outlets)} outlets, {manifest.pages} articles")
    crawl_cfg = shipped_crawl()
    delay = float(crawl_cfg.get("download_delay", 1.0))
    db = workdir / "outlets100.db"
    for p in workdir.glob("outlets100.db*"):
        p.unlink()
    with ReplayServer(root) as srv:
        cfg = {"database": {"url": f"sqlite:///{db}"}, "crawl": crawl_cfg, "outlets": srv.outlet_configs(),
               "topics": repo_topics()}
        cfg_path = write_config(workdir / "outlets100.yaml", cfg)
        log(f"outlets100: veille crawl with the shipped settings (download_delay {delay:g} s, "
            f"concurrency_per_domain {crawl_cfg.get('concurrency_per_domain')})")
        spawned, spawned_at = time.monotonic(), datetime.now(UTC)
        # -v: the crawl logs its phases (crawler.run._phase) as JSON lines on stderr
        crawl = run_child(veille("crawl", "--config", str(cfg_path), "-v", "--log-format", "json"),
                          monitor=True)
        per_outlet_requests: dict[str, int] = {}
        for e in srv.access_log:
            per_outlet_requests[e.outlet] = per_outlet_requests.get(e.outlet, 0) + 1
        times = [e.at - spawned for e in srv.access_log]
        gap = min_gap(srv.access_log)
        gap_mean = mean_gap(srv.access_log)
        wanted = {o: {canonical_url(srv.base(o) + a["path"]) or "" for a in arts}
                  for o, arts in expected_articles(root).items()}
    db_state = _stored(db)
    started, first = db_state.started, db_state.first
    got = {o: len(urls & db_state.settled) for o, urls in wanted.items()}
    expected = {o: len(urls) for o, urls in wanted.items()}
    stored_share = sum(got.values()) / max(1, sum(expected.values()))
    short = sorted(o for o, n in expected.items() if got[o] < n)
    run_wall = ((db_state.finished - started).total_seconds()
                if started is not None and db_state.finished is not None else None)
    # a site's requests go one download_delay apart: the first at once, the last (n-1) delays later
    bound = max((n - 1) * delay for n in per_outlet_requests.values()) if per_outlet_requests else 0.0
    busiest = max(per_outlet_requests, key=lambda o: per_outlet_requests[o]) if per_outlet_requests else ""
    wall = crawl.seconds
    r = ratio(wall, bound)
    phases = logged_phases(crawl.stderr or "", spawned_at)
    timeline = _timeline(times, phases, wall)
    waits = [(first[o] - started).total_seconds() for o in expected if o in first and started] if started else []
    shares = [w / wall for w in waits]
    max_share = max(shares) if shares else None
    p90 = _percentile(shares, 0.9) if shares else None
    never = len(expected) - len(waits)
    data = {
        "outlets": len(expected), "articles_expected": sum(expected.values()),
        "articles_stored": sum(got.values()), "stored_share": round(stored_share, 4),
        "run_wall_s": None if run_wall is None else round(run_wall, 2),
        "run_wall_ratio": None if run_wall is None or not bound else round(run_wall / bound, 3),
        "first_request_s": round(min(times), 2) if times else None,
        "last_request_s": round(max(times), 2) if times else None,
        "outlets_missing_articles": short, "wall_s": round(wall, 2), "delay_bound_s": round(bound, 2),
        "wall_ratio": None if r is None else round(r, 3), "download_delay": delay,
        "requests_per_outlet": {"min": min(per_outlet_requests.values(), default=0),
                                "max": max(per_outlet_requests.values(), default=0)},
        "peak_rss_mib": round(crawl.peak_rss / 2**20, 1), "cpu_s": round(crawl.cpu_seconds, 2),
        "first_article_share_max": None if max_share is None else round(max_share, 3),
        "first_article_share_p90": None if p90 is None else round(p90, 3),
        "first_article_s_max": round(max(waits), 2) if waits else None,
        "outlets_without_article": never, "exit": crawl.code, "crawl_settings": crawl_cfg,
        "timeline_s": timeline, "min_request_gap_s": None if gap is None else round(gap, 3),
        "mean_request_gap_s": None if gap_mean is None else round(gap_mean, 3),
    }
    if extra is not None:
        extra["outlets100"] = data
    note = f"exit {crawl.code}" + (f"; {(crawl.stderr or '').strip().splitlines()[-1:]}" if crawl.code else "")
    return [
        Figure("outlets100", "expected articles stored", round(stored_share, 3), "share", target="1.0",
               met=stored_share >= 1.0, note=f"{sum(got.values())} of {sum(expected.values())} expected "
               f"pages point at an article, from {len(expected)} outlets; short: {', '.join(short[:8]) or 'none'}; "
               f"{note}"),
        Figure("outlets100", "wall time / what the delays impose", round(wall, 1), "s", round(bound, 1),
               "s delay bound", None if r is None else round(r, 3), f"≤ {TARGET}", r is not None and r <= TARGET,
               f"bound = max over outlets of (requests − 1) × download_delay {delay:g} s "
               f"(busiest: {busiest}, {per_outlet_requests.get(busiest, 0)} requests); wall from spawn to exit; "
               f"requests from {min(times, default=0):.1f} s to {max(times, default=0):.1f} s after spawn; "
               f"the run as recorded took {run_wall or 0:.1f} s"),
        Figure("outlets100", "shortest interval between two requests to one site", None if gap is None
               else round(gap, 2), "s", delay, "s download_delay", None if gap is None else round(gap / delay, 3)
               if delay else None, "≥ 0.95", gap is not None and delay > 0 and gap >= 0.95 * delay,
               "as the replay server saw them arrive (a site's delay runs from its last answer, "
               f"crawler.pace); mean interval {gap_mean or 0:.3f} s; "
               "timeline: " + ", ".join(f"{k} {v:g} s" for k, v in timeline.items())),
        Figure("outlets100", "peak RSS of the crawl's process tree", round(crawl.peak_rss / 2**20), "MiB",
               note=f"{crawl.cpu_seconds:.1f} CPU s in {wall:.1f} s wall"),
        Figure("outlets100", "first article stored, latest outlet (share of wall)",
               None if max_share is None else round(max_share, 3), "share",
               note=f"90th percentile {p90 if p90 is None else round(p90, 3)}; {never} outlets stored nothing; "
               f"latest after {max(waits) if waits else 0:.1f} s"),
    ]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile
    import time

    from bench.common import machine
    from bench.report import print_table, write_json

    ap = argparse.ArgumentParser(prog="python -m bench.outlets100", description=__doc__.split("\n\n")[0])
    ap.add_argument("--outlets", type=int, default=OUTLETS)
    ap.add_argument("--per-outlet", type=int, default=PER_OUTLET)
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="veille-outlets100-") as tmp:
        figures = run(args.keep or Path(tmp), args.outlets, args.per_outlet, extra)
    info = machine()
    info["bench_seconds"] = round(time.perf_counter() - t0)
    print_table(figures, info)
    if not args.no_write:
        write_json(args.out, figures, info, extra)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
