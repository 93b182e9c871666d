"""Every replay outlet is a valid outlet with a complete fixture (Fundus' tests/test_parser.py).

One parametrised test per fixture folder (`veille.crawler.replay.outlet_dirs()`): its
outlet.yaml validates as a config entry, and every page its expected.yaml names is a
route of routes.yaml served from a file that exists. Then the configured outlets of the
repository's config.yaml that have no fixture are written down here: adding a fixture
or an outlet makes this file change with it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from veille.crawler.discovery import matches
from veille.crawler.replay import BASE_MARK, CATCH_ALL, outlet_dirs
from veille.pipeline.config import OutletConfig, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://127.0.0.1:8080"

# Configured in config.yaml, no replay fixture (config.yaml order).
CONFIGURED_WITHOUT_FIXTURE = [
    "yabiladi", "le360-ar", "le360-en", "hespress-fr", "hespress-en", "lematin", "mapexpress",
    "medias24", "h24info", "barlamane", "lopinion", "marocdiplomatique", "telquel", "leseco",
    "aujourdhui", "lebrief", "hibapress", "alyaoum24", "al3omk", "rue20", "goud", "map-ar",
]
# Fixtures that are not configured outlets: fault outlets and fictional or aggregator ones.
FIXTURE_ONLY = ["blockedoutlet", "chamalpress", "deadoutlet", "maghress", "slowoutlet"]

OUTLETS = outlet_dirs()


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def outlet_config(folder: Path) -> OutletConfig:
    entry = load_yaml(folder / "outlet.yaml")
    text = yaml.safe_dump(entry, allow_unicode=True).replace(BASE_MARK, BASE)
    cfg = config_from_dict({"outlets": [yaml.safe_load(text)]}, source=str(folder / "outlet.yaml"))
    [outlet] = cfg.outlets
    return outlet


def expected_paths() -> dict[str, set[str]]:
    """outlet -> the paths of its expected articles."""
    return {d.name: {a["path"] for a in load_yaml(d / "expected.yaml").get("articles") or []}
            for d in OUTLETS}


def test_the_fixtures_are_found() -> None:
    names = [d.name for d in OUTLETS]
    assert len(names) >= 9 and names == sorted(names)
    assert {"bladi", "hespress", "le360", "moroccoworldnews"} <= set(names)


@pytest.mark.parametrize("folder", OUTLETS, ids=lambda d: d.name)
def test_outlet_fixture(folder: Path) -> None:
    outlet = outlet_config(folder)  # raises ConfigError with the field at fault
    assert outlet.name == folder.name
    assert outlet.url.startswith(BASE)
    for url in (*outlet.feeds, *outlet.sitemaps, *outlet.sections):
        assert url.startswith(BASE + "/"), f"{url}: a source off the outlet's origin"

    routes: dict[str, dict[str, Any]] = load_yaml(folder / "routes.yaml") or {}
    for key, route in routes.items():
        if "file" in route:
            assert (folder / route["file"]).is_file(), f"route {key}: {route['file']} is missing"

    expected = load_yaml(folder / "expected.yaml") or {}
    assert set(expected) <= {"articles", "skipped", "never_requested", "health"}
    articles = expected.get("articles") or []
    if "health" not in expected:  # a fault outlet (dead, blocked, slow) has no article to give
        assert articles, "an outlet fixture without expected articles checks nothing"
    others = expected_paths()
    for art in articles:
        path = art["path"]
        route = routes.get(path)
        assert route is not None and "file" in route, f"{path}: no route serving a file"
        assert (folder / route["file"]).is_file(), f"{path}: {route['file']} is missing"
        if outlet.article_pattern:  # feeds and sitemaps keep only the URLs it matches
            assert matches(re.compile(outlet.article_pattern), BASE + path), f"{path}: not an article URL"
        if art.get("duplicate_of"):
            other, _, other_path = art["duplicate_of"].partition(":")
            assert other_path in others.get(other, set()), f"{path}: {art['duplicate_of']} unknown"
    for path in [*(expected.get("skipped") or []), *(expected.get("never_requested") or [])]:
        assert path in routes or CATCH_ALL in routes, f"{path}: not a route"


def test_configured_outlets_without_a_fixture_are_written_down() -> None:
    configured = [o.name for o in load_config(ROOT / "config.yaml").outlets]
    fixtures = {d.name for d in OUTLETS}
    missing = [name for name in configured if name not in fixtures]
    print(f"configured outlets without a fixture ({len(missing)}): {', '.join(missing)}")
    assert missing == CONFIGURED_WITHOUT_FIXTURE
    assert sorted(fixtures - set(configured)) == FIXTURE_ONLY
