"""Archive scale: a routine crawl and the reading commands on a year of stored articles.

`build(url, n)` writes an archive of `n` stored articles over the year up to now, the
way a year of crawls every 30 minutes leaves it, straight through the storage models
(`insert()` of many rows per statement, one transaction per batch), not article by
article through the pipeline:

- stories of one to eight articles: originals of one event by several outlets, their
  syndicated copies (`duplicate_of`), updates in place (`versions` > 1) and updates
  under a new URL (a `duplicate` page row); topic matches on a few percent;
- texts, titles, story features, MinHash signatures and topic matches computed by the
  pipeline itself (`pipeline.prepare`) once for a pool of generated reports
  (`bench.corpus`) and reused: an event's names, numbers and dates are renamed at each
  reuse so that no two stories share them, and each original gets a signature of its
  own (the same distribution as a real one's, with its pool text's shingle count);
- pages (article, duplicate, skipped), a crawl run every 30 minutes with its per-outlet
  rows, a digest every morning to the configured list with its items and articles,
  template lines, feed validators;
- what the crawls keep as they store (schema 0007): the duplicate index's LSH bands
  (`storage.duplicates`, `pipeline.dedup.band_keys`) of the originals first seen in its
  window (`pipeline.process.INDEX_DAYS`), and each story's `born`, so the first crawl
  after a build finds them there instead of back-filling them once.

Then on each archive: a routine `veille crawl` of ~50 new pages of the bench corpus
(published in the last days) served on 127.0.0.1: wall, CPU and peak RSS of its
process tree, and the time of its story pass (`bench.archive_probe`); then `veille
stories --json`, `veille status --json`, `veille digest --dry-run` and `veille search`
(when the command exists); the database's size. Every measure is a ratio to the same
measure on the 10k archive of the same run. With `--profile-sizes` a second crawl on a
copy of the archive runs under py-spy with every SQL statement recorded, and the plans
SQLite chooses for them (`EXPLAIN QUERY PLAN`) go to bench/archive_sql.txt.

History length and daily volume are measured apart: the sizes above all span a year, so
they grow the daily volume (27, 274, 2,740 articles a day); a size written `N@Ky` spans K
years instead (`100000@10y` has the 10k archive's daily volume over ten years). Such an
archive's measures are also given as ratios to the one-year archive of the same daily
volume (`<measure>_history_ratio`): what a longer history alone costs.

`python -m bench.archive [--sizes 10000,100000,1000000,100000@10y] [--postgres]`.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    ROOT,
    Figure,
    bench_config,
    expected_articles,
    log,
    ratio,
    repo_topics,
    run_child,
    veille,
    write_config,
)

SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_SIZES = (10_000, 100_000)
PROFILE_SIZES = (10_000, 100_000)
NEW_PAGES = 50
WARM_PAGES = 12  # the first crawl after the build
POOL_REPORTS = 3000
BATCH = 20_000  # articles per transaction of the builder
YEAR = timedelta(days=365)
RUN_EVERY = timedelta(minutes=30)
STORY_SIZES = (1, 2, 3, 4, 5, 6, 7, 8)
STORY_WEIGHTS = (50, 20, 10, 7, 5, 4, 2, 2)  # mean ~2.3 articles a story
ORIGINAL_SHARE = 0.88  # of a story's articles after its first; the rest are syndicated copies
UPDATED_SHARE = 0.06  # originals updated in place (versions 2-4)
NEW_URL_SHARE = 0.04  # originals with an update under another URL (a duplicate page)
SKIPPED_SHARE = 0.15  # skipped pages (listings, videos...) per article
ON_TOPIC_SHARE = 0.04  # of pool events: topic matches on a few percent of articles
TEMPLATE_LINES = 400  # per outlet
DIGEST_TO = ["analyst@example.org"]
DIGEST_HOUR = 7  # UTC, roughly the configured 07:00 Africa/Casablanca
SEARCH_QUERY = "Interpol"
REPEAT_BUDGET = 60.0  # seconds a reading command may take in all its repeats
INTERLEAVE_ROUNDS = 2  # more runs of the reading commands, archive after archive
SPECIFIC = ("e:", "n:", "d:")  # feature kinds that identify an event (renamed at each reuse)
SQL_TXT = ROOT / "bench" / "archive_sql.txt"
SQL_SHOWN = 15  # statements per run in archive_sql.txt, by time spent
PROFILE_TXT = ROOT / "bench" / "archive_profile.txt"
MEASURES = ("crawl_wall", "crawl_cpu", "crawl_rss", "settle", "stories", "status", "digest", "search")
SKIP_REASONS = ("not an article: listing", "not an article: video", "no text", "too short",
                "not an article: tag page")


@dataclass(frozen=True, order=True)
class Spec:
    """An archive to build: `articles` stored over `years` years up to now."""

    articles: int
    years: int = 1

    @property
    def label(self) -> str:
        return str(self.articles) if self.years == 1 else f"{self.articles}-{self.years}y"

    @property
    def span(self) -> timedelta:
        return self.years * YEAR


def parse_specs(text: str) -> tuple[Spec, ...]:
    """`10000,1000000@10y` -> the archives to build (a bare size spans one year)."""
    specs = []
    for item in (t.strip() for t in text.split(",")):
        if item:
            n, _, years = item.partition("@")
            specs.append(Spec(int(n), int(years.rstrip("y")) if years else 1))
    return tuple(specs)


# ---------------------------------------------------------------- the pool


@dataclass(frozen=True)
class PoolText:
    """One generated report as the pipeline prepared it."""

    event: str
    outlet: str
    lang: str
    title: str
    text: str
    author: str
    features: tuple[str, ...]
    shingles: int  # distinct shingles of the text: the signature's size
    signature: bytes
    matches: tuple[tuple[str, float, list[dict[str, Any]]], ...]


def _prepare_one(args: tuple[Any, ...]) -> PoolText:
    from veille.pipeline.dedup import signature_from_bytes
    from veille.pipeline.prepare import prepare
    from veille.pipeline.types import Article

    event, outlet, lang, title, text, author, topics = args
    p = prepare(Article(f"https://pool.invalid/{event}/{outlet}", outlet, title, text, None, author, None, lang),
                topics)
    matches = tuple((m.topic, m.score, [{"term": h.term, "field": h.field, "count": h.count} for h in m.matched])
                    for m in p.matches)
    size = signature_from_bytes(p.signature_bytes).size
    return PoolText(event, outlet, lang, p.article.title, p.article.text, author, p.features, size,
                    p.signature_bytes, matches)


def make_pool(n: int = POOL_REPORTS, seed: int = 17, cache: Path | None = None) -> list[PoolText]:
    """`n` reports of `bench.corpus` (no copies: the builder makes its own), prepared by
    the pipeline in a process pool; cached in `cache` when given."""
    if cache is not None and cache.exists():
        pool: list[PoolText] = pickle.loads(cache.read_bytes())
        if len(pool) == n:
            return pool
    from concurrent.futures import ProcessPoolExecutor

    from bench.corpus import plan
    from veille.pipeline.config import config_from_dict

    topics = config_from_dict({"topics": repo_topics()}).topics
    reports = plan(n, seed, copy_share=0.0, update_share=0.0, on_topic_share=ON_TOPIC_SHARE)
    jobs = [(r.event, r.outlet, r.lang, r.title, "\n\n".join(r.paragraphs), r.author, topics) for r in reports]
    with ProcessPoolExecutor(2) as ex:
        pool = list(ex.map(_prepare_one, jobs, chunksize=50))
    if cache is not None:
        cache.write_bytes(pickle.dumps(pool))
    return pool


# ---------------------------------------------------------------- the builder


def _rename(features: tuple[str, ...], reuse: int) -> list[str]:
    """An event's own features (names, numbers, dates) made unique to this reuse."""
    if reuse == 0:
        return list(features)
    return [f"{f}~{reuse}" if f.startswith(SPECIFIC) else f for f in features]


class Signatures:
    """Fresh MinHash signatures with a given shingle count, drawn as a real one is: each
    of the 128 values is the minimum of `size` uniform 32-bit hashes."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def make(self, template: bytes, size: int) -> bytes:
        header = template[:12]
        u = self.rng.random(128)
        values = np.floor((1.0 - (1.0 - u) ** (1.0 / max(size, 1))) * 2**32).astype("<u8")
        return header + values.tobytes()


@dataclass
class BuildStats:
    """What `build` wrote."""

    articles: int = 0
    originals: int = 0
    copies: int = 0
    updated: int = 0
    new_url_updates: int = 0
    stories: int = 0
    pages: int = 0
    topic_matches: int = 0
    crawl_runs: int = 0
    outlet_runs: int = 0
    digests: int = 0
    digest_items: int = 0
    digest_articles: int = 0
    template_lines: int = 0
    bands: int = 0  # duplicate index rows (originals of its window)
    seconds: float = 0.0
    end: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Batch:
    articles: list[dict[str, Any]] = field(default_factory=list)
    stories: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    topics: list[dict[str, Any]] = field(default_factory=list)
    bands: dict[int, list[int]] = field(default_factory=dict)  # article id → its LSH band keys


def _outlet_rows(outlets: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    return [{"id": i + 1, "name": name, "url": url, "language": lang, "template_pages": 0}
            for i, (name, url, lang) in enumerate(outlets)]


def build(url: str, n: int, *, pool: list[PoolText], seed: int = 7, end: datetime | None = None,
          outlets: list[tuple[str, str, str]] | None = None, span: timedelta = YEAR) -> BuildStats:
    """Write an archive of `n` stored articles over the year before `end` into the
    (empty) database at `url`, through the storage models. See the module docstring.

    Args:
        url: a database URL; the schema is created by the project's migrations.
        n: stored articles (originals and copies).
        pool: prepared texts (`make_pool`).
        seed: same seed, same archive.
        end: the archive's last moment (default: now).
        outlets: (name, url, language) of the outlets; default the bench corpus's six.
        span: how long the archive reaches back (a year).
    """
    from sqlalchemy import insert, update

    from bench.corpus import OUTLETS
    from veille.pipeline.dedup import band_keys, signature_from_bytes
    from veille.pipeline.process import INDEX_DAYS
    from veille.storage.db import Database
    from veille.storage.digests import recipients_key
    from veille.storage.models import (
        Article,
        CrawlRun,
        Digest,
        DigestArticle,
        DigestItem,
        FeedState,
        Outlet,
        OutletRun,
        Page,
        Story,
        TemplateLine,
        TopicMatchRow,
    )

    t0 = time.perf_counter()
    rng = random.Random(seed)
    sigs = Signatures(seed)
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    start = end - span
    outlets = outlets or [(o.name, f"https://{o.name}.example", o.lang) for o in OUTLETS]
    outlet_id = {name: i + 1 for i, (name, _, _) in enumerate(outlets)}
    by_lang: dict[str, list[str]] = defaultdict(list)
    for name, _, lang in outlets:
        by_lang[lang].append(name)
    events: dict[str, list[PoolText]] = defaultdict(list)
    for p in pool:
        events[p.event].append(p)
    event_list = list(events.values())
    mean_size = sum(s * w for s, w in zip(STORY_SIZES, STORY_WEIGHTS, strict=True)) / sum(STORY_WEIGHTS)
    gap = span / (n / mean_size)
    stats = BuildStats(end=end.isoformat())
    db = Database(url)
    engine = db.engine
    with engine.begin() as conn:
        conn.execute(insert(Outlet), _outlet_rows(outlets))
    per_outlet = defaultdict(int)
    flagged: list[tuple[datetime, int, list[int]]] = []  # (first seen, story id, article ids)
    article_id = story_id = 0
    batch = _Batch()

    search = _search_writer()
    index_since = end - timedelta(days=INDEX_DAYS)  # the duplicate index's window

    def flush() -> None:
        nonlocal batch
        with engine.begin() as conn:
            if batch.stories:
                conn.execute(insert(Story), batch.stories)
            for chunk in (batch.articles[i:i + 2000] for i in range(0, len(batch.articles), 2000)):
                conn.execute(insert(Article), chunk)
            if batch.pages:
                conn.execute(insert(Page), batch.pages)
            if batch.topics:
                conn.execute(insert(TopicMatchRow), batch.topics)
            if search is not None:
                search(conn, batch.articles)
            if batch.bands:
                stats.bands += _write_bands(conn, batch.bands)
        stats.pages += len(batch.pages)
        stats.topic_matches += len(batch.topics)
        batch = _Batch()

    k = 0
    while article_id < n:
        # placed by the articles made so far, not by the stories: story sizes are drawn,
        # and over ten years their drift from the mean left the archive's last weeks empty
        when = start + span * (article_id / n) + timedelta(seconds=rng.uniform(0, gap.total_seconds()))
        event = event_list[k % len(event_list)]
        reuse = k // len(event_list)
        k += 1
        story_id += 1
        size = min(rng.choices(STORY_SIZES, STORY_WEIGHTS)[0], n - article_id)
        members: list[dict[str, Any]] = []
        originals: list[tuple[dict[str, Any], PoolText]] = []
        for j in range(size):
            published = min(when + timedelta(hours=rng.uniform(0, 48)), end - timedelta(hours=1))
            seen = min(published + timedelta(minutes=rng.uniform(5, 180)), end)
            article_id += 1
            is_copy = j > 0 and rng.random() > ORIGINAL_SHARE
            if is_copy:
                orig_row, text = rng.choice(originals)
                others = [o for o in by_lang[text.lang] if o != text.outlet] or [
                    o for o in outlet_id if o != text.outlet]
                outlet = rng.choice(others)
                sig, digest, features = orig_row["minhash"], orig_row["content_hash"], None
                dup_of: int | None = orig_row["id"]
                stats.copies += 1
            else:
                cycle, pick = divmod(len(originals), len(event))
                text = event[pick]
                # more originals than the event has reports: its texts again, by other outlets
                outlet = text.outlet if cycle == 0 else rng.choice(
                    [o for o in by_lang[text.lang] if o != text.outlet] or list(outlet_id))
                fresh = reuse or cycle
                sig = sigs.make(text.signature, text.shingles) if fresh else text.signature
                digest = hashlib.sha256(f"{text.event}/{reuse}/{article_id}".encode()).hexdigest()
                features = _rename(text.features, reuse)
                dup_of = None
                stats.originals += 1
            versions, updated = 1, seen
            if dup_of is None and rng.random() < UPDATED_SHARE:
                versions = rng.randint(2, 4)
                updated = min(seen + timedelta(hours=rng.uniform(1, 30)), end)
                stats.updated += 1
            url = f"https://{outlet}.example/{published:%Y/%m/%d}/a{article_id}"
            row = {
                "id": article_id, "url": url, "final_url": None, "outlet_id": outlet_id[outlet],
                "story_id": story_id, "duplicate_of_id": dup_of, "title": text.title, "text": text.text,
                "published": published, "published_offset": 60, "author": text.author,
                "site_name": outlet, "language": text.lang, "content_hash": digest, "minhash": sig,
                "features": features, "first_seen": seen, "updated_at": updated, "versions": versions,
            }
            members.append(row)
            if dup_of is None:
                originals.append((row, text))
                if seen >= index_since:  # as the crawl that stored it left it
                    batch.bands[article_id] = band_keys(signature_from_bytes(sig))
            per_outlet[outlet] += 1
            batch.articles.append(row)
            batch.pages.append({"url": url, "outlet_id": outlet_id[outlet], "kind": "article",
                                "article_id": article_id, "reason": None, "content_hash": digest,
                                "fetched_at": updated})
            if dup_of is None and rng.random() < NEW_URL_SHARE:
                batch.pages.append({"url": url + "-maj", "outlet_id": outlet_id[outlet], "kind": "duplicate",
                                    "article_id": article_id, "reason": "update of an earlier URL",
                                    "content_hash": digest, "fetched_at": updated})
                stats.new_url_updates += 1
            if rng.random() < SKIPPED_SHARE:
                batch.pages.append({"url": f"https://{outlet}.example/rubrique/p{article_id}",
                                    "outlet_id": outlet_id[outlet], "kind": "skipped", "article_id": None,
                                    "reason": rng.choice(SKIP_REASONS), "content_hash": None,
                                    "fetched_at": seen})
            for topic, score, matched in text.matches:
                batch.topics.append({"article_id": article_id, "topic": topic, "score": score,
                                     "matched": matched})
        head = min(members, key=lambda r: (r["published"], r["url"]))
        merged = [f for r in sorted(members, key=lambda r: (r["published"], r["url"]))
                  for f in (r["features"] or ())]
        story = {
            "id": story_id, "title": head["title"], "published": head["published"], "published_offset": 60,
            "features": list(dict.fromkeys(merged))[:80],
            "first_seen": min(r["first_seen"] for r in members),
            "last_seen": max(r["updated_at"] for r in members),
        }
        # schema 0007: the publication of its first original, as the story pass leaves it
        story["born"] = min(r["published"] for r in members if r["duplicate_of_id"] is None)
        batch.stories.append(story)
        if any(text.matches for _, text in originals):
            flagged.append((min(r["first_seen"] for r in members), story_id, [r["id"] for r in members]))
        if len(batch.articles) >= BATCH:
            flush()
            log(f"archive {n:,}: {article_id:,} articles")
    flush()
    stats.articles, stats.stories = article_id, story_id

    with engine.begin() as conn:  # the outlets' template evidence and feed validators
        for name, count in per_outlet.items():
            conn.execute(update(Outlet).where(Outlet.id == outlet_id[name]).values(template_pages=count))
        lines = [{"outlet_id": outlet_id[name], "fingerprint": f"{rng.getrandbits(64):016x}",
                  "pages": rng.randint(2, max(3, per_outlet[name])), "since": 0,
                  "last_seen": end - timedelta(days=rng.uniform(0, 30))}
                 for name in outlet_id for _ in range(TEMPLATE_LINES)]
        conn.execute(insert(TemplateLine), lines)
        stats.template_lines = len(lines)
        conn.execute(insert(FeedState), [
            {"url": f"https://{name}.example/{what}", "etag": f'"{rng.getrandbits(32):x}"',
             "last_modified": None, "last_fetched": end, "last_full_fetch": end - timedelta(hours=6)}
            for name in outlet_id for what in ("feed/", "sitemap_index.xml")])

    runs = _crawl_runs(start, end, list(outlet_id), per_outlet, rng)
    run_rows, outlet_rows = runs
    with engine.begin() as conn:
        conn.execute(insert(CrawlRun), run_rows)
        conn.execute(insert(OutletRun), outlet_rows)
    stats.crawl_runs, stats.outlet_runs = len(run_rows), len(outlet_rows)

    key = recipients_key(DIGEST_TO)
    digests, items, arts, digest_runs = [], [], [], []
    flagged.sort()
    day = (start + timedelta(days=1)).replace(hour=DIGEST_HOUR, minute=0, second=0)
    i = 0
    while day < end:
        ids: list[tuple[int, list[int]]] = []
        while i < len(flagged) and flagged[i][0] < day:
            ids.append((flagged[i][1], flagged[i][2]))
            i += 1
        if ids:
            did = len(digests) + 1
            digests.append({"id": did, "created_at": day, "sent_at": day + timedelta(seconds=20),
                            "status": "sent", "recipients": ",".join(DIGEST_TO), "recipients_key": key,
                            "subject": f"Veille — {day:%Y-%m-%d}: {len(ids)} stories",
                            "message_id": f"<{did}@bench.invalid>", "error": None})
            items += [{"digest_id": did, "story_id": s, "recipients_key": key} for s, _ in ids]
            arts += [{"digest_id": did, "article_id": a, "story_id": s, "recipients_key": key}
                     for s, members in ids for a in members]
        digest_runs.append({"id": len(run_rows) + len(digest_runs) + 1, "kind": "digest", "started_at": day, "finished_at": day + timedelta(seconds=25),
                            "status": "ok", "pid": 1, "host": "bench", "errors": [], "message": None})
        day += timedelta(days=1)
    with engine.begin() as conn:
        if digests:
            conn.execute(insert(Digest), digests)
            conn.execute(insert(DigestItem), items)
            conn.execute(insert(DigestArticle), arts)
        conn.execute(insert(CrawlRun), digest_runs)
    stats.digests, stats.digest_items, stats.digest_articles = len(digests), len(items), len(arts)
    if engine.dialect.name == "postgresql":  # ids were given: move each sequence past them
        from sqlalchemy import text

        from veille.storage.models import Base

        with engine.begin() as conn:
            for table in Base.metadata.sorted_tables:
                if "id" in table.c and table.c.id.autoincrement:
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                      f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    stats.seconds = round(time.perf_counter() - t0, 1)
    return stats


def _search_writer() -> Any:
    """What keeps the search index (`storage.search`, schema 0006) as the crawls would have
    kept it: each article's folded text (`pipeline.search_text`, folded once per pool
    text) written by the storage module, in the builder's transaction. None before
    that schema."""
    try:
        from sqlalchemy.orm import Session

        from veille.pipeline.search_text import document_text
        from veille.storage.search import IndexDoc, write_search_docs
    except ImportError:
        return None
    folded: dict[tuple[str, str], str] = {}

    def write(conn: Any, rows: list[dict[str, Any]]) -> None:
        docs = []
        for r in rows:
            key = (r["title"], r["text"])
            if key not in folded:
                folded[key] = document_text(r["title"], r["text"])
            docs.append(IndexDoc(r["id"], r["versions"], r["updated_at"], folded[key]))
        with Session(bind=conn) as session:
            for i in range(0, len(docs), 2000):
                write_search_docs(session, docs[i:i + 2000])
            session.flush()

    return write


def _write_bands(conn: Any, bands: dict[int, list[int]]) -> int:
    """The duplicate index's rows of these new originals, written by the storage module
    (`storage.duplicates`) in the builder's transaction, 2,000 articles a statement."""
    from sqlalchemy.orm import Session

    from veille.storage.duplicates import replace_bands

    ids = list(bands)
    with Session(bind=conn) as session:
        for i in range(0, len(ids), 2000):
            replace_bands(session, {a: bands[a] for a in ids[i:i + 2000]}, new=True)
    return sum(len(set(keys)) for keys in bands.values())


def _crawl_runs(start: datetime, end: datetime, outlets: list[str], per_outlet: dict[str, int],
                rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A crawl every 30 minutes from `start` to `end`, with a row per outlet: what they found."""
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    slots = int((end - start) / RUN_EVERY)
    for k in range(slots):
        at = start + RUN_EVERY * (k + 1)
        if at >= end:
            break
        failed = rng.random() < 0.01
        runs.append({"id": k + 1, "kind": "crawl", "started_at": at,
                     "finished_at": at + timedelta(seconds=rng.uniform(20, 200)),
                     "status": "failed" if failed else "ok", "pid": 1000 + k % 30000, "host": "bench",
                     "errors": ["replay: timeout"] if failed else [], "message": None})
        for name in outlets:
            new = poisson(rng, per_outlet[name] / max(slots, 1))
            down = rng.random() < 0.005
            rows.append({"run_id": k + 1, "outlet": name, "status": "failing" if down else "ok",
                         "discovered": new + rng.randint(20, 60), "fetched": new + rng.randint(0, 3),
                         "new": new, "updated": int(rng.random() < 0.05), "skipped": rng.randint(0, 2),
                         "failed": int(down), "errors": ["HTTP 503"] if down else []})
    return runs, rows


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw from the stdlib generator (Knuth's method; means here are small)."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, mean**0.5)))
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# ---------------------------------------------------------------- measuring


@dataclass
class Timed:
    seconds: float
    cpu_seconds: float
    code: int
    repeats: int
    stdout: str = ""


def timed_command(args: list[str], budget: float = REPEAT_BUDGET, repeats: int = 3) -> Timed:
    """A veille command run up to `repeats` times (fewer when slow): the fastest run's
    wall seconds and CPU seconds of its process tree."""
    runs = []
    spent = 0.0
    while len(runs) < repeats and (not runs or spent + runs[-1].seconds < budget):
        run = run_child(veille(*args), timeout=1800, monitor=True)
        runs.append(run)
        spent += run.seconds
    best = min(runs, key=lambda r: r.seconds)
    return Timed(best.seconds, best.cpu_seconds, best.code, len(runs), best.stdout)


def search_available() -> bool:
    """Whether `veille search` exists yet (app/search.py is being written elsewhere)."""
    import importlib.util

    return importlib.util.find_spec("veille.search") is not None


def count_articles(url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from veille.storage.db import normalise_url
    from veille.storage.models import Article

    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Article)).scalar_one())
    finally:
        engine.dispose()


def db_bytes(url: str) -> int:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = Path(u.database or "")
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    from sqlalchemy import create_engine, text

    from veille.storage.db import normalise_url

    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("select pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


@dataclass
class SizeResult:
    articles: int
    backend: str
    build: dict[str, Any]
    values: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    crawl: dict[str, Any] = field(default_factory=dict)
    config: Path | None = None  # the archive's config, while its database is there
    years: int = 1  # the history it spans


def new_corpus(root: Path, end: datetime, pages: int = NEW_PAGES, seed: int = 23) -> Path:
    """The routine crawl's new pages: bench corpus reports of events of the fourth day
    before `end`, published over the next two days (copies and updates a little later)."""
    from bench.corpus import generate

    if not (root / "manifest.json").exists():
        generate(root, pages, seed, start=end - timedelta(days=4), span_days=1.0)
    return root


def measure(workdir: Path, url: str, n: int, build_stats: BuildStats, corpus: Path, warm: Path,
            profile: bool = False, backend: str = "sqlite", years: int = 1) -> SizeResult:
    """A first crawl (what a crawl does once after the build: back-fill the search
    index, bound the run history...), then the routine crawl and the reading commands
    on the archive at `url`."""
    import sys

    from veille.crawler.replay import ReplayServer

    res = SizeResult(build_stats.articles, backend, build_stats.as_dict(), years=years)
    label = Spec(n, years).label
    tag = f"{backend}-{label}"
    digest = {"topics": [t["name"] for t in repo_topics()], "to": DIGEST_TO}

    def config(srv: Any, name: str) -> Path:
        cfg = bench_config(srv.outlet_configs(), workdir / "unused.db")
        cfg["database"], cfg["digest"] = {"url": url}, digest
        return write_config(workdir / f"{name}-{tag}.yaml", cfg)

    with ReplayServer(warm) as srv:
        log(f"archive {n:,} ({backend}): first crawl after the build (maintenance catches up)")
        first = run_child(veille("crawl", "--config", str(config(srv, "warm"))), monitor=True)
        res.values["first_crawl"], res.values["first_crawl_cpu"] = first.seconds, first.cpu_seconds
        if first.code != 0:
            res.notes.append(f"first crawl exit {first.code}")
    with ReplayServer(corpus) as srv:
        cfg_path = config(srv, "archive")
        if profile and backend == "sqlite":
            _profile_crawl(workdir, url, n, cfg_path, srv, label)
        settle_out = workdir / f"settle-{tag}.json"
        settle_out.unlink(missing_ok=True)
        log(f"archive {n:,} ({backend}): routine crawl of {NEW_PAGES} new pages")
        srv.clear_log()
        crawl = run_child([sys.executable, "-m", "bench.archive_probe", "--settle-out", str(settle_out), "--",
                           "crawl", "--config", str(cfg_path)], monitor=True)
        wanted = {(o, a["path"]) for o, arts in expected_articles(corpus).items() for a in arts}
        got = sum(1 for e in srv.access_log if (e.outlet, e.path) in wanted)
        requests = len(srv.access_log)
    settle = json.loads(settle_out.read_text()) if settle_out.exists() else {}
    res.crawl = {"code": crawl.code, "article_requests": got, "requests": requests,
                 "new_articles": count_articles(url) - build_stats.articles,
                 "stderr_tail": (crawl.stderr or "").strip().splitlines()[-3:]}
    res.values.update(crawl_wall=crawl.seconds, crawl_cpu=crawl.cpu_seconds, crawl_rss=crawl.peak_rss,
                      settle=settle.get("seconds"), settle_cpu=settle.get("cpu_seconds"))
    if crawl.code != 0:
        res.notes.append(f"crawl exit {crawl.code}: {' | '.join(res.crawl['stderr_tail'])}")
    res.config = cfg_path
    commands = reading_commands()
    if "search" not in commands:
        res.values["search"] = None
        res.notes.append("veille search not there yet (app/search.py): skipped")
    for name, args in commands.items():
        log(f"archive {n:,} ({backend}): veille {' '.join(args)}")
        record_command(res, name, timed_command([*args, "--config", str(cfg_path)]))
    res.values.update(web_timings(cfg_path, res.notes))
    res.values["db_bytes"] = db_bytes(url)
    if profile and backend == "sqlite":
        _profile_commands(workdir, url, n, list(commands.values()), cfg_path, label)
    return res


def reading_commands() -> dict[str, list[str]]:
    commands = {"stories": ["stories", "--json"], "status": ["status", "--json"],
                "digest": ["digest", "--dry-run"]}
    if search_available():
        commands["search"] = ["search", SEARCH_QUERY, "--json"]
    return commands


def record_command(res: SizeResult, name: str, t: Timed) -> None:
    """Keep the fastest run of a reading command (wall, and the CPU of that run)."""
    if res.values.get(name) is None or t.seconds < (res.values[name] or 0):
        res.values[name], res.values[f"{name}_cpu"] = t.seconds, t.cpu_seconds
    res.values[f"{name}_runs"] = int(res.values.get(f"{name}_runs") or 0) + t.repeats
    if name == "stories" and "stories_listed" not in res.values:
        try:
            res.values["stories_listed"] = len(json.loads(t.stdout or "[]"))
        except ValueError:
            res.values["stories_listed"] = None
    if t.code != 0:
        res.notes.append(f"veille {name} exit {t.code}")


def interleave(results: list[SizeResult], rounds: int = INTERLEAVE_ROUNDS) -> None:
    """The reading commands again, archive after archive, `rounds` times: each archive
    sees the neighbours' load of the others (a shared machine's load drifts over the
    minutes between one archive's turn and the next), and the fastest run is kept."""
    commands = reading_commands()
    for k in range(rounds):
        for res in results:
            if res.config is None:
                continue
            log(f"archive {res.articles:,} ({res.backend}): reading commands, interleaved round {k + 1}")
            for name, args in commands.items():
                record_command(res, name, timed_command([*args, "--config", str(res.config)], repeats=1))


def _profile_commands(workdir: Path, url: str, n: int, commands: list[list[str]], cfg_path: Path,
                      label: str) -> None:
    """Each reading command once more with its SQL recorded: bench/archive_sql.txt."""
    import sys

    from sqlalchemy.engine import make_url

    for args in commands:
        sql_out = workdir / f"sql-{label}-{args[0]}.json"
        run = run_child([sys.executable, "-m", "bench.archive_probe", "--sql-out", str(sql_out), "--",
                         *args, "--config", str(cfg_path)])
        if sql_out.exists():
            _append_sql(n, json.loads(sql_out.read_text()), Path(make_url(url).database or ""), run.seconds,
                        f"veille {' '.join(args)}")


WEB_PATHS = {"web_list_ms": "/", "web_search_ms": f"/search?q={SEARCH_QUERY}", "web_api_stories_ms": "/api/stories"}
WEB_REPEATS = 5


def web_timings(cfg_path: Path, notes: list[str]) -> dict[str, float | None]:
    """`veille serve` on a free port: the median milliseconds of the story list, a
    search and the JSON story list (5 requests each, after one to warm it up), and the
    server's resident memory once idle."""
    import subprocess

    import httpx
    import psutil

    from bench.common import child_env

    out: dict[str, float | None] = dict.fromkeys([*WEB_PATHS, "web_idle_rss"])
    proc = subprocess.Popen(veille("serve", "--port", "0", "--config", str(cfg_path)), env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = None
        assert proc.stderr is not None
        for line in proc.stderr:  # the server says where it listens, once it does
            if "serving" in line and "http://" in line:
                base = line.split("http://", 1)[1].split("/", 1)[0]
                break
        if base is None:
            notes.append("veille serve did not start: web timings skipped")
            return out
        with httpx.Client(base_url=f"http://{base}", timeout=120) as client:
            for key, path in WEB_PATHS.items():
                client.get(path)
                times = []
                for _ in range(WEB_REPEATS):
                    t0 = time.perf_counter()
                    r = client.get(path)
                    times.append(1000 * (time.perf_counter() - t0))
                if r.status_code == 200:
                    out[key] = round(sorted(times)[len(times) // 2], 1)
                else:
                    notes.append(f"GET {path}: HTTP {r.status_code}")
        out["web_idle_rss"] = psutil.Process(proc.pid).memory_info().rss
    except (OSError, httpx.HTTPError) as exc:
        notes.append(f"web timings failed: {exc}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


def _profile_crawl(workdir: Path, url: str, n: int, cfg_file: Path, srv: Any, label: str) -> None:
    """The routine crawl on a copy of the archive under py-spy, every SQL statement
    recorded; writes sections of bench/archive_sql.txt and bench/archive_profile.txt."""
    import sys

    from sqlalchemy.engine import make_url

    from bench import profile as prof

    src = Path(make_url(url).database or "")
    copy = workdir / f"profile-{label}.db"
    shutil.copyfile(src, copy)
    import yaml

    pcfg = dict(yaml.safe_load(cfg_file.read_text(encoding="utf-8")), database={"url": f"sqlite:///{copy}"})
    cfg_path = write_config(workdir / f"profile-{label}.yaml", pcfg)
    sql_out = workdir / f"sql-{label}.json"
    spy = prof.py_spy()
    cmd = [sys.executable, "-m", "bench.archive_probe", "--sql-out", str(sql_out), "--",
           "crawl", "--config", str(cfg_path)]
    out = workdir / f"profile-{label}.txt"
    if spy:
        cmd = [spy, "record", "--subprocesses", "--nonblocking", "-f", "raw", "-r", str(prof.RATE),
               "-o", str(out), "--", *cmd]
    log(f"archive {n:,}: profiled crawl (py-spy: {bool(spy)}, SQL recorded)")
    srv.clear_log()
    run = run_child(cmd)
    if sql_out.exists():
        stmts = json.loads(sql_out.read_text())
        _append_sql(n, stmts, copy, run.seconds)
    if spy and out.exists():
        _, text = prof.summarize(out, "py-spy", NEW_PAGES, run.seconds)
        _append(PROFILE_TXT, f"\n######## archive of {n:,} articles: routine crawl of {NEW_PAGES} pages\n\n{text}")
    for p in workdir.glob(f"profile-{label}.db*"):
        p.unlink()


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def explain(db_path: Path, statement: str, params: int) -> list[str]:
    """SQLite's plan for a statement (parameters bound to NULL: without sqlite_stat4 the
    plan does not depend on their values)."""
    import sqlite3

    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {statement}", [None] * params)]
    except sqlite3.Error as exc:
        return [f"(no plan: {exc})"]
    finally:
        con.close()


def _append_sql(n: int, stmts: list[dict[str, Any]], db_path: Path, wall: float,
                what: str = "the routine crawl") -> None:
    total = sum(s["seconds"] for s in stmts)
    lines = [f"\n######## archive of {n:,} articles: SQL of {what} (wall {wall:.1f} s, "
             f"{sum(s['count'] for s in stmts)} statements, {total:.2f} s in SQLite)\n"]
    for s in stmts[:SQL_SHOWN]:
        plan = [] if s["executemany"] else explain(db_path, s["statement"], s["params"])
        flat = " ".join(s["statement"].split())
        lines.append(f"{s['seconds']:8.3f} s  {s['count']:6d}×  rows {s['rows']:<8d} {flat[:400]}")
        lines.append(f"          from: {' <- '.join(s['where'][:3])}")
        lines += [f"          plan: {p}" for p in plan]
    _append(SQL_TXT, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- the run


CPU_OF = {"crawl_wall": "crawl_cpu", "settle": "settle_cpu", "stories": "stories_cpu", "status": "status_cpu",
          "digest": "digest_cpu", "search": "search_cpu"}


def entries_from(results: list[SizeResult]) -> list[dict[str, Any]]:
    """The `archive` section of results.json: per archive its absolute values and each
    measure's ratio to the same measure on the smallest SQLite archive of this run (whose
    values go along as `baseline`, so entries of several runs can sit side by side)."""
    sqlite_sizes = [x.articles for x in results if x.backend == "sqlite" and x.years == 1]
    base = next((r for r in results if r.backend == "sqlite" and r.years == 1
                 and r.articles == min(sqlite_sizes)), None)
    measures = (*MEASURES, "db_bytes", *CPU_OF.values())
    when = datetime.now(UTC).isoformat(timespec="seconds")
    entries: list[dict[str, Any]] = []
    for r in results:
        entry: dict[str, Any] = {"articles": r.articles, "backend": r.backend, "measured": when,
                                 "years": r.years, "per_day": round(r.articles / (365 * r.years), 1),
                                 "baseline_articles": base.articles if base else None}
        for m in measures:
            value, b = r.values.get(m), base.values.get(m) if base else None
            entry[m] = value
            entry["db_bytes_ratio" if m == "db_bytes" else f"{m}_ratio"] = (
                None if value is None or not b else round(value / b, 3))
        entry.update({k: v for k, v in r.values.items() if k not in entry})
        entry["baseline"] = {m: base.values.get(m) for m in measures} if base else {}
        same_volume = next((x for x in results if r.years > 1 and x.backend == r.backend and x.years == 1
                            and x.articles * r.years == r.articles), None)
        if same_volume is not None:  # what the longer history alone costs
            entry["history_baseline_articles"] = same_volume.articles
            entry["history_baseline"] = {m: same_volume.values.get(m) for m in measures}
            for m in measures:
                value, b = r.values.get(m), same_volume.values.get(m)
                entry[f"{m}_history_ratio"] = None if value is None or not b else round(value / b, 3)
        entry.update(build=r.build, crawl=r.crawl, notes=r.notes)
        entries.append(entry)
    return entries


def merge_entries(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of this run, and those of an earlier run for archives not measured now
    (each keeps the baseline of its own run)."""
    done = {(e["backend"], e["articles"], e.get("years", 1)) for e in new}
    kept = [e for e in previous if (e.get("backend"), e.get("articles"), e.get("years", 1)) not in done]
    return sorted(kept + new, key=lambda e: (e["backend"] != "sqlite", e["backend"], e.get("years", 1),
                                             e["articles"]))


def archive_name(e: dict[str, Any]) -> str:
    """"sqlite 1,000,000" or "sqlite 1,000,000 over 10 years"."""
    years = e.get("years", 1)
    return f"{e['backend']} {e['articles']:,}" + (f" over {years} years" if years > 1 else "")


def figures_from(entries: list[dict[str, Any]]) -> list[Figure]:
    """Figures for the table: each measure of each archive against its run's baseline;
    the web view's and `veille stories`' absolute milliseconds."""
    figures: list[Figure] = []
    for e in entries:
        years = e.get("years", 1)
        if e.get("baseline_articles") == e["articles"] and e["backend"] == "sqlite" and years == 1:
            continue
        at_1m = e["articles"] >= 1_000_000 and e["backend"] == "sqlite" and years == 1
        name = archive_name(e)
        base = e.get("baseline") or {}
        for m in (*MEASURES, "db_bytes"):
            value, b = e.get(m), base.get(m)
            if value is None:
                continue
            scale, unit = (2**20, "MiB") if m in ("crawl_rss", "db_bytes") else (1, "s")
            rt = ratio(value, b)
            target = "≤ 1.2" if at_1m and m not in ("db_bytes", "crawl_cpu", "search") else ""
            cpu = CPU_OF.get(m)
            notes = []
            if cpu and e.get(cpu) is not None and base.get(cpu):
                notes.append(f"CPU {e[cpu]:.2f} s vs {base[cpu]:.2f} s: ×{e[cpu] / base[cpu]:.2f}")
            if m == "crawl_wall":
                notes += e.get("notes") or []
            figures.append(Figure(
                "archive", f"{name}: {m.replace('_', ' ')}", round(value / scale, 3),
                unit, None if b is None else round(b / scale, 3), f"at {e.get('baseline_articles') or 0:,}",
                None if rt is None else round(rt, 3), target, (rt is not None and rt <= 1.2) if target else None,
                "; ".join(notes)))
            hb = (e.get("history_baseline") or {}).get(m)
            hr = ratio(value, hb)
            if hr is not None:
                figures.append(Figure(
                    "archive", f"{name}: {m.replace('_', ' ')}, against the same daily volume over 1 year",
                    round(value / scale, 3), unit, round(hb / scale, 3),
                    f"at {e['history_baseline_articles']:,} over 1 year", round(hr, 3), "", None,
                    "what the longer history alone costs"))
    for e in entries:
        for key, label in (("web_list_ms", "web story list (GET /)"), ("web_search_ms", "web search"),
                           ("stories", "veille stories --json")):
            value = e.get(key)
            if value is None:
                continue
            ms = value if key.endswith("_ms") else 1000 * value
            at_100k = e["articles"] == 100_000 and key.startswith("web")
            figures.append(Figure("archive", f"{archive_name(e)}: {label}", round(ms, 1), "ms",
                                  target="≤ 100 ms at 100k (issue #15)" if at_100k else "",
                                  met=ms <= 100 if at_100k else None,
                                  note="median of 5 requests to `veille serve`" if key.startswith("web")
                                  else "wall, process start to exit"))
    return figures


def run(workdir: Path, sizes: tuple[int | Spec, ...] = DEFAULT_SIZES, postgres: bool = False,
        profile_sizes: tuple[int, ...] = PROFILE_SIZES, extra: dict[str, Any] | None = None) -> list[Figure]:
    """Build each archive (in `workdir`), measure, report. A size is a number of articles
    over a year or a `Spec` (articles over years); only one-year archives are profiled."""
    specs = sorted(s if isinstance(s, Spec) else Spec(s) for s in sizes)
    workdir.mkdir(parents=True, exist_ok=True)
    pool = make_pool(cache=workdir / "pool.pickle")
    end = datetime.now(UTC).replace(microsecond=0)
    corpus = new_corpus(workdir / f"new-{end:%Y%m%d%H%M}", end)
    warm = new_corpus(workdir / f"warm-{end:%Y%m%d%H%M}", end - timedelta(days=1), WARM_PAGES, seed=29)
    if profile_sizes:
        for path in (SQL_TXT, PROFILE_TXT):
            path.write_text(f"# Written by `python -m bench.archive` ({datetime.now(UTC):%Y-%m-%d}): the routine "
                            "crawl of bench/archive.py on a copy of each archive.\n", encoding="utf-8")
    results: list[SizeResult] = []
    for spec in specs:
        n = spec.articles
        path = workdir / f"archive-{spec.label}.db"
        for p in workdir.glob(f"archive-{spec.label}.db*"):
            p.unlink()
        log(f"archive {n:,} over {spec.years} year(s): building")
        stats = build(f"sqlite:///{path}", n, pool=pool, end=end, span=spec.span)
        log(f"archive {n:,}: built in {stats.seconds:.0f} s, {path.stat().st_size / 2**20:.0f} MiB")
        results.append(measure(workdir, f"sqlite:///{path}", n, stats, corpus, warm,
                               profile=n in profile_sizes and spec.years == 1, years=spec.years))
    interleave(results)
    for spec in specs:
        if spec.articles >= 1_000_000:
            for p in workdir.glob(f"archive-{spec.label}.db*"):
                p.unlink()  # several GB
    if postgres:
        try:
            results.extend(_postgres(workdir, pool, end, corpus, warm))
        except Exception as exc:  # the SQLite figures must not be lost with it
            log(f"archive: PostgreSQL failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    entries = entries_from(results)
    if extra is not None:
        extra["archive"] = entries
    return figures_from(entries)


def _postgres(workdir: Path, pool: list[PoolText], end: datetime, corpus: Path, warm: Path,
              n: int = 100_000) -> list[SizeResult]:
    try:
        from tests import pg
    except ImportError:
        return []
    if not pg.available():
        log("archive: no PostgreSQL binaries, skipped")
        return []
    cluster = pg.Cluster()
    cluster.start()
    try:
        url = cluster.create_database()
        log(f"archive {n:,} (postgresql): building")
        stats = build(url, n, pool=pool, end=end)
        return [measure(workdir, url, n, stats, corpus, warm, backend="postgresql")]
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    from bench.common import machine
    from bench.report import print_table, write_json

    ap = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="archive sizes, comma-separated, N or N@Ky for K years (default %(default)s; "
                         "1000000 takes long)")
    ap.add_argument("--postgres", action="store_true", help="also PostgreSQL at 100,000 (needs its binaries)")
    ap.add_argument("--profile-sizes", default=",".join(map(str, PROFILE_SIZES)),
                    help="sizes whose crawl is also profiled (py-spy, SQL plans); '' for none")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json", help="results file")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--merge", action="store_true",
                    help="keep the results file's entries of archives not measured now (e.g. 1M alone, later)")
    args = ap.parse_args(argv)
    sizes = parse_specs(args.sizes)
    profile_sizes = tuple(int(s) for s in args.profile_sizes.split(",") if s.strip())
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="veille-archive-") as tmp:
        figures = run(args.keep or Path(tmp), sizes, args.postgres, profile_sizes, extra)
    if args.merge and args.out.exists():  # read now: another run may have written meanwhile
        previous = json.loads(args.out.read_text(encoding="utf-8")).get("archive") or []
        extra["archive"] = merge_entries(previous, extra["archive"])
        figures = figures_from(extra["archive"])
    info = machine()
    info["bench_seconds"] = round(time.perf_counter() - t0)
    print_table(figures, info)
    if not args.no_write:
        write_json(args.out, figures, info, extra)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
