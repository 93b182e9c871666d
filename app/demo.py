"""`veille demo`: the whole product, offline, against the bundled replay of outlets.

Serves tests/fixtures/outlets on 127.0.0.1, writes a config pointing at it (topics and
digest settings come from the real config.yaml), crawls, processes, stores, lists the
tracked stories and writes the digest as an .eml file. No network needed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from veille.crawler.replay import ReplayServer
from veille.pipeline.config import config_from_dict, resolve_path

DEMO_CRAWL = {
    "download_delay": 0,
    "timeout": 5,  # the replay's slow outlet hangs: show it cut short, not waited for
    "retries": 1,
    "sitemap_max_age_days": 3650,
    "wall_clock_limit": 300,
}


def demo_config(base: dict[str, Any], outlets: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """The demo's config: real topics and digest settings, replay outlets, local database."""
    return {
        "database": {"url": f"sqlite:///{(workdir / 'veille.db').resolve()}"},
        "crawl": {**(base.get("crawl") or {}), **DEMO_CRAWL},
        "outlets": outlets,
        "topics": base.get("topics") or [],
        "schedule": base.get("schedule") or {},
        "digest": {**(base.get("digest") or {}), "send_empty": True},
    }


def shipped_config() -> Path:
    """The config.yaml shipped with veille (package data veille.default_config)."""
    spec = importlib.util.find_spec("veille.default_config")
    if spec is None or not spec.submodule_search_locations:
        return Path("config.yaml")
    return Path(next(iter(spec.submodule_search_locations))) / "config.yaml"


def run_demo(workdir: Path, config_path: str | None = None) -> int:
    console = Console()
    source = resolve_path(config_path)
    if not source.exists():  # run outside a checkout: the topics of the config veille ships
        source = shipped_config()
    base = yaml.safe_load(source.read_text(encoding="utf-8")) if source.exists() else {}
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("veille.db*"):
        stale.unlink()

    from veille.crawler.run import run_crawl
    from veille.digest import send_digest
    from veille.report import print_stories
    from veille.search import index_after_crawl
    from veille.storage.db import Database
    from veille.storage.views import list_stories

    with ReplayServer() as srv:
        data = demo_config(base, srv.outlet_configs(), workdir)
        cfg_file = workdir / "config.yaml"
        cfg_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        # The demo's database is its own folder's, whatever VEILLE_DATABASE_URL says.
        environ = {k: v for k, v in os.environ.items() if k != "VEILLE_DATABASE_URL"}
        cfg = config_from_dict(data, source=str(cfg_file), environ=environ)
        console.rule(f"veille demo: crawling {len(cfg.outlets)} replayed outlets on 127.0.0.1")
        summary = run_crawl(cfg, None, progress=True)
    index_after_crawl(cfg.database.url)  # `veille search` and the web view find its articles

    db = Database(cfg.database.url)
    topics = [t.name for t in cfg.topics]
    with db.transaction() as s:
        stories = list_stories(s, topics=topics)
    console.rule("tracked stories")
    print_stories(stories, console)
    eml = workdir / "digest.eml"
    send_digest(db, cfg, out=eml)
    console.print(f"\ndigest written to [bold]{eml}[/]; database {db.url}")
    console.print(f"explore: veille stories --config {cfg_file}   ·   veille status --config {cfg_file}")
    return 0 if summary.status in {"ok", "interrupted"} else 1
