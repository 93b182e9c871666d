"""A site's delay counted from its last answer, so the site itself sees the requests apart.

Scrapy spaces a site's requests by DOWNLOAD_DELAY from the moment it *dispatches* each
one (`Slot.lastseen`). The write to the socket comes later, when the reactor thread gets
to it: in a crawl where that one thread also parses and stores pages for every outlet, a
request can leave a few hundred ms late and the next one on time, and the site sees two
requests closer than the delay (0.5 s apart for a 1 s delay in the 100-outlet bench on a
busy machine). This extension moves the slot's `lastseen` to the moment each response
arrived: a request reaches the site before its answer leaves it, so the next request,
dispatched at least a delay after that answer, reaches the site at least a delay after
the previous one, however late either was written.

That holds when each answer comes before the next request is due. With two requests per
site allowed in flight (CONCURRENT_REQUESTS_PER_DOMAIN 2), a slow answer let Scrapy
dispatch the next request a delay after the previous *dispatch*, and if the previous was
written late the site saw them closer (0.25-0.38 s apart for a 1 s delay on a loaded
machine). `PacedDownloader` makes the next request wait for that answer, and then the
delay from it, but never more than PENDING_DELAYS delays after the previous dispatch: so
a request written up to a delay late still reaches the site a delay before the next,
and a page that hangs slows its site to one request per two delays instead of stalling
it until the timeout (one request at a time did that). Scrapy's own downloader still
does the waiting (and AutoThrottle, which adjusts the same slot's delay on the same
signal, still can only raise it).
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.core.downloader import Downloader
from scrapy.utils.asyncio import call_later

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.core.downloader import Slot
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


PENDING_DELAYS = 2.0  # longest wait for the previous answer, in delays from its dispatch


class PacedDownloader(Downloader):
    """Scrapy's downloader, but a site's next request waits for the answer to the last one
    sent (at most PENDING_DELAYS delays from its dispatch) before its own delay."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._sent: dict[int, float] = {}  # id(slot) -> its lastseen at its last dispatch (Slot has __slots__)

    def _process_queue(self, *args: Any) -> None:
        # args: (slot,) in Scrapy 2.19, (spider, slot) in older releases
        slot: Slot = args[-1]
        delay = slot.download_delay()
        # Scrapy sets lastseen at each dispatch and DelayFromResponse at each answer: the
        # last one sent has no answer yet while lastseen is still its dispatch time
        unanswered = slot.transferring and self._sent.get(id(slot)) == slot.lastseen
        if delay and unanswered and not slot.latercall:
            wait = slot.lastseen + PENDING_DELAYS * delay - monotonic()
            if wait > 0:
                slot.latercall = call_later(wait, self._latercall, *args)
                return
        queued = len(slot.queue)
        super()._process_queue(*args)
        if len(slot.queue) < queued:  # one dispatched (with a delay, one per call)
            self._sent[id(slot)] = slot.lastseen
