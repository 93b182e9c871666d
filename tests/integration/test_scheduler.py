"""crawler/scheduler: scrapy-redis's scheduler with a local lane, on a real redis-server.

Two workers' schedulers share one queue in Redis: an article request enqueued by one is
taken by the other, while a worker's own discovery requests (meta LOCAL) never leave it
and come out first, highest priority first and in arrival order among equals. Built by
Scrapy's machinery from `get_crawler()` with the crawl's queue settings. The deprecation
warnings scrapy-redis triggers under Scrapy >= 2.13 are checked in a child process with
every warning shown, as the crawl log would get them.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture
from veille.crawler.frontier import LOCAL, queue_settings
from veille.crawler.scheduler import SharedScheduler

# pytest collects inside a catch_warnings block, so the module's own filter (set at import)
# is gone by the time these tests run; the child process below checks that filter
pytestmark = pytest.mark.filterwarnings(
    "ignore::scrapy.exceptions.ScrapyDeprecationWarning:scrapy_redis.scheduler")


class Worker:
    """One worker's scheduler, opened on the outlet spider `name`."""

    def __init__(self, url: str, name: str) -> None:
        spidercls = type("Outlet", (Spider,), {"name": name})
        crawler = get_crawler(spidercls, queue_settings(url))
        self.spider = crawler._create_spider()
        self.stats = crawler.stats
        self.scheduler = SharedScheduler.from_crawler(crawler)
        self.scheduler.open(self.spider)

    def drain(self) -> list[str]:
        out = []
        while (request := self.scheduler.next_request()) is not None:
            out.append(request.url)
        return out


@pytest.fixture()
def workers(redis_server: RedisServer) -> Iterator[tuple[Worker, Worker]]:  # noqa: F811
    name = "t" + uuid.uuid4().hex[:8]
    a, b = Worker(redis_server.url, name), Worker(redis_server.url, name)
    yield a, b
    for w in (a, b):
        w.scheduler.close("finished")
    redis.Redis.from_url(redis_server.url).delete(f"veille:{name}:requests", f"veille:{name}:dupefilter")


def local(url: str, priority: int) -> Request:
    return Request(url, priority=priority, meta={LOCAL: True}, dont_filter=True)


def test_article_requests_are_shared_and_discovery_stays_with_its_worker(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    assert a.scheduler.enqueue_request(Request("https://o.example/article-1.html", dont_filter=True))
    assert a.scheduler.enqueue_request(local("https://o.example/feed/", 10))
    assert len(a.scheduler) == 2 and len(b.scheduler) == 1  # b sees only the shared one
    assert b.scheduler.has_pending_requests()
    assert b.drain() == ["https://o.example/article-1.html"]
    assert a.drain() == ["https://o.example/feed/"]
    assert not a.scheduler.has_pending_requests() and not b.scheduler.has_pending_requests()


def test_discovery_comes_first_by_priority_then_in_arrival_order(workers: tuple[Worker, Worker]) -> None:
    a, _ = workers
    a.scheduler.enqueue_request(Request("https://o.example/article-1.html", priority=50, dont_filter=True))
    for url, priority in (("https://o.example/sitemap-1.xml", 5), ("https://o.example/feed/", 10),
                          ("https://o.example/section/", 10), ("https://o.example/sitemap-2.xml", 5)):
        a.scheduler.enqueue_request(local(url, priority))
    assert a.drain() == ["https://o.example/feed/", "https://o.example/section/",
                         "https://o.example/sitemap-1.xml", "https://o.example/sitemap-2.xml",
                         "https://o.example/article-1.html"]
    assert a.stats is not None
    assert (a.stats.get_value("scheduler/enqueued/local"), a.stats.get_value("scheduler/dequeued/local")) == (4, 4)


CHILD = """
import sys, uuid, warnings
from scrapy import Request, Spider
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.utils.test import get_crawler
from veille.crawler.frontier import queue_settings
from veille.crawler.scheduler import SharedScheduler

name = "t" + uuid.uuid4().hex[:8]
crawler = get_crawler(type("Outlet", (Spider,), {"name": name}), queue_settings(sys.argv[1]))
spider = crawler._create_spider()
scheduler = SharedScheduler.from_crawler(crawler)
scheduler.open(spider)
scheduler.enqueue_request(Request("https://o.example/a.html", dont_filter=True))
assert scheduler.next_request() is not None
warnings.warn("a deprecation of our own", ScrapyDeprecationWarning)
"""


def test_only_scrapy_redis_deprecation_warnings_are_silenced(redis_server: RedisServer) -> None:  # noqa: F811
    done = subprocess.run([sys.executable, "-W", "always", "-c", CHILD, redis_server.url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "ScrapyDeprecationWarning" in line]
    assert len(warned) == 1 and "a deprecation of our own" in warned[0], done.stderr
