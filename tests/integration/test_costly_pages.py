"""Costly pages: what one page may make veille extract, store and mail is capped, and said.

A real crawl (its own process) of an outlet served on 127.0.0.1 whose feed lists a page
with a 100 KB title and a 1.5 MB article; then a digest of a story whose stored title is
100 KB long (as rows stored before the caps are). Sizes are asserted, never times.
"""

from __future__ import annotations

import email
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import TEST_CRAWL, repo_topics, without_env_overrides, write_config
from tests.integration.test_digest import TRACKED, add_story, free_port, make_config
from veille.crawler.replay import ReplayServer
from veille.crawler.run import PROJECT_ROOT
from veille.digest import send_digest
from veille.pipeline.limits import MAX_HTML_BYTES, MAX_TEXT_CHARS, MAX_TITLE_CHARS
from veille.storage.db import Database
from veille.storage.models import Article

TITLE = "Hammouchi reçoit le directeur de la DGSI à Rabat pour la coopération " * 1_500  # ~100 KB
PARAGRAPH = ("<p>Paragraphe {i} : la coopération entre les polices du Maroc et de la France se "
             "poursuit, indique la DGSN, qui cite des échanges réguliers avec la DGSI.</p>\n")
HEAD = ("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{title}</title>"
        "<meta property=\"og:title\" content=\"{title}\">"
        "<meta property=\"article:published_time\" content=\"2025-04-14T16:30:00+00:00\"></head>"
        "<body><main><article><h1>{title}</h1><div class=\"entry-content\">\n")
TAIL = "</div></article></main></body></html>\n"


def costly_outlet(root: Path) -> None:
    """An outlet folder for crawler.replay: a feed, a page with a huge title, a huge page."""
    folder = root / "costly"
    folder.mkdir(parents=True)
    (folder / "outlet.yaml").write_text(
        'name: costly\nurl: "{{BASE}}/"\nlanguage: fr\nfeeds: ["{{BASE}}/feed/"]\n', encoding="utf-8")
    (folder / "routes.yaml").write_text(
        '"/robots.txt": {file: robots.txt, type: text/plain}\n'
        '"/feed/": {file: feed.xml, type: application/rss+xml}\n'
        '"/a/titre/": {file: title.html}\n'
        '"/a/enorme/": {file: huge.html}\n', encoding="utf-8")
    (folder / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    items = "".join(
        f"<item><title>{t}</title><link>{{{{BASE}}}}{p}</link>"
        "<pubDate>Mon, 14 Apr 2025 16:30:00 +0000</pubDate></item>"
        for t, p in (("Titre", "/a/titre/"), ("Enorme", "/a/enorme/")))
    (folder / "feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Costly</title>'
        f"<link>{{{{BASE}}}}/</link>{items}</channel></rss>", encoding="utf-8")
    body = "".join(PARAGRAPH.format(i=i) for i in range(12))
    (folder / "title.html").write_text(HEAD.format(title=TITLE) + body + TAIL, encoding="utf-8")
    huge = "".join(PARAGRAPH.format(i=i) for i in range(int(MAX_HTML_BYTES * 1.5) // len(PARAGRAPH)))
    (folder / "huge.html").write_text(HEAD.format(title="Une page énorme") + huge + TAIL,
                                      encoding="utf-8")


def _slug(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture()
def costly(tmp_path: Path) -> Iterator[ReplayServer]:
    costly_outlet(tmp_path / "outlets")
    with ReplayServer(tmp_path / "outlets") as srv:
        yield srv


def test_a_crawl_caps_what_a_costly_page_costs_and_says_so(costly: ReplayServer, tmp_path: Path) -> None:
    db_path = tmp_path / "v.db"
    config = write_config(tmp_path / "config.yaml", {
        "database": {"url": f"sqlite:///{db_path}"}, "crawl": {**TEST_CRAWL, "timeout": 120},
        "outlets": costly.outlet_configs(), "topics": repo_topics()})
    out = subprocess.run(
        [sys.executable, "-m", "veille.cli", "crawl", "--config", str(config), "--quiet", "--workers", "1"],
        cwd=PROJECT_ROOT, env=without_env_overrides(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]

    db = Database(f"sqlite:///{db_path}")
    with db.transaction() as s:
        stored = {_slug(url): (title, text) for url, title, text in
                  s.execute(select(Article.url, Article.title, Article.text))}
    db.dispose()
    assert set(stored) == {"titre", "enorme"}
    title, _ = stored["titre"]
    assert title.startswith("Hammouchi reçoit le directeur") and len(title) <= MAX_TITLE_CHARS
    _, text = stored["enorme"]
    assert MAX_TEXT_CHARS // 2 < len(text) <= MAX_TEXT_CHARS

    logged = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    cuts: dict[str, str] = {}
    for rec in logged:
        if "cut" in rec.get("message", "") and rec.get("url"):
            cuts[_slug(rec["url"])] = cuts.get(_slug(rec["url"]), "") + rec["message"] + "\n"
    assert f"cut to {MAX_TITLE_CHARS}" in cuts["titre"]
    assert "before extraction" in cuts["enorme"] and f"cut to {MAX_TEXT_CHARS:,}" in cuts["enorme"]



def test_a_huge_stored_title_is_cut_in_the_digest(db: Database, tmp_path: Path) -> None:
    spec = dict(TRACKED[0], title=TITLE)  # three articles: the title is in each link too
    add_story(db, spec, first_seen=datetime.now(UTC) - timedelta(hours=1))
    eml = tmp_path / "digest.eml"

    result = send_digest(db, make_config(db.url, free_port()), out=eml)

    assert result.count == 1
    raw = eml.read_bytes()
    assert len(raw) < 40_000  # the story's text, links and reasons; not 9 copies of 100 KB
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    text = msg.get_body(("plain",))
    assert text is not None
    assert "Hammouchi reçoit le directeur de la DGSI à Rabat" in text.get_content()
