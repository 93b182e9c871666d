"""The replay's expected articles as extracted Articles, without a server (unit tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import yaml

from tests.conftest import FIXTURE_OUTLETS
from veille.pipeline.extract import extract
from veille.pipeline.learn import Evidence
from veille.pipeline.template import line_fingerprints, strip_article
from veille.pipeline.types import Article, RawPage, Skipped

BASE = "http://127.0.0.1:8000"


@cache
def fixture_articles() -> tuple[tuple[str, dict[str, Any], Article | Skipped], ...]:
    """("outlet:path", expected.yaml entry, extraction) for every expected article, each
    page encoded as the replay server serves it (charset and header), stripped of its
    outlet's template as a crawl of the outlet leaves it (pipeline.template: every page
    counted, then each re-stripped at the story pass)."""
    out = []
    for folder in sorted(p.parent for p in FIXTURE_OUTLETS.glob("*/expected.yaml")):
        expected = yaml.safe_load((folder / "expected.yaml").read_text(encoding="utf-8")) or {}
        routes = yaml.safe_load((folder / "routes.yaml").read_text(encoding="utf-8")) or {}
        mine: list[tuple[str, dict[str, Any], Article | Skipped]] = []
        for item in expected.get("articles") or []:
            route = routes.get(item["path"]) or {}
            if "file" not in route:
                continue
            charset = str(route.get("charset", "utf-8"))
            body = (folder / route["file"]).read_text(encoding="utf-8").replace("{{BASE}}", BASE)
            page = RawPage(
                url=BASE + item["path"], final_url=BASE + item["path"], outlet=folder.name,
                status=200, headers={"content-type": f"text/html; charset={charset}"},
                body=body.encode(charset, "xmlcharrefreplace"),
                fetched_at=datetime(2025, 11, 20, tzinfo=UTC), language_hint=item.get("language"),
            )
            mine.append((f"{folder.name}:{item['path']}", item, extract(page)))
        evidence = Evidence(folder.name)
        for _, _, art in mine:
            if isinstance(art, Article):
                evidence.learn(line_fingerprints(art.text), art.title)
        out += [(key, item, strip_article(art, evidence.snapshot())[0] if isinstance(art, Article) else art)
                for key, item, art in mine]
    return tuple(out)
