"""crawler/settings: the Scrapy settings one crawl runs with, checked through Scrapy itself.

Scrapy builds the downloader chain from them (`get_crawler`, DownloaderMiddlewareManager),
so the tests read the order requests and responses really go through: the address guard
before robots.txt is fetched, bot challenges seen before RetryMiddleware, the redirect
guard after OffsiteMiddleware, the shared pace last before the download. robots.txt rules
are matched with Scrapy's own parser and the product token taken from the user agent.
"""

from __future__ import annotations

from typing import Any

import pytest
from scrapy.core.downloader.middleware import DownloaderMiddlewareManager
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.robotstxt import ProtegoRobotParser
from scrapy.utils.test import get_crawler

from veille.crawler.middlewares import (
    AddressGuardMiddleware,
    ChallengeMiddleware,
    RedirectGuardMiddleware,
    RobotsTxtMiddleware,
    SharedPaceMiddleware,
)
from veille.crawler.settings import build_settings, robots_token
from veille.pipeline.config import CrawlConfig


def chain(crawl: CrawlConfig) -> tuple[list[type], list[type]]:
    """The classes whose process_request, then process_response, Scrapy calls, in order."""
    manager = DownloaderMiddlewareManager.from_crawler(get_crawler(None, build_settings(crawl)))

    def owners(method: str) -> list[type]:
        return [type(getattr(f, "__self__", f)) for f in manager.methods[method]]

    return owners("process_request"), owners("process_response")


@pytest.mark.parametrize(("agent", "token"), [
    ("veille/0.1 (+https://example.org/veille)", "veille"),
    ("Mozilla/5.0 (compatible; VeilleBot/2.1)", "Mozilla"),
    ("  veille  ", "veille"),
    ("veille-bot (+mailto:ops@example.org)", "veille-bot"),
])
def test_robots_rules_are_matched_against_the_user_agents_product_token(agent: str, token: str) -> None:
    assert robots_token(agent) == token


def test_a_robots_txt_group_for_veille_applies_to_the_configured_agent() -> None:
    settings = build_settings(CrawlConfig())
    crawler = get_crawler(None, settings)
    robots = b"User-agent: veille\nDisallow: /private/\n\nUser-agent: *\nDisallow: /\n"
    parser = ProtegoRobotParser.from_crawler(crawler, robots)
    agent = settings["ROBOTSTXT_USER_AGENT"]
    assert parser.allowed("https://o.example/politique/1.html", agent)
    assert not parser.allowed("https://o.example/private/1.html", agent)


def test_the_downloader_chain_is_ordered_as_the_guards_need() -> None:
    requests, responses = chain(CrawlConfig())
    assert ScrapyRobotsTxtMiddleware not in requests  # ours replaces it
    order = [OffsiteMiddleware, RedirectGuardMiddleware, AddressGuardMiddleware, RobotsTxtMiddleware]
    assert [c for c in requests if c in order] == order
    assert responses.index(ChallengeMiddleware) < responses.index(RetryMiddleware)
    assert SharedPaceMiddleware not in requests  # alone, Scrapy's own delay paces the sites


def test_with_a_shared_queue_workers_pace_sites_together_instead_of_each_alone() -> None:
    crawl = CrawlConfig(queue="redis://127.0.0.1:6379/0", download_delay=2.5)
    settings = build_settings(crawl)
    assert settings["SCHEDULER"] == "veille.crawler.scheduler.SharedScheduler"  # by name: optional
    assert (settings["VEILLE_SHARED_DELAY"], settings["DOWNLOAD_DELAY"], settings["AUTOTHROTTLE_ENABLED"]) == (
        2.5, 0, False)
    requests, _ = chain(crawl)
    assert requests[-1] is SharedPaceMiddleware  # the last step before the download


@pytest.mark.parametrize(("crawl", "absent"), [
    ({"retries": 0}, RetryMiddleware),
    ({"obey_robots": False}, RobotsTxtMiddleware),
])
def test_switched_off_parts_are_not_in_the_chain(crawl: dict[str, Any], absent: type) -> None:
    requests, responses = chain(CrawlConfig(**crawl))
    assert absent not in requests + responses
    present = RetryMiddleware if absent is RobotsTxtMiddleware else RobotsTxtMiddleware
    assert present in requests + responses


def test_limits_come_from_the_crawl_section() -> None:
    settings = build_settings(CrawlConfig(timeout=12.5, max_page_bytes=200_000, wall_clock_limit=600,
                                          concurrency_per_domain=3, retries=4), log_level="DEBUG")
    assert (settings["DOWNLOAD_TIMEOUT"], settings["DOWNLOAD_MAXSIZE"], settings["CLOSESPIDER_TIMEOUT"]) == (
        12.5, 200_000, 600)
    assert settings["DOWNLOAD_WARNSIZE"] < settings["DOWNLOAD_MAXSIZE"]
    assert (settings["CONCURRENT_REQUESTS_PER_DOMAIN"], settings["RETRY_TIMES"]) == (3, 4)
    assert settings["LOG_LEVEL"] == "DEBUG" and settings["COOKIES_ENABLED"] is False
    assert 429 in settings["RETRY_HTTP_CODES"] and 404 not in settings["RETRY_HTTP_CODES"]


def test_a_sites_requests_are_spaced_by_exactly_the_configured_delay() -> None:
    # Scrapy's default jitter would space them anywhere from 0.5x to 1.5x download_delay
    # (a slot built as Scrapy's Downloader builds it; the Downloader itself needs a reactor)
    from scrapy.core.downloader import Slot, _default_jitter

    crawler = get_crawler(None, build_settings(CrawlConfig(download_delay=1.5)))
    slot = Slot(2, crawler.settings.getfloat("DOWNLOAD_DELAY"), _default_jitter(crawler.settings))
    assert {slot.download_delay() for _ in range(50)} == {1.5}


def test_the_spiders_callbacks_need_no_return_value_check() -> None:
    # the check Scrapy would run on every response (WARN_ON_GENERATOR_RETURN_VALUE is off)
    import inspect

    from scrapy.utils.misc import is_generator_with_return_value

    from veille.crawler.spiders.outlet import OutletSpider

    assert build_settings(CrawlConfig())["WARN_ON_GENERATOR_RETURN_VALUE"] is False
    generators = [f for _, f in inspect.getmembers(OutletSpider, inspect.isgeneratorfunction)]
    assert len(generators) >= 5
    assert not [f.__name__ for f in generators if is_generator_with_return_value(f)]
