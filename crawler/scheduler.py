"""scrapy-redis's scheduler with a local lane for a worker's own discovery requests.

Imported only when `crawl.queue` is set (Scrapy loads it by name from the SCHEDULER
setting), so scrapy-redis stays an optional dependency. See crawler.frontier.

scrapy-redis 0.9.1 still passes `spider=` to the stats collector and calls
`Spider.log()`, both deprecated since Scrapy 2.13: those warnings, and only those
(attributed to scrapy_redis modules), are silenced so they do not reach the crawl log.
"""

from __future__ import annotations

import heapq
import itertools
import warnings
from typing import Any

from scrapy import Request
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy_redis.scheduler import Scheduler

from veille.crawler.frontier import LOCAL

warnings.filterwarnings("ignore", category=ScrapyDeprecationWarning, module=r"scrapy_redis\.")


class SharedScheduler(Scheduler):  # type: ignore[misc]
    """scrapy-redis's scheduler, except that requests marked LOCAL stay in this process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local: list[tuple[int, int, Request]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._local) + int(super().__len__())

    def enqueue_request(self, request: Request) -> bool:
        if request.meta.get(LOCAL):
            heapq.heappush(self._local, (-request.priority, next(self._order), request))
            if self.stats:
                self.stats.inc_value("scheduler/enqueued/local")
            return True
        return bool(super().enqueue_request(request))

    def next_request(self) -> Request | None:
        if self._local:  # discovery first, as sources' priority does without a queue
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/local")
            return heapq.heappop(self._local)[2]
        return super().next_request()  # type: ignore[no-any-return]

    def has_pending_requests(self) -> bool:
        return bool(self._local) or bool(super().has_pending_requests())
