"""The shared frontier of distributed workers (`crawl.queue: redis://host:port/db`).

With a queue configured, every crawl process is a *worker* of one frontier in Redis, so
any number of them, on any machines, crawl the outlets together into one PostgreSQL
database. The parts are existing engines, not a protocol of ours:

- **Request queue**: scrapy-redis's scheduler (crawler.scheduler.SharedScheduler) keeps
  each outlet's article requests in a Redis sorted set (`veille:<outlet>:requests`);
  a worker pops one at a time (MULTI/EXEC, so two workers never pop the same one),
  whichever worker discovered it. The worker's own discovery requests (feeds,
  sitemaps, sections, Google News items, meta `LOCAL`) stay in a local queue: every
  worker discovers for itself (idempotent), so its sources' validators and its health
  counts stay its own. SCHEDULER_PERSIST: closing a worker never clears the shared
  queue; what an interrupted round leaves there is fetched by the next one.
- **Seen-URL filter**: the spider's requests carry `dont_filter` (see
  crawler.spiders.outlet), so the filter that matters is ours, at the URL level: an
  article URL is *claimed* (`SET veille:claim:<sha1> NX EX ttl`) before it is
  requested; a URL some worker already claimed is left to it. A redirect to a URL
  claimed elsewhere is not followed (`RedirectGuardMiddleware`); the redirecting URL
  is folded into it at the end of the run. Claims expire after `claim_ttl` (twice the
  wall-clock limit: longer than any worker that could hold them lives), and a
  transient failure releases its claim, so a later round retries the page. Settled
  URLs need no claim: storage is checked first, as without a queue.
- **Finishing**: a worker's outlet spider closes once the shared queue has stayed
  empty and the worker idle for `idle` seconds (`crawl.queue_idle`, default 30; env
  `VEILLE_QUEUE_IDLE` overrides it), so a worker that ran out of work first still
  takes requests another worker's slower discovery adds.
- **Politeness**: workers take turns per site (`pace`, a `SET NX PX` key per host):
  one request per `crawl.download_delay` from all workers together, where Scrapy's own
  delay and concurrency would apply per process (crawler.middlewares.SharedPaceMiddleware).

Requests are pickled into Redis (scrapy-redis's serializer): the Redis server must be
reachable only by the team's own machines.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from veille.storage.db import describe as describe_url

log = logging.getLogger("crawler")

PREFIX = "veille"
LOCAL = "veille_local"  # request meta: this worker's own discovery request, never shared
SCHEMA_LOCK_SECONDS = 300


class QueueError(Exception):
    """The shared queue cannot be used (worded for the user)."""


def describe(url: str) -> str:
    """The queue URL without its password, for messages (masked as database URLs are)."""
    return describe_url(url)


def queue_settings(url: str) -> dict[str, Any]:
    """The Scrapy settings that put the request queue in Redis (scrapy-redis)."""
    return {
        "SCHEDULER": "veille.crawler.scheduler.SharedScheduler",
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        "SCHEDULER_QUEUE_KEY": f"{PREFIX}:%(spider)s:requests",
        # every request carries dont_filter (the URL claims below are the filter), so
        # this stays empty; namespaced anyway, like every key of ours
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_DUPEFILTER_KEY": f"{PREFIX}:%(spider)s:dupefilter",
        "SCHEDULER_PERSIST": True,  # other workers are still using the queue
        "SCHEDULER_FLUSH_ON_START": False,
        "SCHEDULER_IDLE_BEFORE_CLOSE": 0,  # a blocking pop would block the reactor
        "REDIS_URL": url,
    }


def pace_settings(delay: float) -> dict[str, Any]:
    """Workers pace each site together (SharedPaceMiddleware) instead of each on its own:
    Scrapy's per-process delay and AutoThrottle would multiply the rate by the workers."""
    return {
        "VEILLE_SHARED_DELAY": delay,
        "DOWNLOAD_DELAY": 0,
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "AUTOTHROTTLE_ENABLED": False,
    }


class Frontier:
    """This worker's handle on the shared frontier: URL claims and shared crawl state."""

    def __init__(self, url: str, *, claim_ttl: float, idle: float) -> None:
        """No I/O here: a problem with Redis is reported by `check`, inside the run.

        Args:
            url: the Redis URL (`crawl.queue`).
            claim_ttl: seconds a URL claim lasts (at least 60).
            idle: seconds the shared queue must stay empty before the worker stops.
        """
        self.url = url
        self.claim_ttl = max(60, int(claim_ttl))
        self.idle = idle
        self.holder = f"{socket.gethostname()}:{os.getpid()}"  # a claim's value: who holds it
        self.redis: Any = None
        self._problem: str | None = None
        self._errors: tuple[type[BaseException], ...] = (OSError,)
        try:
            import redis
        except ImportError:  # pragma: no cover - an optional dependency
            self._problem = "crawl.queue needs the redis extra: pip install 'veille[redis]'"
            return
        self._errors = (redis.RedisError, OSError)
        try:
            self.redis = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        except ValueError:
            # redis-py's message quotes pieces of the URL, the password among them
            self._problem = f"crawl.queue: {describe(url)} is not a usable Redis URL"

    @classmethod
    def from_config(cls, url: str, wall_clock_limit: float, queue_idle: float) -> Frontier:
        """The frontier of `crawl.queue`; claims outlive any worker (twice the wall-clock limit)."""
        return cls(url, claim_ttl=2 * wall_clock_limit, idle=queue_idle)

    def check(self) -> None:
        """Raise QueueError unless Redis answers."""
        if self._problem is not None:
            raise QueueError(self._problem)
        try:
            self.redis.ping()
        except self._errors as exc:
            raise QueueError(f"crawl.queue: cannot reach Redis at {describe(self.url)} ({exc})") from None

    @staticmethod
    def _key(kind: str, url: str) -> str:
        return f"{PREFIX}:{kind}:{hashlib.sha1(url.encode()).hexdigest()}"

    # claims ------------------------------------------------------------------------------
    def claim(self, urls: Iterable[str]) -> set[str]:
        """Claim the URLs for this worker; return those it got (nobody held them)."""
        wanted = list(dict.fromkeys(urls))
        if not wanted:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for url in wanted:
            pipe.set(self._key("claim", url), self.holder, nx=True, ex=self.claim_ttl)
        return {url for url, won in zip(wanted, pipe.execute(), strict=True) if won}

    def release(self, url: str) -> None:
        """Give a claim back (the fetch failed for a reason worth retrying)."""
        self.redis.delete(self._key("claim", url))

    def release_orphans(self) -> int:
        """Drop the claims of workers of this machine that are gone (killed, crashed), so
        their pages are fetched this round rather than when the claims expire. Other
        machines' claims cannot be checked from here: those wait for their expiry."""
        host = self.holder.rsplit(":", 1)[0]
        orphans: list[str] = []
        keys = list(self.redis.scan_iter(match=f"{PREFIX}:claim:*", count=1000))
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            for key, value in zip(chunk, self.redis.mget(chunk), strict=True):
                holder = value.decode() if isinstance(value, bytes) else str(value or "")
                where, _, pid = holder.rpartition(":")
                if where == host and pid.isdigit() and not _alive(int(pid)):
                    orphans.append(key)
        if orphans:
            self.redis.delete(*orphans)
            log.info("released %d claims of this machine's dead workers", len(orphans))
        return len(orphans)

    # politeness across workers ---------------------------------------------------------------
    def pace(self, host: str, spacing: float) -> float:
        """Take `host`'s turn: 0.0 if no worker sent it a request in the last `spacing`
        seconds (this one may, now), else how long to wait before asking again."""
        key = f"{PREFIX}:pace:{host}"
        if self.redis.set(key, self.holder, nx=True, px=max(1, int(spacing * 1000))):
            return 0.0
        left = self.redis.pttl(key)
        return max(int(left), 1) / 1000 if left and left > 0 else 0.001

    # sources cut short, across workers ------------------------------------------------------
    def mark_dirty(self, sources: Iterable[str]) -> None:
        """Sources whose entries were not all fetched, by any worker: their validators
        must not be saved by whichever worker parsed them."""
        pipe = self.redis.pipeline(transaction=False)
        for url in sources:
            pipe.set(self._key("dirty", url), 1, ex=self.claim_ttl)
        pipe.execute()

    def dirty(self, sources: Iterable[str]) -> set[str]:
        wanted = [u for u in dict.fromkeys(sources) if u]
        if not wanted:
            return set()
        found = self.redis.mget([self._key("dirty", u) for u in wanted])
        return {u for u, v in zip(wanted, found, strict=True) if v is not None}

    # schema --------------------------------------------------------------------------------
    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Serialise the schema check of workers starting together on a fresh database.

        Without Redis the crawl fails right after with a clear message (`check`), so a
        lock that cannot be taken is skipped rather than reported twice.
        """
        held = False
        if self.redis is not None:
            lock = self.redis.lock(f"{PREFIX}:schema", timeout=SCHEMA_LOCK_SECONDS,
                                   blocking_timeout=SCHEMA_LOCK_SECONDS)
            try:
                held = bool(lock.acquire())
            except self._errors:
                held = False
        try:
            yield
        finally:
            if held:
                try:
                    lock.release()
                except self._errors:
                    log.debug("schema lock already expired", exc_info=True)

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
