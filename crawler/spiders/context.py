"""State of one crawl shared by every outlet's spider: per-outlet tallies and storage look-ups.

One `CrawlContext` per run, handed to each `OutletSpider` as a spider argument (no
module globals). Everything here runs in the reactor thread, so nothing is locked; the
Rich progress thread only reads integers, the thread that starts the extraction workers
of a big run (`queued_articles`) touches only the PageProcessor's pool, and an outlet's
validators are saved in the run's writer thread (`close_outlet`) once its spider closed,
when nothing else touches its tally.

An `OutletTally` becomes the `OutletCounts` saved in the crawl-run record. Status rule:
*blocked* when a discovery source answered 403 / a bot challenge, or when article pages
did and none came through; *failing* when every discovery source failed (none answered
200 or 304), or when article downloads failed for server or network reasons and none
succeeded (a few 404 links do not make an outlet failing); *ok* otherwise.

With a shared queue (`frontier`, see crawler.frontier) URL claims and the sources cut
short are shared with the other workers; without one, `claim` grants every URL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from veille.storage import pages as page_store
from veille.storage.crawl_runs import OutletCounts
from veille.storage.timestamps import as_utc

if TYPE_CHECKING:
    from veille.crawler.frontier import Frontier
    from veille.crawler.pipelines import PageProcessor
    from veille.pipeline.config import Config
    from veille.storage.db import Database

log = logging.getLogger("crawler")

CRAWL_CONTEXT = "VEILLE_CRAWL_CONTEXT"  # the setting that hands each crawler its run's CrawlContext
# articles counted ahead for an outlet crawled for the first time (nothing of it stored):
# its feed's entries are all new, and a feed lists more than this
FIRST_CRAWL_ARTICLES = 5
FULL_FETCH_EVERY = timedelta(days=1)  # validators are ignored once a day (stale-ETag servers)
MAX_ERRORS_KEPT = 200


def refusal_kind(reason: str) -> str:
    """'too short: 120 chars < 150 …' -> 'too short': reasons counted by kind."""
    return reason.split(":", 1)[0].strip()[:60]


@dataclass
class OutletTally:
    name: str
    counts: OutletCounts = field(default_factory=OutletCounts)
    sources: int = 0
    sources_ok: int = 0
    not_modified: int = 0
    sources_failed: int = 0
    sources_blocked: int = 0
    articles_failed: int = 0
    articles_unreachable: int = 0  # transient failures: timeouts, 5xx, network
    articles_blocked: int = 0
    settled: int = 0  # known URLs not downloaded again
    over_budget: int = 0  # left for the next run by max_pages_per_outlet
    claimed_elsewhere: int = 0  # shared queue: left to the worker that claimed them
    robots_forbidden: int = 0
    refused: int = 0  # URLs off the outlet's origin or on a private address, not fetched
    refused_urls: set[str] = field(default_factory=set)
    sitemaps_truncated: list[str] = field(default_factory=list)  # "depth limit (...)", ...
    duplicates: int = 0
    unchanged: int = 0
    close_reason: str | None = None
    # conditional GET: url -> (etag, last_modified, full_fetch) to save when the run ends well
    validators: dict[str, tuple[str | None, str | None, bool]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)  # answered 304
    dirty: set[str] = field(default_factory=set)  # a source whose entries were not all fetched

    def error(self, url: str, reason: str, *, level: int = logging.WARNING) -> None:
        self.counts.failed += 1
        if len(self.counts.errors) < MAX_ERRORS_KEPT:
            self.counts.errors.append(f"{url}: {reason}")
        log.log(level, "%s: %s: %s", self.name, url, reason,
                extra={"outlet": self.name, "url": url, "reason": reason})

    def note(self, url: str, reason: str, *, first: bool = False) -> None:
        """Log and keep (for the run record) something the user should see, not a failure;
        `first`: ahead of the errors, so the run record's first 50 keep it."""
        if first:
            self.counts.errors.insert(0, f"{url}: {reason}")
        elif len(self.counts.errors) < MAX_ERRORS_KEPT:
            self.counts.errors.append(f"{url}: {reason}")
        log.warning("%s: %s: %s", self.name, url, reason,
                    extra={"outlet": self.name, "url": url, "reason": reason})

    def refuse(self, url: str, reason: str) -> None:
        """A URL the outlet handed us that is not fetched (counted and logged once per URL)."""
        if url not in self.refused_urls:
            self.refused_urls.add(url)
            self.refused += 1
            self.note(url, f"refused: {reason}")

    def truncate(self, url: str, limit: str) -> None:
        """Sitemaps left unread by a limit: said once per kind of limit, with the first URL."""
        if limit not in self.sitemaps_truncated:
            self.sitemaps_truncated.append(limit)
            self.note(url, f"sitemaps truncated: {limit}", first=True)

    def record(self, kind: str, reason: str | None = None) -> None:
        """Count a Processor outcome (new | updated | duplicate | unchanged | skipped); a
        skipped page is counted under its named reason ("listing page", "too short")."""
        c = self.counts
        if kind == "skipped" and reason:
            key = refusal_kind(reason)
            c.refusals[key] = c.refusals.get(key, 0) + 1
        if kind == "new":
            c.new += 1
        elif kind == "updated":
            c.updated += 1
        elif kind == "duplicate":  # a copy of another outlet's article: a new row, folded
            c.new += 1
            self.duplicates += 1
        elif kind == "unchanged":
            c.skipped += 1
            self.unchanged += 1
        else:
            c.skipped += 1

    @property
    def status(self) -> str:
        c = self.counts
        if self.sources_blocked or (self.articles_blocked and not c.fetched):
            return "blocked"
        if self.sources and not (self.sources_ok or self.not_modified):
            return "failing"
        if self.articles_unreachable and not c.fetched:
            return "failing"
        return "ok"

    def final_counts(self) -> OutletCounts:
        c = self.counts
        return OutletCounts(c.discovered, c.fetched, c.new, c.updated, c.skipped, c.failed,
                            self.status, list(c.errors))


def _start_pool(pages: PageProcessor) -> None:
    """Start the extraction workers (in a thread); a run that ended first refuses them."""
    try:
        pages.start_pool()
    except RuntimeError as exc:  # shut down meanwhile: the pages went to the reactor thread
        log.debug("extraction workers not started: %s", exc)


class CrawlContext:
    """What the spiders and the pipeline of one run share."""

    def __init__(self, cfg: Config, db: Database, pages: PageProcessor | None = None,
                 frontier: Frontier | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.pages = pages  # None: pages are only counted
        self.frontier = frontier  # the shared queue's claims (None: this process crawls alone)
        self.tallies: dict[str, OutletTally] = {}
        self.started = datetime.now(UTC)
        self.articles_ahead = 0  # article requests queued by every outlet in this run
        self._pool_starter: threading.Thread | None = None

    def queued_articles(self, n: int) -> None:
        """`n` more article requests are queued. Once the run has POOL_AFTER_PAGES of them
        ahead it is a big run: the extraction workers start now and warm up (seconds of
        imports and lazy models) while robots.txt, feeds and sitemaps still come in,
        instead of after that many pages were extracted in the reactor thread, where each
        one holds up every outlet's next download."""
        from veille.crawler.pipelines import POOL_AFTER_PAGES

        self.articles_ahead += n
        pages = self.pages
        if (pages is not None and pages.pool is None and pages.workers > 1 and pages.leases
                and self.articles_ahead >= POOL_AFTER_PAGES):
            self._start_pool_thread(pages)

    def first_crawls(self, outlets: Iterable[str]) -> None:
        """Before the crawl: outlets with nothing stored yet will bring their feeds' worth
        of new articles, counted ahead (FIRST_CRAWL_ARTICLES each). When that makes a big
        run, the extraction workers start now, their fork server's imports overlapping
        this process's start-up on the other core, and are warm before the first article
        arrives, instead of once POOL_AFTER_PAGES requests were queued (4 s into the
        100-outlet bench, warm 2-4 s later, with 500 pages waiting behind them). A run of
        known outlets, or of a few new ones, decides as before, on the requests it queues."""
        from veille.crawler.pipelines import POOL_AFTER_PAGES

        names = list(dict.fromkeys(outlets))
        pages = self.pages
        if pages is None or pages.workers <= 1 or len(names) * FIRST_CRAWL_ARTICLES < POOL_AFTER_PAGES:
            return
        with self.db.transaction() as s:
            known = page_store.outlets_with_pages(s, names)
        new = len(set(names) - known)
        if new * FIRST_CRAWL_ARTICLES >= POOL_AFTER_PAGES:
            self._start_pool_thread(pages)

    def _start_pool_thread(self, pages: PageProcessor) -> None:
        """Starting the pool waits for the fork server to import the extractor (1.5 s and
        more): in a thread, or every outlet's downloads wait as long. The pool is assigned
        at once, so the pipeline starts no second one meanwhile."""
        if self._pool_starter is None:
            self._pool_starter = threading.Thread(target=_start_pool, args=(pages,),
                                                  name="extraction-pool", daemon=True)
            self._pool_starter.start()

    def __deepcopy__(self, _memo: dict[int, object]) -> CrawlContext:
        """Every crawler deep-copies the settings that carry the context (CRAWL_CONTEXT):
        the copies must share the run's state, not clone it (the database among it)."""
        return self

    def tally(self, outlet: str) -> OutletTally:
        if outlet not in self.tallies:
            self.tallies[outlet] = OutletTally(outlet)
        return self.tallies[outlet]

    # the shared frontier ------------------------------------------------------------------
    def claim(self, urls: Iterable[str]) -> set[str]:
        """The URLs this process may request: all of them, or those it claimed first."""
        if self.frontier is None:
            return set(urls)
        return self.frontier.claim(urls)

    def release(self, *urls: str | None) -> None:
        """Give claims back after a failure worth retrying (no-op without a shared queue)."""
        if self.frontier is not None:
            for url in urls:
                if url:
                    self.frontier.release(url)

    # storage look-ups ------------------------------------------------------------------
    def settled(self, urls: Iterable[str]) -> set[str]:
        with self.db.transaction() as s:
            return page_store.settled_urls(s, urls)

    def conditional_headers(self, url: str) -> dict[str, str]:
        """If-None-Match / If-Modified-Since for a source, unless a full fetch is due."""
        with self.db.transaction() as s:
            v = page_store.feed_validators(s, url)
        if v is None or v.last_full_fetch is None:
            return {}
        last = as_utc(v.last_full_fetch)
        if datetime.now(UTC) - last >= FULL_FETCH_EVERY:
            return {}
        headers = {}
        if v.etag:
            headers["If-None-Match"] = v.etag
        if v.last_modified:
            headers["If-Modified-Since"] = v.last_modified
        return headers

    async def close_outlet(self, tally: OutletTally, finished: bool) -> None:
        """An outlet's spider closed: save its sources' validators. In the run's writer
        thread when there is one (`PageProcessor.in_writer`), after the outlet's pages: a
        transaction per outlet closing would hold up the other outlets' requests, and on
        SQLite a second writing thread would contend with the pages being stored."""
        if self.pages is not None:
            await self.pages.in_writer(self.save_validators, tally, finished)
        else:
            self.save_validators(tally, finished)

    def save_validators(self, tally: OutletTally, finished: bool) -> None:
        """Remember sources' validators; forget them when their entries were not all fetched.

        A source cut short (budget, failed article, interrupted run) must answer 200 next
        time, so its validators are cleared instead of saved. With a shared queue, an
        article of a source may fail in another worker than the one that parsed the
        source: cut-short sources are shared in Redis, and whoever saves last sees them.
        Two workers saving the same new source race on its row: the loser retries.
        """
        dirty, foreign = set(tally.dirty), set()
        if self.frontier is not None:
            self.frontier.mark_dirty(tally.dirty)
            dirty |= self.frontier.dirty(tally.validators)
            foreign = tally.dirty - set(tally.validators) - {""}
        for attempt in (1, 2):
            try:
                with self.db.transaction() as s:
                    for url in tally.touched:
                        page_store.save_feed_validators(s, url, None, None, full_fetch=False)
                    for url, (etag, modified, full) in tally.validators.items():
                        if finished and url not in dirty:
                            page_store.save_feed_validators(s, url, etag, modified, full_fetch=full)
                        else:
                            page_store.save_feed_validators(s, url, None, None, full_fetch=True)
                    for url in foreign:  # parsed by another worker, cut short here
                        page_store.save_feed_validators(s, url, None, None, full_fetch=True)
                return
            except IntegrityError:
                if attempt == 2 or self.frontier is None:
                    raise
