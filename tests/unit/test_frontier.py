"""The shared frontier's settings: how long a worker idles on an empty queue comes from the
config (`crawl.queue_idle`, env VEILLE_QUEUE_IDLE already applied there), nowhere else."""

from __future__ import annotations

import gc

import pytest

from veille.crawler import run
from veille.crawler.frontier import Frontier
from veille.pipeline.config import config_from_dict

QUEUE = "redis://127.0.0.1:1/0"  # never contacted: Frontier does no I/O until check()


def test_from_config_takes_idle_and_claim_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_QUEUE_IDLE", "99")  # read by the config loader, not here
    frontier = Frontier.from_config(QUEUE, wall_clock_limit=1800, queue_idle=2.5)
    try:
        assert frontier.idle == 2.5
        assert frontier.claim_ttl == 3600
    finally:
        frontier.close()


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("env", "expected"), [(None, 4.0), ("0.25", 0.25)])
def test_run_crawl_gives_the_frontier_the_configured_idle(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: float
) -> None:
    if env is None:
        monkeypatch.delenv("VEILLE_QUEUE_IDLE", raising=False)
    else:
        monkeypatch.setenv("VEILLE_QUEUE_IDLE", env)
    cfg = config_from_dict({"crawl": {"queue": QUEUE, "queue_idle": 4, "wall_clock_limit": 60}})
    seen: list[tuple[str, float, float]] = []

    def from_config(url: str, wall_clock_limit: float, queue_idle: float) -> Frontier:
        seen.append((url, wall_clock_limit, queue_idle))
        raise _Stop  # before any database or crawl

    monkeypatch.setattr(run.Frontier, "from_config", staticmethod(from_config))
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(_Stop):
        run.run_crawl(cfg, progress=False)
    assert seen == [(QUEUE, 60.0, expected)]
    # a library call leaves the collector alone: the crawl's entry point tunes it
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)
