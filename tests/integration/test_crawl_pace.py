"""Politeness and parallelism of one crawl of several outlets, read from the replay server's log.

Each outlet is its own spider with its own download slot: its requests reach the site at
least `download_delay` apart (never sooner), and no outlet waits on another, so every outlet's
first request arrives before any outlet's second. The facts are about the order and
spacing of requests per host as the server saw them, never about how long the crawl took.

Also here: a run that queues many article requests starts its extraction workers off the
reactor thread as soon as it knows it is big, not after that many pages were extracted,
and their forkserver is stopped once the crawl is over.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURE_OUTLETS, replay_config, write_config
from veille.crawl import run_crawl_subprocess
from veille.crawler.pace import PENDING_DELAYS
from veille.crawler.pipelines import PageProcessor
from veille.crawler.replay import ReplayServer
from veille.crawler.spiders.context import CrawlContext
from veille.storage.db import Database

OUTLETS = ["bladi", "le360"]
DELAY = 1.0  # Scrapy's default jitter would space requests 0.5-1.5 s apart: some far below


def test_each_site_is_paced_by_its_delay_and_no_site_waits_on_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    with ReplayServer(FIXTURE_OUTLETS, outlets=OUTLETS) as srv:
        data = replay_config(srv, tmp_path / "v.db", outlets=OUTLETS, download_delay=DELAY,
                             concurrency_per_domain=2, autothrottle=False, timeout=120)
        assert run_crawl_subprocess(write_config(tmp_path / "c.yaml", data), timeout=600) == 0
        log = srv.access_log
    arrivals = {o: sorted(e.at for e in log if e.outlet == o) for o in OUTLETS}
    assert all(len(times) >= 4 for times in arrivals.values()), {o: len(t) for o, t in arrivals.items()}
    gaps = {o: [b - a for a, b in zip(t, t[1:], strict=False)] for o, t in arrivals.items()}
    # never sooner than the delay as the site saw it: not even by the few hundred ms a
    # request can spend waiting for a busy reactor to write it (crawler.pace), nor by
    # Scrapy's default jitter (0.5x)
    assert min(min(g) for g in gaps.values()) >= DELAY, gaps
    # every outlet started before any outlet made its second request
    assert max(t[0] for t in arrivals.values()) < min(t[1] for t in arrivals.values())


SLOW = "/spip.php?page=backend"  # bladi's feed: its sitemaps and articles queue behind it
SLOW_DELAY = 2.0  # wide, so a request the busy crawl writes late cannot blur the bounds


def _slow_feed(srv: ReplayServer, **how: Any) -> None:
    routes = yaml.safe_load((FIXTURE_OUTLETS / "bladi" / "routes.yaml").read_text(encoding="utf-8"))
    srv.set_override("bladi", {SLOW: {**routes[SLOW], **how}})


def _bladi_config(srv: ReplayServer, tmp_path: Path, timeout: float) -> Path:
    data = replay_config(srv, tmp_path / "v.db", outlets=["bladi"], download_delay=SLOW_DELAY,
                         concurrency_per_domain=2, autothrottle=False, timeout=timeout,
                         max_pages_per_outlet=2)
    return write_config(tmp_path / "c.yaml", data)


def test_a_slow_answer_is_waited_for_before_the_delay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests per site are allowed; the next waits for the slow answer (within
    PENDING_DELAYS delays of its dispatch), then a delay from it (crawler.pace): sent a
    delay after the previous dispatch instead, it reaches the site sooner than a delay
    after a request the busy crawl wrote late. The facts chain (arrival, answer, delay,
    next arrival), so load cannot make them false; unpaced, the gap is one delay."""
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    hang = 1.25 * SLOW_DELAY  # answered after its delay, well before the bound
    assert hang < PENDING_DELAYS * SLOW_DELAY - 1.0
    with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi"]) as srv:
        _slow_feed(srv, hang=hang)
        assert run_crawl_subprocess(_bladi_config(srv, tmp_path, 120), timeout=600) == 0
        log = sorted(srv.access_log, key=lambda e: e.at)
    [i] = [k for k, e in enumerate(log) if e.path == SLOW]
    assert i + 1 < len(log), [e.path for e in log]  # something was queued behind the feed
    assert log[i + 1].at - log[i].at >= hang + SLOW_DELAY, [(e.path, e.at - log[0].at) for e in log]


def test_a_hanging_page_slows_its_site_without_stalling_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed is held until the test lets it go: the site's next request comes while it
    is held (one request at a time stalled the site until the download timeout), and
    still a delay after it. (That it waited PENDING_DELAYS delays is a matter of when the
    held request was written, which load blurs: the test above has the waiting.)"""
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    timeout = 60.0
    with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi"]) as srv, ThreadPoolExecutor(1) as pool:
        _slow_feed(srv, hold=True)
        crawl = pool.submit(run_crawl_subprocess, _bladi_config(srv, tmp_path, timeout), timeout=600)
        while not crawl.done():  # until a request follows the held feed (the event), or the crawl ends
            log = sorted(srv.access_log, key=lambda e: e.at)
            held = [e for e in log if e.path == SLOW]
            if held and log[-1].at > held[0].at:
                break
            time.sleep(0.05)
        srv.release()
        assert crawl.result() == 0
    [i] = [k for k, e in enumerate(log) if e.path == SLOW]
    assert i + 1 < len(log), [e.path for e in log]
    gap = log[i + 1].at - log[i].at
    assert SLOW_DELAY <= gap < timeout, [(e.path, e.at - log[0].at) for e in log]


def _run_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, pool_after: int,
               workers: int) -> tuple[Database, PageProcessor, CrawlContext]:
    """A run's database, page processor and context, with no crawl around them."""
    import veille.crawler.pipelines as pipelines
    from veille.pipeline.config import config_from_dict

    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.setattr(pipelines, "POOL_AFTER_PAGES", pool_after)
    cfg = config_from_dict({"database": {"url": f"sqlite:///{tmp_path / 'v.db'}"},
                            "outlets": [{"name": "bladi", "url": "http://127.0.0.1:1/", "language": "fr"}]})
    db = Database(cfg.database.url)
    pages = pipelines.PageProcessor(db, cfg, workers=workers)
    return db, pages, CrawlContext(cfg, db, pages)


def test_a_run_that_queues_many_articles_starts_its_workers_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, pages, context = _run_parts(tmp_path, monkeypatch, pool_after=4, workers=2)
    try:
        context.queued_articles(3)
        assert pages.pool is None  # not worth the workers yet
        pages.open()  # an outlet's pipeline is open: pages will come
        context.queued_articles(1)
        starter = context._pool_starter
        assert starter is not None
        starter.join(120)  # a safety net, not an assertion on time
        assert pages.pool is not None and len(pages._warming) == 2
        assert all(f.result(timeout=120) for f in pages._warming)  # warm, ready for pages
        context.queued_articles(10)
        assert context._pool_starter is starter  # started once
        assert pages.pages == 0  # before any page was extracted
    finally:
        pages.release()
        pages.close()
        db.dispose()
    assert pages.pool is None
    # the workers' forkserver goes too, before the process exits (crawler.run does this
    # once the crawl is over, while the story pass runs)
    import threading
    from multiprocessing import forkserver

    from veille.crawler.run import _retire_forkserver

    pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    assert pid is not None
    _retire_forkserver()
    for t in threading.enumerate():
        if t.name == "forkserver-stop":
            t.join(120)
    assert forkserver._forkserver._forkserver_pid is None  # type: ignore[attr-defined]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: gone


def test_a_first_crawl_of_many_new_outlets_starts_its_workers_before_any_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outlets with nothing stored bring their feeds' worth of new articles: enough of them
    (POOL_AFTER_PAGES / FIRST_CRAWL_ARTICLES) start the workers before the crawl, so they
    are warm when the first article arrives; outlets already crawled, or fewer new ones,
    wait for the article requests as before."""
    from veille.crawler.spiders.context import FIRST_CRAWL_ARTICLES
    from veille.storage import pages as page_store

    db, pages, context = _run_parts(tmp_path, monkeypatch, pool_after=10, workers=2)
    try:
        enough = 10 // FIRST_CRAWL_ARTICLES
        with db.transaction() as s:  # crawled before: a page stored
            for name in [f"known{i}" for i in range(enough)]:
                page_store.record_page(s, f"http://127.0.0.1:1/{name}", page_store.ensure_outlet(s, name),
                                       "skipped", reason="listing page")
        context.first_crawls([f"known{i}" for i in range(enough)] + [f"new{i}" for i in range(enough - 1)])
        assert context._pool_starter is None and pages.pool is None  # one new outlet short
        context.first_crawls([f"new{i}" for i in range(enough)])
        starter = context._pool_starter
        assert starter is not None
        starter.join(120)  # a safety net, not an assertion on time
        assert pages.pool is not None and all(f.result(timeout=120) for f in pages._warming)
        assert pages.pages == 0 and pages.leases == 0  # before any page, any outlet's pipeline
    finally:
        pages.close()
        db.dispose()
    assert pages.pool is None


def test_a_single_worker_run_never_starts_a_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, pages, context = _run_parts(tmp_path, monkeypatch, pool_after=1, workers=1)
    pages.open()
    try:
        context.queued_articles(100)
        assert context._pool_starter is None and pages.pool is None
    finally:
        pages.release()
        pages.close()
        db.dispose()
