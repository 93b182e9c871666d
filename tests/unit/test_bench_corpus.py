"""bench/corpus.py writes outlet folders the replay server serves and the crawler can discover."""

from __future__ import annotations

import hashlib
import re
import urllib.request
from html import escape
from pathlib import Path

import yaml

from bench.corpus import generate
from veille.crawler import discovery as d
from veille.crawler.replay import ReplayServer, outlet_dirs
from veille.pipeline.config import config_from_dict


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_generated_outlets_are_served_and_discoverable(tmp_path: Path) -> None:
    m = generate(tmp_path / "c", n=60, seed=3)
    assert m.pages == 60 and sum(m.outlets.values()) == 60
    assert {"fr", "ar", "en"} <= set(m.languages)
    folders = outlet_dirs(tmp_path / "c")
    assert len(folders) == len(m.outlets)

    with ReplayServer(tmp_path / "c") as srv:
        cfg = config_from_dict({"outlets": srv.outlet_configs()})  # outlet.yaml validates
        served = 0
        for o in cfg.outlets:
            folder = tmp_path / "c" / o.name
            expected = yaml.safe_load((folder / "expected.yaml").read_text(encoding="utf-8"))
            paths = [a["path"] for a in expected["articles"]]
            pattern = re.compile(o.article_pattern or "")
            base = srv.base(o.name)
            assert _get(base + "/robots.txt")[0] == 200
            status, feed = _get(o.feeds[0])
            assert status == 200 and d.parse_feed(feed, o.feeds[0])
            index = d.parse_sitemap(_get(o.sitemaps[0])[1], o.sitemaps[0])
            listed = set()
            for child in index.entries:
                listed |= {e.url for e in d.parse_sitemap(_get(child.url)[1], child.url).entries}
            assert listed == {base + p for p in paths}  # the sitemaps list every article
            for a in expected["articles"]:
                assert d.matches(pattern, base + a["path"]), a["path"]
                assert a["language"] == o.language and a["event"] and len(a["keep"]) == 2
                status, body = _get(base + a["path"])
                assert status == 200 and escape(a["title"]).encode() in body and b"{{BASE}}" not in body
                served += 1
        assert served == 60


def test_same_seed_same_corpus(tmp_path: Path) -> None:
    generate(tmp_path / "a", n=30, seed=5)
    generate(tmp_path / "b", n=30, seed=5)
    generate(tmp_path / "c", n=30, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_duplicates_point_at_articles_of_the_corpus(tmp_path: Path) -> None:
    m = generate(tmp_path / "c", n=400, seed=7)
    assert m.syndicated_copies > 0 and m.updates > 0 and 0 < m.on_topic_pages < m.pages
    known = set()
    dups = []
    for folder in outlet_dirs(tmp_path / "c"):
        for a in yaml.safe_load((folder / "expected.yaml").read_text(encoding="utf-8"))["articles"]:
            known.add(f"{folder.name}:{a['path']}")
            if a["duplicate_of"]:
                dups.append(a["duplicate_of"])
    assert len(dups) == m.syndicated_copies + m.updates
    assert set(dups) <= known
