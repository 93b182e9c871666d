"""A site's delay counted from its last answer, so the site itself sees the requests apart.

Scrapy spaces a site's requests by DOWNLOAD_DELAY from the moment it *dispatches* each
one (`Slot.lastseen`). The write to the socket comes later, when the reactor thread gets
to it: in a crawl where that one thread also parses and stores pages for every outlet, a
request can leave a few hundred ms late and the next one on time, and the site sees two
requests closer than the delay (0.5 s apart for a 1 s delay in the 100-outlet bench on a
busy machine). This extension moves the slot's `lastseen` to the moment each response
arrived: a request reaches the site before its answer leaves it, so the next request,
dispatched at least a delay after that answer, reaches the site at least a delay after
the previous one, however late either was written. Scrapy's own downloader still does
the waiting (and AutoThrottle, which adjusts the same slot's delay on the same signal,
still can only raise it).

That holds when each answer comes before the next request is due. With two requests per
site allowed at a time, a slow answer (or a crawl process too busy to read it) would let
Scrapy dispatch the next request a delay after the previous *dispatch*, with the previous
one maybe written late: the site saw requests 0.25-0.35 s apart in the 100-outlet bench
on a machine loaded by other work. `PacedDownloader` closes that gap: while a site with a
delay has a request in flight, its next one waits for the answer (and then for the delay,
from that answer). A delay thus means one request at a time per site; the per-site
concurrency matters only for sites crawled without a delay.
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.core.downloader import Downloader

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.core.downloader import Slot
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class PacedDownloader(Downloader):
    """Scrapy's downloader, but a site with a delay never has two requests in flight."""

    def _process_queue(self, slot: Slot) -> None:
        # Scrapy calls this again when a transfer ends (Downloader._download's finally),
        # after DelayFromResponse moved the slot's lastseen to the answer
        if slot.delay and slot.transferring:
            return
        super()._process_queue(slot)


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
