"""The one adapter from Scrapy to the pipeline: a fetched `RawPage` → `Processor` → counts.

Extraction (`pipeline.extract.extract`, then `pipeline.prepare.prepare`: hashes, MinHash,
story features and topic matches; pure and CPU-bound, ~10-20 ms a page) runs in the
crawl process in a small run. A run that queues POOL_AFTER_PAGES article requests starts
a process pool (one worker per CPU; `crawler.spiders.context`, in a thread) and hands it
every page from then on, queued while the workers warm up (their fork server loads
trafilatura, the language model and datasketch once, `crawler.preload`, and forks each
worker with them): both cores work, and the crawl process need not load the extractor's
models. Small incremental runs never pay the workers' start-up.

Everything that touches the `Processor` (its outlets' templates, storing: one transaction
per article, the periodic story pass, folding redirects) runs in one writer thread, one
job at a time in the order the pages came: each page's duplicate lookup (in the database,
`storage.duplicates`) sees every page stored before it, the Processor (not thread-safe)
is only ever used from that thread, and SQLite has one writer in this process. The
reactor thread only hands pages over and counts outcomes: a page being stored (~10 ms,
more with its template) no longer holds up every outlet's next request. A page that fails
to process is counted and logged with its URL; nothing is half-written (the transaction
rolls back).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar

from veille.crawler.items import ClaimedAlias, Redirected
from veille.crawler.lifeline import die_with_parent, exit_with
from veille.crawler.spiders.context import CRAWL_CONTEXT, CrawlContext
from veille.pipeline.limits import cap_page
from veille.pipeline.types import RawPage, Skipped

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy.crawler import Crawler

    from veille.crawler.spiders.context import OutletTally
    from veille.pipeline.config import Config, TopicConfig
    from veille.pipeline.prepare import Prepared
    from veille.pipeline.template import Template
    from veille.storage.db import Database

log = logging.getLogger("crawler")
T = TypeVar("T")

POOL_AFTER_PAGES = 50
HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")


def non_html_reason(page: RawPage) -> str | None:
    """Why a fetched page cannot be an article because of its type, or None."""
    ctype = page.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in HTML_TYPES or ctype.endswith("+html") or (ctype == "application/xml" and b"<html" in page.body[:2000].lower()):
        return None
    return f"not an HTML page ({ctype})"


_TOPICS: Sequence[TopicConfig] = ()  # a worker's topics, set once by _worker_init


def _worker_init(topics: Sequence[TopicConfig], crawl_pid: int) -> None:
    # Ctrl-C reaches the whole process group: the parent stops gracefully, workers must
    # finish the page in hand instead of dying with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # ...but a crawl killed outright must not leave them behind (crawler.lifeline)
    die_with_parent()
    exit_with(crawl_pid)
    global _TOPICS
    _TOPICS = topics
    import veille.pipeline.prepare  # noqa: F401  (import once per worker, not per page)


_WARM_UP = RawPage(
    url="http://warm-up.invalid/a", final_url="http://warm-up.invalid/a", outlet="warm-up",
    status=200, headers={"content-type": "text/html; charset=utf-8"},
    body=("<html lang='fr'><head><title>Essai</title></head><body><article><h1>Essai de page</h1>"
          + "<p>Une phrase en français pour charger les modèles paresseux du lecteur. </p>" * 12
          + "</article></body></html>").encode(),
    fetched_at=datetime(2024, 1, 1, tzinfo=UTC), language_hint="fr")


def _ready() -> bool:
    """A first extraction loads the extractor's lazy models: run by the fork server
    (`crawler.preload`) so the workers start with them, then once per worker as the sign
    that it is up."""
    _extract(_WARM_UP)
    return True


@dataclass(frozen=True)
class Extracted:
    """A page extracted and prepared with its outlet's template stripped (pipeline.template),
    and the fingerprints of its lines as extracted, for the outlet's evidence."""

    prepared: Prepared
    lines: frozenset[str]


def _extract(page: RawPage, topics: Sequence[TopicConfig] | None = None,
             template: Template | None = None) -> Any:
    """Extract, strip and prepare a page: everything about it that needs no database."""
    from veille.pipeline.extract import extract
    from veille.pipeline.prepare import prepare
    from veille.pipeline.template import Template, line_fingerprints, strip_article
    from veille.pipeline.types import Article

    extracted = extract(page)
    if isinstance(extracted, Article):
        stripped, _ = strip_article(extracted, template or Template(page.outlet))
        return Extracted(prepare(stripped, _TOPICS if topics is None else topics),
                         line_fingerprints(extracted.text))
    return extracted


class PageProcessor:
    """Extract (in worker processes) and store (in this process's writer thread) pages;
    one per crawl run."""

    def __init__(self, db: Database, cfg: Config, workers: int | None = None) -> None:
        from veille.pipeline.process import Processor

        self.processor = Processor(db, cfg)
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.pages = 0
        self.pool: Executor | None = None
        self._warming: list[Future[bool]] = []
        self._pool_lock = threading.Lock()
        self.aliases: list[ClaimedAlias] = []
        self.leases = 0  # item pipelines storing through it: one per outlet's crawler
        # the one thread that uses the Processor (see the module); started on first use
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="veille-store")

    async def in_writer(self, job: Callable[..., T], *args: Any) -> T:
        """Run `job(*args)` in the writer thread, after every job handed to it before."""
        return await asyncio.wrap_future(self._writer.submit(job, *args))

    def open(self) -> None:
        """An outlet's item pipeline starts handing pages to this processor."""
        self.leases += 1

    def release(self) -> None:
        """An outlet's item pipeline is done; once the last one is, no page is left to
        extract and the workers stop (aliases wait for `close`, at the end of the run)."""
        self.leases -= 1
        if self.leases == 0:
            self._stop_pool()

    def start_pool(self) -> None:
        """Start the extraction workers, once: a big run is worth their start-up. Called
        from the thread `CrawlContext.queued_articles` starts, and from the reactor thread
        at POOL_AFTER_PAGES pages; the pool is assigned under a lock before the workers
        are forked (the fork server's imports take seconds), so neither caller waits on
        the other nor starts a second pool."""
        with self._pool_lock:
            if self.pool is not None or self.workers <= 1:
                return
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["veille.crawler.preload"])  # workers start warm
            pool = self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init,
                                                   initargs=(list(self.processor.topics), os.getpid()))
        self._warming = [pool.submit(_ready) for _ in range(self.workers)]

    async def extract(self, page: RawPage) -> Any:
        page, note = cap_page(page)  # before it is pickled to a worker, too
        if note:
            log.warning("%s: %s", page.url, note, extra={"outlet": page.outlet, "url": page.url})
        self.pages += 1
        if self.pool is None and self.pages == POOL_AFTER_PAGES:
            self.start_pool()
        if (pool := self.pool) is not None:  # queued while its workers warm up
            try:
                return await asyncio.wrap_future(await self.in_writer(self._submit, pool, page))
            except BrokenProcessPool:
                log.warning("extraction workers died; extracting in the crawl process from now on")
                self.workers, self.pool = 1, None
        return await self.in_writer(self._extract_here, page)

    def _submit(self, pool: Executor, page: RawPage) -> Future[Any]:
        """Hand a page to the workers with its outlet's template as this run's stored pages
        left it (the writer's to read). In the writer thread, not the reactor's: while the
        pool starts, `submit` waits for its lock as long as the fork server imports the
        extractor (seconds), and every outlet's downloads would wait with it."""
        return pool.submit(_extract, page, None, self.processor.template(page.outlet))

    def _extract_here(self, page: RawPage) -> Any:
        """A small run's extraction, in the writer thread (off the reactor's)."""
        return _extract(page, self.processor.topics, self.processor.template(page.outlet))

    def _store(self, page: RawPage, extracted: Any, alias: str | None) -> Any:
        """Store a page (and fold the URL that redirected to it), then run the periodic
        story pass if it is due: the writer's job."""
        if isinstance(extracted, Extracted):
            outcome = self.processor.store(page, extracted.prepared, extracted.lines)
        else:
            outcome = self.processor.store(page, extracted)
        if alias is not None:
            self.fold_alias(page, alias, outcome)
        try:
            self.processor.settle_if_due()
        except Exception as exc:  # the pass at the end of the run tries again
            log.warning("stories: periodic pass failed, retried at the end of the run: %s: %s",
                        type(exc).__name__, exc)
        return outcome

    async def handle(self, page: RawPage, tally: OutletTally, alias: str | None = None) -> None:
        reason = non_html_reason(page)
        try:
            if reason is not None:
                tally.error(alias or page.url, reason)  # a fault, but settled: not re-fetched
                extracted: Any = Skipped(page.url, reason)
            else:
                extracted = await self.extract(page)
            outcome = await self.in_writer(self._store, page, extracted, alias)
        except Exception as exc:  # one bad page never stops the run
            log.debug("processing %s failed", page.url, exc_info=True)
            tally.error(page.url, f"processing failed: {type(exc).__name__}: {exc}")
            return
        if reason is None:
            tally.record(outcome.kind, outcome.reason)

    def fold_alias(self, page: RawPage, alias: str, outcome: Any) -> None:
        """Settle the URL that redirected to `page` as a duplicate of what `page` became."""
        from veille.storage import pages as page_store

        with self.processor.db.transaction() as s:
            outlet_id = page_store.ensure_outlet(s, page.outlet)
            if outcome.article_id is not None:
                page_store.record_page(s, alias, outlet_id, "duplicate", outcome.article_id,
                              f"redirects to {page.url}"[:200])
            else:
                page_store.record_page(s, alias, outlet_id, "skipped", reason=f"redirects to {page.url}"[:200])

    def settle_aliases(self) -> None:
        """Fold each ClaimedAlias into the article its target became (skipped if none)."""
        from veille.storage import pages as page_store

        aliases, self.aliases = self.aliases, []
        for a in aliases:
            reason = f"redirects to {a.target}"[:200]
            try:
                with self.processor.db.transaction() as s:
                    outlet_id = page_store.ensure_outlet(s, a.outlet)
                    _, article_id = page_store.page_content_hash(s, a.target)
                    if article_id is not None:
                        page_store.record_page(s, a.alias, outlet_id, "duplicate", article_id, reason)
                    else:
                        page_store.record_page(s, a.alias, outlet_id, "skipped", reason=reason)
            except Exception as exc:  # unsettled: fetched again by a later run
                log.warning("%s: could not fold %s into %s: %s", a.outlet, a.alias, a.target, exc,
                            extra={"outlet": a.outlet, "url": a.alias})

    def close(self) -> None:
        """The run's end: the writer finishes what it was handed (a forced stop may leave
        jobs queued: each is one page's whole transaction), aliases are folded, the
        workers stop."""
        self._writer.shutdown(wait=True)
        self.settle_aliases()
        self._stop_pool()

    def _stop_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class ProcessorPipeline:
    """Scrapy item pipeline, one per outlet's crawler: hands each page to the run's PageProcessor.

    Built by `from_crawler` from the run's `CrawlContext`, which crawler.run puts in every
    crawler's settings under CRAWL_CONTEXT. `open_spider` takes a lease on the context's
    PageProcessor and `close_spider` gives it back. The processor is the run's, not one
    outlet's: every outlet's pages go through one duplicate index and one pool of
    extraction workers, and the story pass after the crawl uses it, so crawler.run builds
    and closes it; the workers stop when the last pipeline gives its lease back. Without a
    PageProcessor (`context.pages` None) items pass through untouched.
    """

    def __init__(self, context: CrawlContext) -> None:
        self.context = context
        self.pages: PageProcessor | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        context = crawler.settings.get(CRAWL_CONTEXT)
        if not isinstance(context, CrawlContext):
            raise TypeError(f"setting {CRAWL_CONTEXT} must be the run's CrawlContext "
                            f"(crawler.run sets it), not {type(context).__name__}")
        return cls(context)

    def open_spider(self) -> None:
        self.pages = self.context.pages
        if self.pages is not None:
            self.pages.open()

    def close_spider(self) -> None:
        if self.pages is not None:
            self.pages.release()
            self.pages = None

    async def process_item(self, item: object) -> object:
        if self.pages is None:
            return item
        if isinstance(item, ClaimedAlias):
            self.pages.aliases.append(item)
            return item
        page, alias = (item.page, item.alias) if isinstance(item, Redirected) else (item, None)
        if isinstance(page, RawPage):
            await self.pages.handle(page, self.context.tally(page.outlet), alias)
        return item
