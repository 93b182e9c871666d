"""Entry points for one crawl of the configured outlets.

- `run_crawl(cfg, outlets)` runs a crawl *in this process*: every outlet is its own
  spider (own stats, own download slots) in one Scrapy `CrawlerProcess`, so a dead or
  hanging outlet costs only its own timeouts. Twisted's reactor cannot be restarted, so
  this works **once per process**; a second call raises `CrawlError`.
- `veille crawl` (app/cli.py) is the command around it; the daemon and
  `veille.crawl.run_crawl_subprocess` run that command as a child process, which is what
  anything that crawls more than once per process must use.

A run is recorded as a CrawlRun (start_run → per-outlet save_outlet_counts →
finish_run). SIGINT/SIGTERM (or `crawl.wall_clock_limit`) stop it the Scrapy way:
in-flight pages finish and commit, queued ones are dropped, the run ends
"interrupted"; a second signal forces the stop. Rows are never half-written: each
article is one transaction (pipeline.process).

With `crawl.queue` set the crawl is one worker of a shared frontier in Redis
(crawler.frontier): any number of them, on any machines, crawl into one database, each
article fetched by one of them; each worker records its own run.

Run status: ok; interrupted (signal or wall-clock limit); failed (the crawl could not
run, or not one outlet could be crawled, or the shared queue is unreachable). `veille crawl`
exits 0 on ok or interrupted, 1 on failed (app/cli.py lists the codes).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console

from veille.crawler.frontier import Frontier, QueueError
from veille.crawler.progress import live_progress, problems, summary_table
from veille.crawler.spiders.context import CRAWL_CONTEXT, CrawlContext
from veille.pipeline.config import Config, OutletConfig
from veille.storage.crawl_runs import OutletCounts
from veille.storage.db import StorageError
from veille.storage.runs import RunRecord

if TYPE_CHECKING:
    from veille.pipeline.process import Processor

log = logging.getLogger("crawler")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_reactor_used = False  # Twisted's reactor runs once per process


class CrawlError(Exception):
    """The crawl could not be run (worded for the user)."""


@dataclass
class CrawlSummary:
    run_id: int
    status: str  # ok | interrupted | failed
    outlets: dict[str, OutletCounts] = field(default_factory=dict)
    message: str | None = None
    seconds: float = 0.0

    @property
    def totals(self) -> OutletCounts:
        t = OutletCounts(status=self.status)
        for c in self.outlets.values():
            for name in ("discovered", "fetched", "new", "updated", "skipped", "failed"):
                setattr(t, name, getattr(t, name) + getattr(c, name))
            for reason, n in c.refusals.items():
                t.refusals[reason] = t.refusals.get(reason, 0) + n
        return t

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "message": self.message,
                "seconds": round(self.seconds, 2),
                "outlets": {n: asdict(c) for n, c in self.outlets.items()},
                "totals": asdict(self.totals)}


def select_outlets(cfg: Config, names: Sequence[str] | None) -> list[OutletConfig]:
    if not names:
        return list(cfg.outlets)
    known = {o.name: o for o in cfg.outlets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CrawlError(f"{cfg.source}: no outlet named {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    return [known[n] for n in dict.fromkeys(names)]


def run_crawl(cfg: Config, outlets: Sequence[str] | None = None, *, progress: bool = True,
              console: Console | None = None, workers: int | None = None) -> CrawlSummary:
    """Crawl the outlets (all, or those named) once, in this process.

    Args:
        cfg: the validated config.
        outlets: outlet names to crawl; None or empty for all.
        progress: show the live table (on a terminal) and print the summary table.
        console: where to draw; default a Console on stdout.
        workers: extraction processes (default: one per CPU; 1 = extract in-process).

    Raises:
        CrawlError: unknown outlet, or a crawl already ran in this process.
        StorageError: the run could not be recorded (database down, disk full): one line.
    """
    global _reactor_used
    selected = select_outlets(cfg, outlets)
    if _reactor_used or getattr(sys.modules.get("twisted.internet.reactor"), "_startedBefore", False):
        raise CrawlError("a crawl already ran in this process (Twisted's reactor cannot "
                         "restart): use veille.crawl.run_crawl_subprocess")
    from scrapy.crawler import CrawlerProcess

    from veille.crawler.pipelines import PageProcessor
    from veille.crawler.settings import build_settings
    from veille.crawler.spiders.outlet import OutletSpider
    from veille.storage.db import Database

    console = console or Console()
    frontier = (Frontier.from_config(cfg.crawl.queue, cfg.crawl.wall_clock_limit,
                                     cfg.crawl.queue_idle)
                if cfg.crawl.queue else None)
    with frontier.schema_lock() if frontier else nullcontext():  # workers starting together
        db = Database(cfg.database.url)
    try:
        record = RunRecord.start(db)  # a full disk, a lost server: StorageError, one line
    except StorageError:
        db.dispose()
        raise
    run_id = record.id
    started = time.monotonic()
    context = CrawlContext(cfg, db, frontier=frontier)
    for o in selected:
        context.tally(o.name)
    status, message, unrecorded = "failed", None, None
    try:
        if frontier is not None:
            frontier.check()
            frontier.release_orphans()
        context.pages = PageProcessor(db, cfg, workers)
        context.first_crawls(o.name for o in selected)  # a big first crawl: workers start now
        _quiet_robots_tracebacks()
        settings = build_settings(cfg.crawl)
        settings["LOG_INSTALL_ROOT_HANDLER"] = not logging.getLogger().handlers
        settings[CRAWL_CONTEXT] = context  # what each outlet's item pipeline is built from
        _quiet_scrapy_banner()
        process = CrawlerProcess(settings)
        _keep_scrapy_quiet()
        for o in selected:
            process.crawl(OutletSpider, outlet=o, context=context)
        _reactor_used = True
        with live_progress(context.tallies, console, enabled=progress):
            process.start(install_signal_handlers=threading.current_thread() is threading.main_thread())
        _phase("crawl", started)
        _retire_forkserver()
        status, message = run_status(context)
    except KeyboardInterrupt:
        status, message = "interrupted", "interrupted before the crawl started"
    except QueueError as exc:
        status, message = "failed", str(exc)
        log.error("crawl failed: %s", message)
    except Exception as exc:
        log.debug("crawl failed", exc_info=True)
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        log.error("crawl failed: %s", message)
    finally:
        if context.pages is not None:
            context.pages.close()
            settling = time.monotonic()
            settle_error = _settle(context.pages.processor)
            _phase("story pass", settling)
            if settle_error:
                message = f"{message}; {settle_error}" if message else settle_error
        if frontier is not None:
            frontier.close()
        counts = {name: t.final_counts() for name, t in context.tallies.items()}
        recording = time.monotonic()
        unrecorded = record.finish(counts, status, message)
        if unrecorded:  # said on its own line by the caller
            status = "failed"
        elif (untidy := record.tidy(cfg.database.keep_runs_days)) is not None:
            log.warning("%s", untidy)
        db.dispose()
        _phase("run record", recording)
    summary = CrawlSummary(run_id, status, counts, message, time.monotonic() - started)
    if progress:
        print_summary(summary, console)
    if unrecorded:
        raise StorageError(unrecorded)
    return summary


def _retire_forkserver() -> None:
    """The extraction workers stopped with the last outlet's pipeline; their forkserver
    would live until this process exits and then take a while to tear its imports down,
    holding our stdout/stderr open for whoever waits on them (the daemon, `veille.child`).
    Stop it now, in a thread, while the story pass runs. multiprocessing has no public
    call for this (`ForkServer._stop`, used by CPython's tests): skipped if it is gone.
    A later pool in this process would start a new forkserver."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if getattr(server, "_forkserver_pid", None) is None or not callable(stop):
        return
    threading.Thread(target=_quietly, args=(stop,), name="forkserver-stop", daemon=True).start()


def _quietly(stop: Any) -> None:
    try:
        stop()
    except Exception as exc:  # the forkserver dies with this process anyway
        log.debug("forkserver not stopped early: %s", exc)


def _phase(name: str, since: float) -> None:
    """Log (debug) how long a phase of the run took: bench.outlets100 reads these lines."""
    seconds = time.monotonic() - since
    log.debug("%s: %.2f s", name, seconds, extra={"phase": name, "seconds": round(seconds, 3)})


def _settle(processor: Processor) -> str | None:
    """Place the run's articles in stories; what went wrong, in one line, if anything.

    Articles left without a story are placed by the next run (or `veille stories --settle`).
    """
    try:
        processor.settle()
    except Exception as exc:
        log.debug("story pass failed", exc_info=True)
        log.error("stories: pass failed, articles wait for the next run: %s: %s",
                  type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return f"story pass failed ({type(exc).__name__})"
    return None


def run_status(context: CrawlContext) -> tuple[str, str | None]:
    tallies = list(context.tallies.values())
    reasons = {t.close_reason for t in tallies}
    if None in reasons or "shutdown" in reasons:
        return "interrupted", "stopped by a signal before the crawl ended"
    if "closespider_timeout" in reasons:
        return "interrupted", f"wall-clock limit of {context.cfg.crawl.wall_clock_limit:g}s reached"
    if tallies and all(t.status != "ok" for t in tallies):
        return "failed", "no outlet could be crawled (all failing or blocked)"
    return "ok", None


def print_summary(summary: CrawlSummary, console: Console) -> None:
    title = f"crawl run {summary.run_id}: {summary.status} in {summary.seconds:.1f}s"
    console.print(summary_table(summary.outlets, summary.totals, title))
    if summary.message:
        console.print(f"[bold]{summary.status}[/]: {summary.message}")
    for line in problems(summary.outlets):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in refusal_lines(summary.outlets):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def refusal_lines(outlets: dict[str, OutletCounts]) -> list[str]:
    """One line per outlet naming why pages were not stored as articles, by count."""
    return [f"{name}: not stored as articles: " + ", ".join(
                f"{reason} {n}" for reason, n in sorted(c.refusals.items(), key=lambda kv: -kv[1]))
            for name, c in outlets.items() if c.refusals]


def tune_gc_for_a_crawl() -> None:
    """For the entry point of a crawl process, never a library call: a crawl process is
    short-lived and allocates many small objects per page (lxml trees, ORM rows), and
    frequent gen-0 collections cost ~12% of throughput (bench/)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def end_crawl_process(code: int) -> NoReturn:
    """For the entry point of a crawl process (`veille crawl` run as a program), never a
    library call: once the run is recorded and its output written, exit at once.

    Everything that must outlive the run was committed and closed before (the run record,
    the search index, the database's connections, the extraction workers); what is left
    is the interpreter tearing down a big crawl's objects and modules (ORM, lxml, Twisted),
    0.4-0.9 s after the 100-outlet bench with nothing to save. Logs and stdout are flushed
    first, so the daemon and `veille.child` get every line."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone, a closed stream: nothing to keep
            pass
    os._exit(code)


def _keep_scrapy_quiet() -> None:
    """Scrapy's logging set-up turns its loggers back to DEBUG: keep them at WARNING
    (per-page failures are logged by the spider, with their reason)."""
    root = logging.getLogger().getEffectiveLevel()
    for name in ("scrapy", "twisted"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root))


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def _quiet_scrapy_banner() -> None:
    """Scrapy logs its start-up banner at INFO while it sets its loggers to DEBUG, before
    `_keep_scrapy_quiet` can act: a filter on that one logger drops it (no process-wide
    `logging.disable`)."""
    banner = logging.getLogger("scrapy.utils.log")
    if _warnings_only not in banner.filters:
        banner.addFilter(_warnings_only)


def _quiet_robots_tracebacks() -> None:
    """Scrapy logs a failed robots.txt download with a traceback; the URL and error suffice."""
    def strip(record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True

    logging.getLogger("scrapy.downloadermiddlewares.robotstxt").addFilter(strip)
