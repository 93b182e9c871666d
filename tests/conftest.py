"""Shared fixtures: the replay of fixture outlets on 127.0.0.1 and configs pointing at it.

- `replay_server` (module scope): every fixture outlet served by crawler.replay.
- `replay_config(srv, db_path, **crawl)`: a config dict for those outlets — no delay,
  short timeouts, a SQLite file — ready for `config_from_dict` or `write_config`.
- `config_dict` / `config_file` / `config`: the same for one test, database in tmp_path.

Topics come from the repository's config.yaml (the product's real rules) when present.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pg import db_url, pg_cluster  # noqa: F401 - shared fixtures (SQLite + PostgreSQL)
from tests.smtp_inbox import Inbox, free_port
from veille.crawler.replay import ReplayServer
from veille.pipeline.config import ENV_OVERRIDES, Config, config_from_dict
from veille.storage.db import Database

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_OUTLETS = ROOT / "tests" / "fixtures" / "outlets"
SLOW_OUTLET = "slowoutlet"

# Fast and deterministic against 127.0.0.1. sitemap_max_age_days is large because the
# fixtures' dates are frozen in 2023–2025 (the cut-off itself is unit-tested).
# The download timeout is far above what any replay page needs: on a busy machine a
# healthy page can wait seconds behind extraction, and no test may lose it to that.
# Tests about timeouts set their own, and slowoutlet (a feed that hangs 60 s) is only
# crawled by the tests that name it.
TEST_CRAWL: dict[str, Any] = {
    "download_delay": 0,
    "concurrency_per_domain": 4,
    "timeout": 30,
    "retries": 0,
    "sitemap_max_age_days": 3650,
    "wall_clock_limit": 120,
}


def repo_topics() -> list[dict[str, Any]]:
    path = ROOT / "config.yaml"
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("topics") or [])


def replay_config(srv: ReplayServer, db_path: Path, *, outlets: list[str] | None = None,
                  **crawl: Any) -> dict[str, Any]:
    """A config dict crawling the replayed outlets (all but slowoutlet, or those named)
    into `db_path`."""
    configs = [o for o in srv.outlet_configs()
               if (o["name"] in outlets if outlets is not None else o["name"] != SLOW_OUTLET)]
    return {
        "database": {"url": f"sqlite:///{db_path}"},
        "crawl": {**TEST_CRAWL, **crawl},
        "outlets": configs,
        "topics": repo_topics(),
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def replay_server() -> Iterator[ReplayServer]:
    with ReplayServer(FIXTURE_OUTLETS) as srv:
        yield srv


@pytest.fixture()
def config_dict(replay_server: ReplayServer, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    return replay_config(replay_server, tmp_path / "veille.db")


@pytest.fixture()
def config_file(config_dict: dict[str, Any], tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.yaml", config_dict)


@pytest.fixture()
def config(config_dict: dict[str, Any], config_file: Path) -> Config:
    return config_from_dict(config_dict, source=str(config_file))


def without_env_overrides() -> dict[str, str]:
    """The environment minus veille's overrides, for child processes."""
    return {k: v for k, v in os.environ.items() if k not in {"VEILLE_CONFIG", *ENV_OVERRIDES}}


@pytest.fixture
def db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:  # noqa: F811
    """A fresh database on each backend (SQLite file, PostgreSQL database); no env override.
    Test modules with other needs define their own `db`."""
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) on a free port of 127.0.0.1, stopped after the test."""
    from aiosmtpd.controller import Controller

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
