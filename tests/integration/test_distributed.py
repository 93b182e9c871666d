"""The distributed crawl for real: a redis-server, a PostgreSQL cluster, the replay, processes.

Two `veille crawl --worker` processes share one frontier in Redis and one PostgreSQL
database; their crawl is compared with a single-process SQLite crawl of the same replay
(what was downloaded from the replay server's access log, what was stored from the
databases). Then several processes store the same pages at the same moment, to show
that the database, not luck, keeps one copy of each article and one story per event.
"""

from __future__ import annotations

import multiprocessing
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import yaml
from sqlalchemy import func, select

from tests.conftest import FIXTURE_OUTLETS, replay_config, without_env_overrides, write_config
from tests.pg import Cluster
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture
from veille.crawl import run_crawl_subprocess
from veille.crawler.canonical import canonical_url
from veille.crawler.replay import AccessEntry, ReplayServer
from veille.crawler.run import PROJECT_ROOT
from veille.pipeline.config import config_from_dict
from veille.pipeline.process import Processor
from veille.pipeline.types import RawPage
from veille.storage.db import Database
from veille.storage.models import Article, CrawlRun, FeedState, OutletRun, Page, Story

OUTLETS = ["bladi", "hespress", "le360", "maghress", "moroccoworldnews"]
WORKERS = 2
SLOW_PAGE = 0.5  # seconds an article page takes during the workers' crawl, so both get work
WORKER_TIMEOUT = 120


def expected_of(outlet: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURE_OUTLETS / outlet / "expected.yaml").read_text(encoding="utf-8")) or {}


def partition(db: Database) -> set[frozenset[str]]:
    """The stories, each as the set of its articles' URLs."""
    with db.transaction() as s:
        groups: dict[int | None, set[str]] = defaultdict(set)
        for url, story in s.execute(select(Article.url, Article.story_id)):
            groups[story].add(url)
    return {frozenset(g) for g in groups.values()}


@dataclass
class Crawl:
    codes: list[int]
    log: list[AccessEntry]
    db: Database


@dataclass
class World:
    srv: ReplayServer
    reference: Crawl  # one process, SQLite
    workers: Crawl  # WORKERS processes, Redis + PostgreSQL
    sources: set[tuple[str, str]]  # (outlet, path) of discovery requests

    def pages(self, crawl: Crawl) -> Counter[tuple[str, str]]:
        """How often each page (anything but robots.txt and discovery sources) was requested."""
        return Counter((e.outlet, e.path) for e in crawl.log if (e.outlet, e.path) not in self.sources)


def _path(srv: ReplayServer, outlet: str, url: str) -> str:
    return url[len(srv.base(outlet)):]


def _slow_articles(srv: ReplayServer) -> None:
    for outlet in OUTLETS:
        routes = yaml.safe_load((FIXTURE_OUTLETS / outlet / "routes.yaml").read_text(encoding="utf-8"))
        srv.set_override(outlet, {a["path"]: {**routes[a["path"]], "hang": SLOW_PAGE}
                                  for a in expected_of(outlet)["articles"]})


def _run_workers(config: Path, logs: Path) -> list[int]:
    env = without_env_overrides() | {"VEILLE_QUEUE_IDLE": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    procs = []
    for i in range(WORKERS):
        out = (logs / f"worker-{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "veille.cli", "crawl", "--worker", "--config", str(config),
             "--log-format", "text"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        out.close()
    deadline = time.monotonic() + WORKER_TIMEOUT
    try:
        return [p.wait(timeout=max(1, deadline - time.monotonic())) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster,
          redis_server: RedisServer) -> Iterator[World]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("distributed")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VEILLE_DATABASE_URL", raising=False)
        with ReplayServer(FIXTURE_OUTLETS, outlets=OUTLETS) as srv:
            data = replay_config(srv, tmp / "reference.db")
            code = run_crawl_subprocess(write_config(tmp / "reference.yaml", data), timeout=WORKER_TIMEOUT)
            reference = Crawl([code], srv.access_log, Database(data["database"]["url"]))

            srv.clear_log()
            _slow_articles(srv)
            shared = replay_config(srv, tmp / "unused.db", queue=redis_server.url,
                                   concurrency_per_domain=2)
            shared["database"]["url"] = pg_cluster.create_database()
            codes = _run_workers(write_config(tmp / "worker.yaml", shared), tmp)
            workers = Crawl(codes, srv.access_log, Database(shared["database"]["url"]))

            with reference.db.transaction() as s:
                parsed = set(s.scalars(select(FeedState.url)))
            sources = {(o["name"], _path(srv, o["name"], u)) for o in data["outlets"]
                       for u in [*(o.get("feeds") or []), *(o.get("sitemaps") or []),
                                 *(o.get("sections") or []), *parsed]
                       if u.startswith(srv.base(o["name"]))}
            sources |= {(o, "/robots.txt") for o in OUTLETS}
            yield World(srv, reference, workers, sources)
        reference.db.dispose()
        workers.db.dispose()


def test_both_workers_complete_and_share_the_work(world: World) -> None:
    assert world.reference.codes == [0]
    assert world.workers.codes == [0] * WORKERS, "see the worker-*.log files in the test's tmp dir"
    with world.workers.db.transaction() as s:
        runs = list(s.scalars(select(CrawlRun)))
        fetched = {r.id: sum(o.fetched for o in s.scalars(select(OutletRun).where(OutletRun.run_id == r.id)))
                   for r in runs}
    assert [r.status for r in runs] == ["ok"] * WORKERS  # one run record per worker
    assert all(n > 0 for n in fetched.values()), f"a worker fetched nothing: {fetched}"


def test_every_article_page_is_fetched_exactly_once_across_workers(world: World) -> None:
    reference, workers = world.pages(world.reference), world.pages(world.workers)
    assert set(workers) == set(reference)  # the same pages, articles, 404s and redirects
    twice = {page: n for page, n in workers.items() if n != 1}
    assert not twice, f"fetched more than once: {twice}"
    articles = {(o, a["path"]) for o in OUTLETS for a in expected_of(o)["articles"]}
    assert articles <= {(o, unquote(p)) for o, p in workers}
    # discovery runs in every worker: each fetched each feed once
    feeds = {(o, _path(world.srv, o, u)) for o in OUTLETS
             for u in [c for c in world.srv.outlet_configs() if c["name"] == o][0].get("feeds") or []}
    assert all(Counter((e.outlet, e.path) for e in world.workers.log)[f] == WORKERS for f in feeds)


def test_robots_disallowed_paths_are_never_requested(world: World) -> None:
    never = {(o, p) for o in OUTLETS for p in expected_of(o).get("never_requested", [])}
    requested = {(e.outlet, unquote(e.path)) for e in world.workers.log}
    assert never and not never & requested


def test_every_article_is_stored_exactly_once(world: World) -> None:
    def stored(db: Database) -> tuple[list[str], set[str]]:
        with db.transaction() as s:
            return list(s.scalars(select(Article.url))), set(s.scalars(select(Page.url)))

    ref_articles, ref_pages = stored(world.reference.db)
    articles, pages = stored(world.workers.db)
    assert len(articles) == len(set(articles))
    assert sorted(articles) == sorted(ref_articles)
    assert pages == ref_pages  # every URL settled, aliases included: none fetched again


def test_stories_are_those_of_a_single_process_crawl(world: World) -> None:
    stories = partition(world.workers.db)
    assert stories == partition(world.reference.db)


def test_every_stored_article_belongs_to_one_story(world: World) -> None:
    with world.workers.db.transaction() as s:
        homeless = s.scalar(select(func.count(Article.id)).where(Article.story_id.is_(None)))
        empty = s.scalar(select(func.count(Story.id)).where(~Story.id.in_(select(Article.story_id).where(Article.story_id.is_not(None)))))
    assert (homeless, empty) == (0, 0)


def test_requests_waiting_for_robots_txt_all_obey_it(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker hit: several requests of one site waiting for its robots.txt (here a
    crawl's first sources, in a worker also the articles it takes from the shared queue).
    Scrapy's middleware let all but the first through unchecked (crawler.middlewares)."""
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    never = expected_of("bladi")["never_requested"][0]
    with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi"]) as srv:
        data = replay_config(srv, tmp_path / "v.db")
        base = srv.base("bladi")
        data["outlets"][0]["sections"] = [base + "/maroc/", base + "/prive/", base + never]
        assert run_crawl_subprocess(write_config(tmp_path / "config.yaml", data), timeout=60) == 0
        requested = {unquote(e.path) for e in srv.access_log}
    assert "/maroc/" in requested
    assert not {"/prive/", never} & requested


# ---------------------------------------------------------------- same pages, same moment


def _fetch(url: str, outlet: str, hint: str) -> RawPage:
    with urllib.request.urlopen(quote(url, safe=":/?=&%,"), timeout=10) as resp:  # noqa: S310
        body, headers, final = resp.read(), {k.lower(): v for k, v in resp.headers.items()}, resp.geturl()
    return RawPage(url=canonical_url(final) or final, final_url=final, outlet=outlet, status=200,
                   headers=headers, body=body, fetched_at=datetime.now(UTC), language_hint=hint)


def _store_all(url: str, config: dict[str, Any], pages: list[RawPage],
               start: Any) -> list[tuple[float, str, str]]:
    """One process: a Processor of its own stores every page, once all processes are ready.

    Returns (when the store returned, outcome kind, URL) per page. Stores of articles
    are serialised by the Processor's advisory lock, so the order of these times is the
    order the database saw them in (CLOCK_MONOTONIC is one clock for every process).
    Then, as a crawl does when it ends, it places the articles in stories.
    """
    db = Database(url)
    processor = Processor(db, config_from_dict({**config, "database": {"url": url}}))
    start.wait(timeout=60)
    try:
        stored = [(time.monotonic(), processor.process(p).kind, p.url) for p in pages]
        processor.settle()
        return stored
    finally:
        db.dispose()


@dataclass
class AtOnce:
    pages: int
    outcomes: list[list[tuple[float, str, str]]]
    concurrent: Database  # PostgreSQL, three processes at once
    serial: Database  # SQLite, one process storing the same pages in the order they landed


@pytest.fixture(scope="module")
def at_once(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtOnce]:
    """Every expected article of the replay stored by three processes at the same moment,
    each in its own order, into one PostgreSQL database; then by one process, one page
    after the other in the order the database received them, into SQLite."""
    tmp = tmp_path_factory.mktemp("at-once")
    with ReplayServer(FIXTURE_OUTLETS, outlets=OUTLETS) as srv:
        configs = {o["name"]: o for o in srv.outlet_configs()}
        pages = [_fetch(srv.base(o) + a["path"], o, configs[o]["language"])
                 for o in OUTLETS for a in expected_of(o)["articles"]]
        config = {k: v for k, v in replay_config(srv, tmp / "x.db").items() if k != "database"}
    url = pg_cluster.create_database()
    Database(url).dispose()  # the schema first: this is about the rows
    orders = [pages, pages[::-1], random.Random(8).sample(pages, len(pages))]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(len(orders)) as pool:
        start = manager.Barrier(len(orders))
        outcomes = pool.starmap(_store_all, [(url, config, order, start) for order in orders])
    by_url = {p.url: p for p in pages}
    landed = [by_url[u] for _, kind, u in sorted(o for out in outcomes for o in out) if kind != "unchanged"]
    serial = f"sqlite:///{tmp / 'serial.db'}"
    _store_all(serial, config, landed, threading.Barrier(1))
    result = AtOnce(len(pages), outcomes, Database(url), Database(serial))
    yield result
    result.concurrent.dispose()
    result.serial.dispose()


def test_processes_storing_the_same_pages_at_once_keep_one_copy_of_each(at_once: AtOnce) -> None:
    assert [len(o) for o in at_once.outcomes] == [at_once.pages] * 3  # no store gave up
    with at_once.concurrent.transaction() as s:
        urls = list(s.scalars(select(Article.url)))
        texts = Counter(s.execute(select(Article.content_hash, Article.outlet_id)).all())
        pages = list(s.scalars(select(Page.url)))
    with at_once.serial.transaction() as s:
        expected = set(s.scalars(select(Article.url)))
    assert len(urls) == len(set(urls)) and set(urls) == expected  # no URL stored twice
    assert all(n == 1 for n in texts.values())  # no text stored twice by one outlet
    assert len(pages) == len(set(pages))


def test_processes_storing_at_once_make_the_stories_of_the_same_stores_one_by_one(
        at_once: AtOnce) -> None:
    """Three story passes, each ending while others may still store: the stories are
    what one process storing the same pages makes, and every article has one."""
    stories = partition(at_once.concurrent)
    assert stories == partition(at_once.serial)
    with at_once.concurrent.transaction() as s:
        assert s.scalar(select(func.count(Article.id)).where(Article.story_id.is_(None))) == 0


# ---------------------------------------------------------------- politeness across workers

PACE = 0.4  # crawl.download_delay of the paced crawl


def test_workers_take_turns_on_a_site(tmp_path: Path, pg_cluster: Cluster,
                                      redis_server: RedisServer) -> None:  # noqa: F811
    """Two workers on one site with a download delay: the site sees one request per delay
    from both together, as from one process, not one per delay from each."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VEILLE_DATABASE_URL", raising=False)
        with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi", "hespress"]) as srv:
            data = replay_config(srv, tmp_path / "unused.db", queue=redis_server.url,
                                 concurrency_per_domain=2, download_delay=PACE)
            data["database"]["url"] = pg_cluster.create_database()
            codes = _run_workers(write_config(tmp_path / "paced.yaml", data), tmp_path)
            log = srv.access_log
    assert codes == [0] * WORKERS, "see the worker-*.log files in the test's tmp dir"
    for outlet in ("bladi", "hespress"):
        times = sorted(e.at for e in log if e.outlet == outlet)
        assert len(times) >= 8, outlet
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        # the Redis turn is taken just before sending; half the delay leaves room for a
        # loaded machine between taking the turn and the request's arrival
        assert min(gaps) >= PACE / 2, (outlet, [round(g, 3) for g in gaps])


def test_a_killed_workers_claims_are_released_by_the_next_round(
        tmp_path: Path, pg_cluster: Cluster, redis_server: RedisServer) -> None:  # noqa: F811
    """A worker of this machine died holding claims (SIGKILL: no release): the next
    round's workers see its pid is gone, drop its claims and fetch those pages now,
    not an hour later when the claims expire."""
    import redis

    from veille.crawler.frontier import Frontier

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VEILLE_DATABASE_URL", raising=False)
        with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi"]) as srv:
            articles = [a["path"] for a in expected_of("bladi")["articles"]][:2]
            frontier = Frontier(redis_server.url, claim_ttl=3600, idle=1)
            client = redis.Redis.from_url(redis_server.url)
            for path in articles:
                key = frontier._key("claim", canonical_url(srv.base("bladi") + path) or "")
                client.set(key, f"{frontier.holder.rsplit(':', 1)[0]}:{dead.pid}", ex=3600)
            data = replay_config(srv, tmp_path / "unused.db", queue=redis_server.url)
            data["database"]["url"] = pg_cluster.create_database()
            codes = _run_workers(write_config(tmp_path / "after-kill.yaml", data), tmp_path)
            fetched = Counter(e.path for e in srv.access_log)
    assert codes == [0] * WORKERS, "see the worker-*.log files in the test's tmp dir"
    assert [fetched[p] for p in articles] == [1, 1]
