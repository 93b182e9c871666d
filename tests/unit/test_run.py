"""crawler/run.py pieces that run without a reactor (the crawl itself: test_crawl.py)."""

from __future__ import annotations

import logging

import pytest
from scrapy.settings import Settings
from scrapy.utils.log import log_scrapy_info

from veille.crawler.run import _quiet_scrapy_banner


def test_scrapy_banner_is_dropped_without_disabling_logging(caplog: pytest.LogCaptureFixture) -> None:
    """The banner Scrapy logs while it builds its process is dropped by a filter on its
    own logger; logging stays enabled for everyone else (no `logging.disable`)."""
    caplog.set_level(logging.INFO)
    _quiet_scrapy_banner()
    _quiet_scrapy_banner()  # twice: one filter
    log_scrapy_info(Settings({"LOG_VERSIONS": ["lxml"]}))
    logging.getLogger("scrapy.utils.log").warning("a warning still passes")
    logging.getLogger("veille.test").info("others keep INFO")
    assert [r.getMessage() for r in caplog.records] == ["a warning still passes", "others keep INFO"]
    assert logging.root.manager.disable == logging.NOTSET
    assert len(logging.getLogger("scrapy.utils.log").filters) == 1
