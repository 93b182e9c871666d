"""Throughput: `veille crawl` end to end against bare trafilatura, on the same HTML bytes.

(A) baseline: `trafilatura.extract(html, url=url)` over every article page of the corpus,
    one after the other in this process: pages/s.
(B) `veille crawl` of the corpus served on 127.0.0.1 (child process, fresh SQLite, no
    download delay, high concurrency): article pages stored / wall time from spawn to
    exit, pages/s. Target B/A >= 1.0 on 2 cores.

Also measured, to explain B: the CPU the crawl used (cores busy = CPU s / wall s), and
the cost of each pipeline stage per page in one process (pipeline extract, classify,
hashes, story features, index look-ups) as a multiple of a bare trafilatura extraction.
With `profile=True` a second crawl runs under py-spy (or pyinstrument, see bench.profile);
the top of its profile goes to bench/profile_throughput.txt.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BENCH_CRAWL, ROOT, Figure, Workspace, crawl, log, machine, ratio, run_child

PROFILE_TXT = ROOT / "bench" / "profile_throughput.txt"
STAGE_SAMPLE = 500
WARM_UP = 20
# the crawl process keeps big in-memory indexes: each full collection walks them all
GC_WHAT_IF = "import gc; gc.set_threshold(50_000, 50, 100)"


def load_pages(ws: Workspace) -> list[tuple[str, str, bytes]]:
    """(outlet, url, body) of every article page, exactly as the server sends them."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    srv = ws.server
    out = []
    for outlet, paths in sorted(ws.article_paths().items()):
        folder = ws.corpus / outlet
        routes = yaml.load((folder / "routes.yaml").read_text(encoding="utf-8"), Loader=loader)
        base = srv.base(outlet)
        for path in sorted(paths):
            body = (folder / routes[path]["file"]).read_text(encoding="utf-8").replace("{{BASE}}", base)
            out.append((outlet, base + path, body.encode("utf-8")))
    return out


def bare_extraction(pages: list[tuple[str, str, bytes]]) -> tuple[float, int, float]:
    """Seconds for trafilatura.extract over every page (after a short warm-up), texts got,
    and the CPU seconds of this process meanwhile."""
    import trafilatura

    for _, url, body in pages[:WARM_UP]:
        trafilatura.extract(body, url=url)
    ok = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _, url, body in pages:
        ok += bool(trafilatura.extract(body, url=url))
    return time.perf_counter() - t0, ok, time.process_time() - c0


def scrapy_floor(urls_json: str) -> None:
    """In a child process: a bare Scrapy crawl of the given pages (JSON: outlet -> URLs),
    one spider per outlet in one CrawlerProcess as `veille crawl` runs them, with its
    concurrency and reactor, and a callback that does nothing."""
    import json

    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    from veille.crawler.settings import ASYNCIO_REACTOR

    per_outlet = BENCH_CRAWL["concurrency_per_domain"]

    class Bare(Spider):  # type: ignore[misc]
        name = "bare"

        def __init__(self, urls: list[str], **kw: Any) -> None:
            super().__init__(**kw)
            self.urls = urls

        async def start(self) -> Any:
            for url in self.urls:
                yield Request(url, callback=self.noop, dont_filter=True)

        def noop(self, response: Any) -> None:
            return None

    process = CrawlerProcess({
        "TWISTED_REACTOR": ASYNCIO_REACTOR, "LOG_LEVEL": "WARNING", "ROBOTSTXT_OBEY": False,
        "COOKIES_ENABLED": False, "TELNETCONSOLE_ENABLED": False, "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False, "CONCURRENT_REQUESTS": per_outlet * 2,
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_outlet, "RETRY_ENABLED": False,
    })
    for outlet, urls in json.loads(Path(urls_json).read_text(encoding="utf-8")).items():
        process.crawl(Bare, urls=urls, name=f"bare-{outlet}")
    process.start()


def scrapy_floor_cpu(ws: Workspace, pages: list[tuple[str, str, bytes]]) -> tuple[float, float, int]:
    """CPU seconds and wall seconds of the bare Scrapy crawl (its process tree, not the
    replay server, which runs in this process), and the pages it requested."""
    import json
    import sys

    by_outlet: dict[str, list[str]] = {}
    for outlet, url, _ in pages:
        by_outlet.setdefault(outlet, []).append(url)
    urls = ws.workdir / "scrapy-floor.json"
    urls.write_text(json.dumps(by_outlet), encoding="utf-8")
    ws.server.clear_log()
    entry = scrapy_floor.__name__
    run = run_child([sys.executable, "-c", f"from bench.throughput import {entry}; {entry}({str(urls)!r})"],
                    monitor=True)
    got = sum(1 for e in ws.server.access_log if e.status == 200)
    if run.code != 0:
        log(f"throughput: bare Scrapy crawl failed (exit {run.code}): {run.stderr[-500:]}")
    return run.cpu_seconds, run.seconds, got


def stage_costs(pages: list[tuple[str, str, bytes]], topics: Any) -> dict[str, float]:
    """Milliseconds per page of each pipeline stage, in this process, on a sample of pages."""
    from veille.pipeline.classify import classify
    from veille.pipeline.dedup import DuplicateIndex, content_hash, minhash
    from veille.pipeline.extract import extract
    from veille.pipeline.stories import StoryIndex, article_features
    from veille.pipeline.types import Article, RawPage

    step = max(1, len(pages) // STAGE_SAMPLE)
    sample = pages[::step][:STAGE_SAMPLE]
    now = datetime.now(UTC)
    raw = [RawPage(url, url, outlet, 200, {"content-type": "text/html; charset=utf-8"}, body, now)
           for outlet, url, body in sample]
    for page in raw[:WARM_UP]:
        extract(page)
    spent = dict.fromkeys(("extract", "classify", "hashes", "features", "indexes"), 0.0)
    dup, stories = DuplicateIndex(), StoryIndex()
    for i, page in enumerate(raw):
        t0 = time.perf_counter()
        art = extract(page)
        t1 = time.perf_counter()
        spent["extract"] += t1 - t0
        if not isinstance(art, Article):
            continue
        classify(art.title, art.text, topics)
        t2 = time.perf_counter()
        content_hash(art.text)
        sig = minhash(art.text)
        t3 = time.perf_counter()
        feats = article_features(art.title, art.text, art.language)
        t4 = time.perf_counter()
        if dup.find(sig) is None:
            dup.add(str(i), sig)
            key = stories.match(feats, art.published) or str(i)
            stories.add(key, feats, art.published)
        t5 = time.perf_counter()
        spent["classify"] += t2 - t1
        spent["hashes"] += t3 - t2
        spent["features"] += t4 - t3
        spent["indexes"] += t5 - t4
    return {k: 1000 * v / len(raw) for k, v in spent.items()}


def cpu_floor(ws: Workspace, pages: list[tuple[str, str, bytes]], extract_cpu: float,
              veille_cpu: float, stored: int) -> list[Figure]:
    """CPU per stored page of `veille crawl` (every process of it) against the floor of the
    two libraries it stands on, on the same pages: a bare Scrapy crawl with a no-op
    callback (CPU per request) plus bare trafilatura.extract (CPU per page)."""
    log("throughput: bare Scrapy crawl of the same pages, no-op callback")
    scrapy_cpu, scrapy_wall, requested = scrapy_floor_cpu(ws, pages)
    n = len(pages)
    floor_scrapy = scrapy_cpu / requested if requested else None
    floor_extract = extract_cpu / n
    per_page = veille_cpu / stored if stored else None
    floor = (floor_scrapy or 0) + floor_extract
    r = ratio(per_page, floor if floor_scrapy is not None else None)
    ws.extra["throughput"] = {
        "cpu_per_page_ratio": None if r is None else round(r, 3),
        "veille_cpu_per_page_ms": None if per_page is None else round(1000 * per_page, 2),
        "scrapy_floor_cpu_per_request_ms": None if floor_scrapy is None else round(1000 * floor_scrapy, 2),
        "trafilatura_floor_cpu_per_page_ms": round(1000 * floor_extract, 2),
        "pages": n, "stored": stored, "scrapy_requests": requested,
        "scrapy_wall_s": round(scrapy_wall, 2), "scrapy_cpu_s": round(scrapy_cpu, 2),
        "veille_cpu_s": round(veille_cpu, 2), "trafilatura_cpu_s": round(extract_cpu, 2),
    }
    return [
        Figure("throughput", "floor: bare Scrapy crawl, CPU per request",
               None if floor_scrapy is None else round(1000 * floor_scrapy, 2), "ms",
               note=f"{requested} pages in {scrapy_wall:.1f} s wall, {scrapy_cpu:.1f} CPU s of its process "
               "(the replay server is not counted); same concurrency, reactor and one spider per outlet"),
        Figure("throughput", "floor: bare trafilatura.extract, CPU per page", round(1000 * floor_extract, 2),
               "ms", note=f"{n} pages, {extract_cpu:.1f} CPU s in one process"),
        Figure("throughput", "veille crawl: CPU per stored page / floor",
               None if per_page is None else round(1000 * per_page, 2), "ms",
               round(1000 * floor, 2), "Scrapy + trafilatura floors", None if r is None else round(r, 3), "≤ 1.25",
               r is not None and r <= 1.25,
               f"{veille_cpu:.1f} CPU s of the crawl's process tree (extraction workers included) / "
               f"{stored} stored pages"),
    ]


CORPUS_FIGURES = {  # evaluate() key -> label; the replay's quality figures, on the corpus
    "stored": "expected articles stored",
    "keep": "extraction: keep sentences kept",
    "drop": "extraction: boilerplate dropped",
    "date": "dates correct",
    "duplicates": "duplicates linked (either way)",
    "topic_precision": "topic maroc-france-securite: precision",
    "topic_recall": "topic maroc-france-securite: recall",
    "pairs_precision": "stories: pairwise precision",
    "pairs_recall": "stories: pairwise recall",
    "pairs_f1": "stories: pairwise F1",
}


def corpus_quality(ws: Workspace, db: Path) -> list[Figure]:
    """The quality figures of `bench.quality`, on the crawl of the synthetic corpus: a
    bigger, harder test of clustering than the replay (events of one kind and week share
    names, places and vocabulary), though its texts are generated."""
    from bench.quality import Share, evaluate

    results = evaluate(db, {o: ws.server.base(o) for o in ws.article_paths()}, ws.corpus)
    figures = []
    for key, label in CORPUS_FIGURES.items():
        value = results.get(key)
        if isinstance(value, Share):
            note, value = f"{value.ok}/{value.total}", value.value
        else:
            note = ""
        figures.append(Figure("corpus", label, None if value is None else round(value, 3), "share", note=note))
    return figures


def run(ws: Workspace, profile: bool = True, what_if: bool = True) -> list[Figure]:
    from bench.common import repo_topics
    from veille.pipeline.config import config_from_dict

    figures: list[Figure] = []
    pages = load_pages(ws)
    n = len(pages)
    log(f"throughput: (A) bare trafilatura.extract over {n} pages")
    a_seconds, a_ok, a_cpu = bare_extraction(pages)
    a_pps = n / a_seconds
    figures.append(Figure("throughput", "A: bare trafilatura.extract, 1 process", round(a_pps, 1),
                          "pages/s", note=f"{n} pages, {1000 * a_seconds / n:.2f} ms/page, {a_ok} with text"))

    log("throughput: (B) veille crawl, end to end")
    first = crawl(ws, ws.workdir / "throughput.db")
    ws.first_crawl = first
    cpu = first.cpu_seconds
    stored = first.counts.get("pages_article", 0)
    b_pps = stored / first.seconds
    ok = first.code == 0 and stored > 0
    figures.append(Figure(
        "throughput", "B: veille crawl end to end", round(b_pps, 1), "pages/s", round(a_pps, 1), "A",
        ratio(b_pps, a_pps), "B/A ≥ 1.0", ok and b_pps >= a_pps,
        f"{stored} article pages stored of {n} in {first.seconds:.1f}s (exit {first.code}); "
        f"{first.counts.get('stories', 0)} stories"))
    figures.extend(corpus_quality(ws, ws.workdir / "throughput.db"))
    figures.extend(cpu_floor(ws, pages, a_cpu, cpu, stored))
    figures.append(Figure("throughput", "B: cores busy during the crawl", round(cpu / first.seconds, 2),
                          "cores", note=f"{cpu:.1f} CPU s (crawl + extraction workers, psutil) / {first.seconds:.1f} wall s; "
                          f"peak RSS of the process tree {first.peak_rss / 2**20:.0f} MiB"))

    if what_if:
        log("throughput: (B) again, what-if: fewer garbage collections in the crawl process")
        gc_run = crawl(ws, ws.workdir / "throughput-gc.db", prelude=GC_WHAT_IF)
        gc_stored = gc_run.counts.get("pages_article", 0)
        gc_pps = gc_stored / gc_run.seconds
        figures.append(Figure(
            "throughput", "B what-if: GC thresholds raised", round(gc_pps, 1), "pages/s", round(b_pps, 1), "B",
            ratio(gc_pps, b_pps), note=f"`{GC_WHAT_IF}` before veille crawl; {gc_stored} pages in "
            f"{gc_run.seconds:.1f}s (exit {gc_run.code}); not a product setting, a hint of what it would give"))

    log("throughput: pipeline stages, per page, in one process")
    topics = config_from_dict({"topics": repo_topics()}).topics
    stages = stage_costs(pages, topics)
    a_ms = 1000 * a_seconds / n
    for i, (stage, ms) in enumerate(stages.items()):
        figures.append(Figure("throughput", f"stage {stage}", round(ms, 2), "ms/page", round(a_ms, 2),
                              "A ms/page", ratio(ms, a_ms),
                              note="" if i else f"stages timed one after the other in one process, "
                              f"{min(STAGE_SAMPLE, n)} pages; indexes = duplicate + story look-ups and insertions"))

    if profile:
        from bench import profile as prof

        out = ws.workdir / "throughput.profile"
        prefix, kind = prof.command(out)
        log(f"throughput: (B) again under {kind}")
        run = crawl(ws, ws.workdir / "throughput-profile.db", profiler=prefix)
        if run.code == 0 and out.exists():
            sec, text = prof.summarize(out, kind, n, run.seconds)
            PROFILE_TXT.write_text(text, encoding="utf-8")
            busy = sec.get("crawl process busy") or 1.0
            top = sorted(((k, v) for k, v in sec.items() if k in prof.STEPS[1:] or k.startswith("sql")),
                         key=lambda kv: -kv[1])[:5]
            figures.append(Figure(
                "throughput", f"profile ({kind}): crawl process busy / wall", round(busy / run.seconds, 2),
                "share", note=f"Processor.store {sec.get('Processor.store', 0) / busy:.0%} of the crawl process; "
                + ", ".join(f"{k} {v / busy:.0%}" for k, v in top)
                + f"; workers busy {sec.get('extraction workers busy', 0):.0f} s of {run.seconds:.0f} s wall; "
                f"see bench/{PROFILE_TXT.name}"))
        else:
            figures.append(Figure("throughput", f"profile ({kind})", None,
                                  note=f"profiled crawl failed (exit {run.code}): {run.stderr_tail[-300:]}"))
    return figures


def main() -> int:
    import argparse
    import tempfile

    from bench.report import print_table

    ap = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="corpus pages")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
        ws = Workspace(Path(tmp), args.n)
        try:
            figures = run(ws, profile=not args.no_profile, what_if=not args.no_profile)
        finally:
            ws.close()
    print_table(figures, machine())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
