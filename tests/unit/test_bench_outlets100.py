"""bench/corpus.py writes many outlets, each with its feed and exactly its articles."""

from __future__ import annotations

import re
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bench.corpus import generate, many_outlets
from veille.crawler import discovery as d
from veille.crawler.replay import ReplayServer
from veille.pipeline.config import config_from_dict


def test_many_outlets_each_get_their_articles(tmp_path: Path) -> None:
    specs = many_outlets(14)
    assert len({s.name for s in specs}) == 14 and {s.lang for s in specs} == {"fr", "ar", "en"}
    start = datetime.now(UTC) - timedelta(days=3)
    m = generate(tmp_path / "c", seed=5, outlets=specs, per_outlet=3, start=start, span_days=1.0)
    assert m.outlets == {s.name: 3 for s in specs} and m.pages == 42
    with ReplayServer(tmp_path / "c") as srv:
        cfg = config_from_dict({"outlets": srv.outlet_configs()})
        assert len(cfg.outlets) == 14
        for o in cfg.outlets:
            folder = tmp_path / "c" / o.name
            articles = yaml.safe_load((folder / "expected.yaml").read_text(encoding="utf-8"))["articles"]
            assert len(articles) == 3
            with urllib.request.urlopen(o.feeds[0], timeout=5) as r:
                items = d.parse_feed(r.read(), o.feeds[0])
            base = srv.base(o.name)
            assert {base + a["path"] for a in articles} <= {i.url for i in items}
            for a in articles:
                assert re.search(o.article_pattern or "", a["path"]), a["path"]
                assert start - timedelta(days=1) <= datetime.fromisoformat(str(a["published"])).replace(
                    tzinfo=UTC) + timedelta(days=1)
                if a["duplicate_of"]:
                    assert a["duplicate_of"].split(":", 1)[0] in m.outlets


def test_the_timeline_splits_the_wall_time_at_the_requests_and_the_logged_phases() -> None:
    import json

    from bench.outlets100 import _timeline, logged_phases, mean_gap, min_gap
    from veille.crawler.replay import AccessEntry

    spawned = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    stderr = "\n".join([
        "not json",
        json.dumps({"time": "2026-01-01T12:00:11.500+00:00", "message": "crawl: 10.00 s", "phase": "crawl",
                    "seconds": 10.0}),
        json.dumps({"time": "2026-01-01T12:00:13.000+00:00", "message": "story pass: 1.50 s",
                    "phase": "story pass", "seconds": 1.5}),
        json.dumps({"time": "2026-01-01T12:00:13.100+00:00", "message": "unrelated"}),
    ])
    phases = logged_phases(stderr, spawned)
    assert phases == {"crawl": (11.5, 10.0), "story pass": (13.0, 1.5)}
    assert _timeline([2.0, 10.0, 5.0], phases, 14.0) == {
        "startup": 2.0, "requests": 8.0, "after_last_request": 1.5, "story_pass": 1.5, "after_story_pass": 1.0}
    # the rest after the story pass, split at the run record when the crawl logs it
    phases["run record"] = (13.4, 0.3)
    assert _timeline([2.0, 10.0, 5.0], phases, 14.0) == {
        "startup": 2.0, "requests": 8.0, "after_last_request": 1.5, "story_pass": 1.5, "after_story_pass": 1.0,
        "run_record": 0.3, "after_run_record": 0.6}
    log = [AccessEntry("a", "GET", "/", 200, False, "ua", at) for at in (0.0, 1.0, 2.5)]
    log += [AccessEntry("b", "GET", "/", 200, False, "ua", at) for at in (0.1, 0.9)]
    assert min_gap(log) == pytest.approx(0.8)  # b's, not a (0.0) to b (0.1)
    assert mean_gap(log) == pytest.approx((1.0 + 1.5 + 0.8) / 3)
