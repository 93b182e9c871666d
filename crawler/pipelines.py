"""The one adapter from Scrapy to the pipeline: a fetched `RawPage` → `Processor` → counts.

Extraction (`pipeline.extract.extract`, pure and CPU-bound) runs in a process pool so
both cores work while the reactor keeps downloading; storing (`Processor.store`, one
transaction per article) runs in the reactor thread, one page at a time, so the
in-memory duplicate and story indexes never race. A page that fails to process is
counted and logged with its URL; nothing is half-written (the transaction rolls back).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.types import RawPage, Skipped

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.spiders.context import OutletTally
    from pipeline.config import Config
    from storage.db import Database

log = logging.getLogger("crawler")

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")


@dataclass(frozen=True)
class Redirected:
    """A page reached through a redirect: stored under its final URL, `alias` folded into it."""

    page: RawPage
    alias: str


def non_html_reason(page: RawPage) -> str | None:
    """Why a fetched page cannot be an article because of its type, or None."""
    ctype = page.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in HTML_TYPES or ctype.endswith("+html") or (ctype == "application/xml" and b"<html" in page.body[:2000].lower()):
        return None
    return f"not an HTML page ({ctype})"


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: the parent stops gracefully, workers must
    # finish the page in hand instead of dying with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import pipeline.extract  # noqa: F401  (import once per worker, not per page)


def _extract(page: RawPage) -> Any:
    from pipeline.extract import extract

    return extract(page)


class PageProcessor:
    """Extract (in worker processes) and store (here) pages; one per crawl run."""

    def __init__(self, db: Database, cfg: Config, workers: int | None = None) -> None:
        from pipeline.process import Processor

        self.processor = Processor(db, cfg)
        n = workers if workers is not None else (os.cpu_count() or 1)
        self.pool: Executor | None = None
        if n > 1:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["pipeline.extract"])
            self.pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init)

    async def extract(self, page: RawPage) -> Any:
        if self.pool is not None:
            try:
                return await asyncio.wrap_future(self.pool.submit(_extract, page))
            except BrokenProcessPool:
                log.warning("extraction workers died; extracting in the crawl process from now on")
                self.pool = None
        return _extract(page)

    async def handle(self, page: RawPage, tally: OutletTally, alias: str | None = None) -> None:
        reason = non_html_reason(page)
        try:
            if reason is not None:
                tally.error(alias or page.url, reason)  # a fault, but settled: not re-fetched
                extracted: Any = Skipped(page.url, reason)
            else:
                extracted = await self.extract(page)
            outcome = self.processor.store(page, extracted)
            if alias is not None:
                self.fold_alias(page, alias, outcome)
        except Exception as exc:  # one bad page never stops the run
            log.debug("processing %s failed", page.url, exc_info=True)
            tally.error(page.url, f"processing failed: {type(exc).__name__}: {exc}")
            return
        if reason is None:
            tally.record(outcome.kind)

    def fold_alias(self, page: RawPage, alias: str, outcome: Any) -> None:
        """Settle the URL that redirected to `page` as a duplicate of what `page` became."""
        from storage import queries as q

        with self.processor.db.transaction() as s:
            outlet_id = q.ensure_outlet(s, page.outlet)
            if outcome.article_id is not None:
                q.record_page(s, alias, outlet_id, "duplicate", outcome.article_id,
                              f"redirects to {page.url}"[:200])
            else:
                q.record_page(s, alias, outlet_id, "skipped", reason=f"redirects to {page.url}"[:200])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class ProcessorPipeline:
    """Scrapy item pipeline: hands each RawPage to the run's PageProcessor."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProcessorPipeline:
        return cls(crawler)

    async def process_item(self, item: Any, spider: Any = None) -> Any:
        page, alias = (item.page, item.alias) if isinstance(item, Redirected) else (item, None)
        if not isinstance(page, RawPage):
            return item
        context = self.crawler.spider.context  # type: ignore[union-attr]
        if context.pages is not None:
            await context.pages.handle(page, context.tally(page.outlet), alias)
        return item
