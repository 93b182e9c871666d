"""crawler/spiders/context: one crawl's shared state — each outlet's tally and the look-ups
its spider makes in storage.

The tally's status rule is what `veille status` and the run record say about an outlet
(blocked, failing, ok), so each clause is checked with the case that tells it from its
neighbour. The look-ups run on a SQLite file in tmp_path: settled URLs, conditional-GET
headers (and the daily full fetch), and validators saved only for sources read whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from veille.crawler.spiders.context import (
    FULL_FETCH_EVERY,
    MAX_ERRORS_KEPT,
    CrawlContext,
    OutletTally,
)
from veille.pipeline.config import config_from_dict
from veille.storage.db import Database
from veille.storage.models import FeedState, Outlet, Page

FEED = "https://www.example.ma/feed/"
SITEMAP = "https://www.example.ma/sitemap.xml"


def tally(**fields: Any) -> OutletTally:
    t = OutletTally("exemple")
    for name, value in fields.items():
        if name == "fetched":
            t.counts.fetched = value
        else:
            setattr(t, name, value)
    return t


@pytest.mark.parametrize(("fields", "status"), [
    ({}, "ok"),
    ({"sources": 3, "sources_ok": 2, "sources_blocked": 1, "fetched": 20}, "blocked"),
    ({"sources": 2, "sources_ok": 2, "articles_blocked": 4}, "blocked"),
    ({"sources": 2, "sources_ok": 2, "articles_blocked": 4, "fetched": 1}, "ok"),
    ({"sources": 2, "sources_failed": 2}, "failing"),
    ({"sources": 2, "sources_failed": 1, "not_modified": 1}, "ok"),  # a 304 is an answer
    ({"sources": 2, "sources_ok": 2, "articles_unreachable": 3}, "failing"),
    ({"sources": 2, "sources_ok": 2, "articles_unreachable": 3, "fetched": 1}, "ok"),
    ({"sources": 2, "sources_ok": 2, "articles_failed": 5}, "ok"),  # a few 404 links
])
def test_an_outlets_status_says_blocked_failing_or_ok(fields: dict[str, int], status: str) -> None:
    t = tally(**fields)
    assert t.status == status
    assert t.final_counts().status == status


def test_outcomes_are_counted_where_the_run_record_shows_them() -> None:
    t = OutletTally("exemple")
    for kind in ("new", "updated", "duplicate", "unchanged", "skipped"):
        t.record(kind)
    t.record("skipped", "too short: 20 chars < 150")
    t.record("skipped", "too short: 40 chars < 150")
    c = t.counts
    assert (c.new, c.updated, c.skipped) == (2, 1, 4)  # a duplicate is a new row, folded
    assert (t.duplicates, t.unchanged) == (1, 1)
    assert c.refusals == {"too short": 2}


def test_errors_are_counted_all_but_kept_up_to_a_bound_and_logged_with_the_url(
        caplog: pytest.LogCaptureFixture) -> None:
    t = OutletTally("exemple")
    with caplog.at_level(logging.WARNING, logger="crawler"):
        for i in range(MAX_ERRORS_KEPT + 5):
            t.error(f"https://www.example.ma/a/{i}", "HTTP 500")
    assert t.counts.failed == MAX_ERRORS_KEPT + 5
    assert len(t.counts.errors) == MAX_ERRORS_KEPT
    assert t.counts.errors[0] == "https://www.example.ma/a/0: HTTP 500"
    record = caplog.records[0]
    assert (record.outlet, record.url, record.reason) == (  # type: ignore[attr-defined]
        "exemple", "https://www.example.ma/a/0", "HTTP 500")


def test_notes_are_not_failures_and_the_first_kind_goes_ahead_of_the_errors() -> None:
    t = OutletTally("exemple")
    for i in range(MAX_ERRORS_KEPT):
        t.error(f"u{i}", "timeout")
    t.refuse("https://evil.example/a", "other host evil.example")
    t.refuse("https://evil.example/a", "other host evil.example")  # said once per URL
    t.truncate(SITEMAP, "depth limit (2 levels)")
    t.truncate(SITEMAP + "?2", "depth limit (2 levels)")  # and once per kind of limit
    assert t.counts.failed == MAX_ERRORS_KEPT and t.refused == 1
    assert t.counts.errors[0] == f"{SITEMAP}: sitemaps truncated: depth limit (2 levels)"
    assert not any("refused" in e for e in t.counts.errors)  # past the bound, not kept
    assert t.sitemaps_truncated == ["depth limit (2 levels)"]
    assert t.status == "ok"


def test_final_counts_do_not_move_with_the_tally() -> None:
    t = OutletTally("exemple")
    t.error("u1", "timeout")
    final = t.final_counts()
    t.error("u2", "timeout")
    assert final.errors == ["u1: timeout"] and final.failed == 1


# --------------------------------------------------------------------------- the run's context


@pytest.fixture()
def context(tmp_path: Path) -> Iterator[CrawlContext]:
    cfg = config_from_dict({"database": {"url": f"sqlite:///{tmp_path / 'v.db'}"},
                            "outlets": [{"name": "exemple", "url": "https://www.example.ma/",
                                         "language": "fr"}]})
    db = Database(cfg.database.url)
    yield CrawlContext(cfg, db)
    db.dispose()


def store_feed(ctx: CrawlContext, url: str, etag: str | None, modified: str | None,
               full_fetch_ago: timedelta | None) -> None:
    with ctx.db.transaction() as s:
        s.add(FeedState(url=url, etag=etag, last_modified=modified,
                        last_full_fetch=None if full_fetch_ago is None else datetime.now(UTC) - full_fetch_ago))


def feed(ctx: CrawlContext, url: str) -> FeedState:
    with ctx.db.transaction() as s:
        row = s.scalars(select(FeedState).where(FeedState.url == url)).one()
        s.expunge(row)
        return row


def test_one_tally_per_outlet_and_every_url_granted_without_a_shared_queue(context: CrawlContext) -> None:
    assert context.tally("exemple") is context.tally("exemple")
    assert context.claim(["a", "b", "a"]) == {"a", "b"}
    context.release("a", None)  # nothing to give back


def test_settled_urls_are_those_storage_recorded(context: CrawlContext) -> None:
    with context.db.transaction() as s:
        s.add(outlet := Outlet(name="exemple", url="https://www.example.ma/"))
        s.flush()
        s.add(Page(url="https://www.example.ma/a", outlet_id=outlet.id, kind="skipped"))
    assert context.settled(["https://www.example.ma/a", "https://www.example.ma/b"]) == {
        "https://www.example.ma/a"}


def test_a_source_is_asked_conditionally_with_what_it_answered_last(context: CrawlContext) -> None:
    store_feed(context, FEED, '"v1"', "Mon, 14 Apr 2025 17:42:00 GMT", timedelta(hours=2))
    store_feed(context, SITEMAP, '"s1"', None, timedelta(hours=2))
    assert context.conditional_headers(FEED) == {"If-None-Match": '"v1"',
                                                 "If-Modified-Since": "Mon, 14 Apr 2025 17:42:00 GMT"}
    assert context.conditional_headers(SITEMAP) == {"If-None-Match": '"s1"'}
    assert context.conditional_headers(FEED + "?new") == {}


@pytest.mark.parametrize("ago", [FULL_FETCH_EVERY + timedelta(minutes=1), None])
def test_once_a_day_a_source_is_read_whole(context: CrawlContext, ago: timedelta | None) -> None:
    """A server whose ETag never changes would otherwise hide new entries for ever."""
    store_feed(context, FEED, '"v1"', None, ago)
    assert context.conditional_headers(FEED) == {}


def test_validators_are_saved_only_for_sources_read_whole(context: CrawlContext) -> None:
    store_feed(context, FEED + "304", '"old"', None, timedelta(hours=3))
    t = context.tally("exemple")
    t.validators = {FEED: ('"v2"', "Tue, 15 Apr 2025 08:00:00 GMT", True),
                    SITEMAP: ('"s2"', None, True)}
    t.dirty = {SITEMAP}  # one of its articles failed: next run must read it whole
    t.touched = {FEED + "304"}
    context.save_validators(t, finished=True)
    assert (feed(context, FEED).etag, feed(context, FEED).last_modified) == (
        '"v2"', "Tue, 15 Apr 2025 08:00:00 GMT")
    assert feed(context, SITEMAP).etag is None
    assert context.conditional_headers(SITEMAP) == {}
    touched = feed(context, FEED + "304")
    assert touched.etag == '"old"' and touched.last_fetched is not None  # a 304 keeps them


def test_an_interrupted_run_saves_no_validator(context: CrawlContext) -> None:
    t = context.tally("exemple")
    t.validators = {FEED: ('"v2"', None, True)}
    context.save_validators(t, finished=False)
    assert feed(context, FEED).etag is None
    assert context.conditional_headers(FEED) == {}
