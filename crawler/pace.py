"""A site's delay counted from its last answer, so the site itself sees the requests apart.

Scrapy spaces a site's requests by DOWNLOAD_DELAY from the moment it *dispatches* each
one (`Slot.lastseen`). The write to the socket comes later, when the reactor thread gets
to it: in a crawl where that one thread also parses and stores pages for every outlet, a
request can leave a few hundred ms late and the next one on time, and the site sees two
requests closer than the delay (0.5 s apart for a 1 s delay in the 100-outlet bench on a
busy machine). This extension moves the slot's `lastseen` to the moment each response
arrived: a request reaches the site before its answer leaves it, so the next request,
dispatched at least a delay after that answer, reaches the site at least a delay after
the previous one, however late either was written. One case stays open: with two
requests to a site in flight (CONCURRENT_REQUESTS_PER_DOMAIN 2), while the first's answer
is slower than the delay the second may leave a delay after the first was dispatched
(seen 0.25-0.38 s apart on a loaded machine, bench/README.md). Scrapy's own downloader still does
the waiting (and AutoThrottle, which adjusts the same slot's delay on the same signal,
still can only raise it).
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy import signals

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class DelayFromResponse:
    """Restart a download slot's delay when one of its responses arrives."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        # sent before the downloader looks at the slot's queue again (Downloader._download)
        crawler.signals.connect(self._response_downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DelayFromResponse:
        return cls(crawler)

    def _response_downloaded(self, response: Response, request: Request, **_: Any) -> None:
        engine = self.crawler.engine
        key = request.meta.get("download_slot")
        slot = engine.downloader.slots.get(key) if engine is not None and key is not None else None
        if slot is not None and slot.delay:
            slot.lastseen = max(slot.lastseen, monotonic())
