"""A crawl that fills the disk: one line, exit 1, and the run is not left "running".

The database lives on a real tmpfs with a size limit, mounted in the child's own mount
namespace (so nothing outlives the test); the crawl of the replayed outlets fills it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, replay_config, without_env_overrides, write_config
from veille.crawler.replay import ReplayServer
from veille.storage.runs import HEADROOM_BYTES


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--user", "--map-root-user", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(), reason="unshare (user + mount namespaces) unavailable")

# The child: a tmpfs of $SIZE bytes on the data folder, the existing database copied in,
# the crawl, then the database copied out for the test to read.
_ON_A_SMALL_DISK = """
mount -t tmpfs -o size="$SIZE" tmpfs "$DATA" || exit 97
cp "$SEED"/v.db "$DATA"/ || exit 98
"$@"; code=$?
cp "$DATA"/v.db* "$OUT"/
exit $code
"""


def _crawl_on_a_small_disk(tmp_path: Path, srv: ReplayServer, room: int) -> tuple[subprocess.CompletedProcess[str], Path]:
    seed, data, out = tmp_path / "seed", tmp_path / "data", tmp_path / "out"
    for d in (seed, data, out):
        d.mkdir()
    veille = [sys.executable, "-m", "veille.cli"]
    env = without_env_overrides()
    seed_cfg = write_config(tmp_path / "seed.yaml", {"database": {"url": f"sqlite:///{seed / 'v.db'}"}})
    subprocess.run([*veille, "stories", "--config", str(seed_cfg)], check=True, cwd=ROOT, env=env,
                   capture_output=True, timeout=300)  # the schema, checkpointed into v.db
    size = (seed / "v.db").stat().st_size + HEADROOM_BYTES + room
    cfg = write_config(tmp_path / "config.yaml",
                       replay_config(srv, data / "v.db", outlets=["le360", "hespress"]))
    proc = subprocess.run(
        ["unshare", "--mount", "--user", "--map-root-user", "sh", "-c", _ON_A_SMALL_DISK, "sh",
         *veille, "crawl", "--config", str(cfg)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**env, "SIZE": str(size), "DATA": str(data), "SEED": str(seed), "OUT": str(out)})
    assert proc.returncode not in (97, 98), proc.stderr
    return proc, out / "v.db"


def _runs(db: Path) -> list[tuple[int, str, str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status, message FROM crawl_runs ORDER BY id").fetchall()


def test_disk_full_during_the_crawl_is_one_line_and_the_run_is_closed(
        tmp_path: Path, replay_server: ReplayServer) -> None:
    # room for the first articles, not for all of them (each page's text, stories, WAL)
    proc, db = _crawl_on_a_small_disk(tmp_path, replay_server, room=96 * 1024)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("veille: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "cannot record the end of crawl run 1 (database or disk is full)" in errors[0]
    ((run_id, status, message),) = _runs(db)
    assert (run_id, status) == (1, "failed")  # not "running"
    assert message and "database or disk is full" in message


def test_disk_already_full_records_no_run(tmp_path: Path, replay_server: ReplayServer) -> None:
    proc, db = _crawl_on_a_small_disk(tmp_path, replay_server, room=-HEADROOM_BYTES // 2)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("veille: error: sqlite:///") and "no room to record a crawl run" in line
    assert _runs(db) == []
