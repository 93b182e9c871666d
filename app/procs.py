"""Is the process that recorded a run still there? (runs and digests left behind by kill -9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psutil

from veille.storage.timestamps import as_utc


def process_alive(pid: int | None, started_at: datetime) -> bool:
    """Is the process that started a run (at `started_at`) still running on this host?"""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = datetime.fromtimestamp(proc.create_time(), UTC)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    started = as_utc(started_at)
    return created <= started + timedelta(seconds=5)  # later: the pid was reused
