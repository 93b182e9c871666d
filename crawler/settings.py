"""Scrapy settings built from the validated `crawl:` section; there is no global settings module.

Everything politeness and robustness needs is Scrapy's own machinery, switched on and
sized here: RobotsTxtMiddleware (ROBOTSTXT_OBEY), AutoThrottle, per-domain concurrency
and delay (`download_delay` between a site's requests, no jitter, counted from the
site's last answer, and after the last request's answer when it is slow, within a
bound: crawler.pace),
RetryMiddleware, DOWNLOAD_TIMEOUT / DOWNLOAD_MAXSIZE, OffsiteMiddleware (the spider's `allowed_domains`), and CLOSESPIDER_TIMEOUT for the run's wall-clock limit.
Two settings of our own bound sitemap indexes (`VEILLE_SITEMAP_MAX_DEPTH` levels of index
below a configured sitemap, `VEILLE_SITEMAP_MAX_REQUESTS` sitemap requests per outlet and
crawl; see crawler.spiders.outlet): enough for real outlets, a trap costs at most that. With `crawl.queue`, scrapy-redis's
scheduler keeps the article requests in Redis (crawler.frontier.queue_settings).
"""

from __future__ import annotations

from typing import Any

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.settings import default_settings

from veille.crawler.frontier import pace_settings, queue_settings
from veille.crawler.middlewares import (
    AddressGuardMiddleware,
    ChallengeMiddleware,
    RedirectGuardMiddleware,
    RobotsTxtMiddleware,
    SharedPaceMiddleware,
)
from veille.crawler.pace import DelayFromResponse, PacedDownloader
from veille.crawler.pipelines import ProcessorPipeline
from veille.pipeline.config import CrawlConfig

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
SITEMAP_MAX_DEPTH = 2  # configured index -> index -> urlset
SITEMAP_MAX_REQUESTS = 50  # per outlet and crawl (an index lists at most 20 children we follow)


def robots_token(user_agent: str) -> str:
    """The product token robots.txt rules are matched against (`veille/0.1 (+url)` → `veille`)."""
    token = user_agent.strip().split("/", 1)[0].split()[0] if user_agent.strip() else ""
    return token or user_agent


def exact_delay() -> dict[str, Any]:
    """Settings that make Scrapy wait exactly DOWNLOAD_DELAY between a site's requests.

    Scrapy >= 2.19 names the jitter DOWNLOAD_DELAY_JITTER (a magnitude); older releases
    only have RANDOMIZE_DOWNLOAD_DELAY, deprecated since."""
    if hasattr(default_settings, "DOWNLOAD_DELAY_JITTER"):
        return {"DOWNLOAD_DELAY_JITTER": 0.0}
    return {"RANDOMIZE_DOWNLOAD_DELAY": False}  # pragma: no cover - Scrapy < 2.19


def build_settings(crawl: CrawlConfig, *, log_level: str = "INFO") -> dict[str, Any]:
    """Settings for one CrawlerProcess (shared by every outlet's crawler).

    Args:
        crawl: the `crawl:` section of the config.
        log_level: level Scrapy uses if it installs its own log handler (it does not
            when the caller configured logging, see veille.crawl).
    """
    delay = float(crawl.download_delay)
    per_domain = int(crawl.concurrency_per_domain)
    shared = queue_settings(crawl.queue) | pace_settings(delay) if crawl.queue else {}
    settings: dict[str, Any] = {
        "BOT_NAME": "veille",
        "TWISTED_REACTOR": ASYNCIO_REACTOR,
        "USER_AGENT": crawl.user_agent,
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "fr,ar;q=0.9,en;q=0.8",
        },
        # politeness
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "ROBOTSTXT_USER_AGENT": robots_token(crawl.user_agent),
        # one crawler per outlet: this bounds what sits in its downloader, which a graceful
        # stop lets finish, so keep it small
        "CONCURRENT_REQUESTS": max(2, per_domain * 2),
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_domain,
        # outputs of one response handled at a time: Scrapy starts that many tasks for
        # every response (100 by default, ~90,000 in the 100-outlet bench, a good share
        # of the reactor thread), while ours yield one item (an article) or requests
        "CONCURRENT_ITEMS": 4,
        "DOWNLOAD_DELAY": delay,
        # the delay as configured, never shortened: Scrapy's default jitter spaces a site's
        # requests anywhere from 0.5x to 1.5x download_delay
        **exact_delay(),
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": max(30.0, delay * 10),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(per_domain),
        "COOKIES_ENABLED": False,
        # robustness
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "DNS_TIMEOUT": max(1, int(crawl.timeout)),
        "DOWNLOAD_MAXSIZE": crawl.max_page_bytes,
        "DOWNLOAD_WARNSIZE": crawl.max_page_bytes // 2,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,
        "RETRY_ENABLED": crawl.retries > 0,
        "RETRY_TIMES": crawl.retries,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "RETRY_GIVE_UP_LOG_LEVEL": "DEBUG",  # the spider logs each final failure with its reason
        "REDIRECT_MAX_TIMES": 5,
        "VEILLE_SITEMAP_MAX_DEPTH": SITEMAP_MAX_DEPTH,
        "VEILLE_SITEMAP_MAX_REQUESTS": SITEMAP_MAX_REQUESTS,
        "CLOSESPIDER_TIMEOUT": crawl.wall_clock_limit,
        # components, named by class (survives a package rename)
        "ITEM_PIPELINES": {ProcessorPipeline: 300},
        "DOWNLOADER_MIDDLEWARES": {
            # Scrapy's, with every waiting request getting the rules (see the module)
            ScrapyRobotsTxtMiddleware: None,
            RobotsTxtMiddleware: 100,
            RedirectGuardMiddleware: 60,  # after OffsiteMiddleware (50)
            AddressGuardMiddleware: 65,  # before robots.txt is fetched
            ChallengeMiddleware: 560,  # answers seen before RetryMiddleware
            # off with COOKIES_ENABLED anyway; named so its module is not imported either
            "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
        },
        # a site's delay runs from its last answer, so the site sees requests a delay apart
        # even when the reactor thread wrote one late (crawler.pace)...
        "DOWNLOADER": PacedDownloader,  # ...and a slow answer is waited for, within a bound
        # Scrapy imports an extension it then finds disabled: the remote control's module
        # (aiohttp's web server, 0.1-0.3 s of the crawl's start-up) is not even imported
        "EXTENSIONS": {"scrapy.extensions.logstats.LogStats": None,
                       "scrapy.extensions.remote_control.RemoteControl": None, DelayFromResponse: 0},
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # Scrapy >= 2.19 opens a control port otherwise
        "STATS_DUMP": False,
        "LOG_LEVEL": log_level,
        "MEMUSAGE_ENABLED": False,
        # Scrapy re-reads the source of every generator callback (inspect + ast) to warn
        # about `return value`, for each response of each outlet's crawler: reactor time
        # (tests/unit/test_outlet_spider.py checks our callbacks return no value instead)
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
    }
    if shared:  # workers: the shared pace is the last step before the download
        settings["DOWNLOADER_MIDDLEWARES"][SharedPaceMiddleware] = 990
    return settings | shared
