"""A crawl names and counts every page it did not store as an article."""

from __future__ import annotations

from veille.crawler.run import CrawlSummary, refusal_lines
from veille.crawler.spiders.context import OutletTally, refusal_kind


def test_refusals_are_counted_by_named_reason_per_outlet_and_in_total() -> None:
    le360, bladi = OutletTally("le360"), OutletTally("bladi")
    for reason in ("listing page: 100% of the text is headlines and their excerpts",
                   "listing page: 80% of the text is headlines and their excerpts",
                   "too short: 20 chars", "video page: 12 chars of text"):
        le360.record("skipped", reason)
    le360.record("new")
    bladi.record("skipped", "listing URL /tag/securite/")
    assert le360.counts.refusals == {"listing page": 2, "too short": 1, "video page": 1}
    assert le360.counts.skipped == 4 and le360.counts.new == 1
    summary = CrawlSummary(run_id=1, status="ok",
                           outlets={"le360": le360.counts, "bladi": bladi.counts})
    assert summary.totals.refusals == {"listing page": 2, "too short": 1, "video page": 1,
                                       "listing URL /tag/securite/": 1}
    assert refusal_lines(summary.outlets) == [
        "le360: not stored as articles: listing page 2, too short 1, video page 1",
        "bladi: not stored as articles: listing URL /tag/securite/ 1"]
    assert summary.as_dict()["outlets"]["le360"]["refusals"]["listing page"] == 2


def test_refusal_kind_is_the_reason_before_its_details() -> None:
    assert refusal_kind("too short: 120 chars < 150 and no sign of an article") == "too short"
    assert refusal_kind("no article text found") == "no article text found"
