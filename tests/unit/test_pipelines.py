"""The item pipeline without a server: built by Scrapy's machinery from `get_crawler()`.

`ProcessorPipeline.from_crawler` takes the run's CrawlContext from the crawler's settings,
`open_spider` / `close_spider` take and give back a lease on the run's PageProcessor, and
`process_item` routes the spider's items (`RawPage`, `crawler.items`) to it. The only
storage is a SQLite file in tmp_path; extraction runs in this process (workers=1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy.crawler import Crawler
from scrapy.pipelines import ItemPipelineManager
from scrapy.utils.test import get_crawler

from tests.conftest import FIXTURE_OUTLETS
from veille.crawler.items import ClaimedAlias, Redirected
from veille.crawler.pipelines import PageProcessor, ProcessorPipeline
from veille.crawler.settings import build_settings
from veille.crawler.spiders.context import CRAWL_CONTEXT, CrawlContext
from veille.crawler.spiders.outlet import OutletSpider
from veille.pipeline.config import config_from_dict
from veille.pipeline.types import RawPage
from veille.storage.db import Database

BASE = "http://127.0.0.1:1"
ARTICLE = "/abdellatif-hammouchi-medaille-honneur-police-francaise,108412.html"


@pytest.fixture()
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrawlContext]:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    cfg = config_from_dict({"database": {"url": f"sqlite:///{tmp_path / 'v.db'}"},
                            "outlets": [{"name": "bladi", "url": BASE + "/", "language": "fr"}]})
    db = Database(cfg.database.url)
    yield CrawlContext(cfg, db, pages=PageProcessor(db, cfg, workers=1))
    db.dispose()


def crawler_of(context: CrawlContext) -> Crawler:
    """A crawler as crawler.run builds it: the run's settings, with the context."""
    return get_crawler(OutletSpider, build_settings(context.cfg.crawl) | {CRAWL_CONTEXT: context})


def page(path: str = ARTICLE) -> RawPage:
    body = (FIXTURE_OUTLETS / "bladi" / "articles" / "e1-hammouchi-medaille.html").read_bytes()
    return RawPage(BASE + path, BASE + path, "bladi", 200,
                   {"content-type": "text/html; charset=utf-8"},
                   body.replace(b"{{BASE}}", BASE.encode()), datetime.now(UTC), "fr")


def test_item_pipelines_names_the_class_and_scrapy_builds_it_from_the_crawler(
        context: CrawlContext) -> None:
    assert build_settings(context.cfg.crawl)["ITEM_PIPELINES"] == {ProcessorPipeline: 300}
    manager = ItemPipelineManager.from_crawler(crawler_of(context))
    [pipeline] = [m for m in manager.middlewares if isinstance(m, ProcessorPipeline)]
    assert pipeline.context is context


def test_a_crawler_without_the_runs_context_is_refused() -> None:
    with pytest.raises(TypeError, match=CRAWL_CONTEXT):
        ProcessorPipeline.from_crawler(get_crawler(OutletSpider))


def test_pipelines_lease_the_runs_processor_and_store_what_the_spider_yields(
        context: CrawlContext) -> None:
    pages = context.pages
    assert pages is not None
    first = ProcessorPipeline.from_crawler(crawler_of(context))
    second = ProcessorPipeline.from_crawler(crawler_of(context))
    first.open_spider()
    second.open_spider()
    assert pages.leases == 2

    alias = BASE + "/?p=108412"
    claimed = ClaimedAlias("bladi", BASE + "/s/108412", BASE + ARTICLE)
    for item in (page(), Redirected(page(), alias), claimed, "not ours"):
        assert asyncio.run(first.process_item(item)) is item  # every item goes on
    assert pages.aliases == [claimed]  # folded when the run ends, its target stored by then
    tally = context.tally("bladi")
    assert tally.counts.failed == 0
    assert tally.counts.new + tally.counts.updated + tally.counts.skipped == 2
    assert alias in context.settled([alias])  # the redirect folded into its page

    first.close_spider()
    assert pages.leases == 1 and first.pages is None
    second.close_spider()
    assert pages.leases == 0
    pages.close()  # the run's end (crawler.run)
    assert claimed.alias in context.settled([claimed.alias])


def test_without_a_processor_items_pass_through(context: CrawlContext) -> None:
    context.pages = None
    pipeline = ProcessorPipeline.from_crawler(crawler_of(context))
    pipeline.open_spider()
    assert asyncio.run(pipeline.process_item(page())) is not None
    pipeline.close_spider()
    assert "bladi" not in context.tallies
