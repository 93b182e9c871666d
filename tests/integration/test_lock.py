"""`veille crawl` when the crawl lock cannot be taken at all: one line, exit 1, no traceback.

Real faults only: a read-only bind mount and a lock file the process may not write (in
a private mount / user namespace, so nothing outlives the child), a PostgreSQL server
that is down, and one that refuses the password.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, without_env_overrides
from tests.pg import Cluster, available, pg_bin

PASSWORD = "right-S3cret"


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": url}}))
    return path


def _veille(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "veille.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=without_env_overrides(), timeout=300)


def _one_line(proc: subprocess.CompletedProcess[str], *shows: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1, proc.stderr[-3000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("veille: error: ")
    for text in shows:
        assert text in line, line
    return line


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--user", "--map-root-user", "true"], capture_output=True)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not _namespaces_work(), reason="unshare (user + mount namespaces) unavailable")


@needs_namespaces
def test_read_only_filesystem_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cfg = _config(tmp_path, f"sqlite:///{data / 'v.db'}")
    assert _veille("stories", "--config", str(cfg)).returncode == 0  # the database exists
    # the data folder read-only, in this child's own mount namespace
    read_only = ("unshare", "--mount", "--user", "--map-root-user", "sh", "-c",
                 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"', str(data))
    proc = _veille("crawl", "--config", str(cfg), prefix=read_only)
    _one_line(proc, f"sqlite:///{data / 'v.db'}", "cannot open the crawl lock", "Read-only file system")


@pytest.mark.skipif(os.geteuid() == 0 and not _namespaces_work(), reason="root ignores file modes; unshare unavailable")
def test_lock_file_this_user_cannot_write_is_one_line(tmp_path: Path) -> None:
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'v.db'}")
    lock = tmp_path / "v.db.crawl.lock"  # left by a crawl another user ran (sudo veille crawl)
    lock.write_text("")
    lock.chmod(0o444)
    # as root, a user namespace without a mapping drops the capability to ignore the mode
    as_user = ("unshare", "--user") if os.geteuid() == 0 else ()
    proc = _veille("crawl", "--config", str(cfg), prefix=as_user)
    _one_line(proc, f"cannot open the crawl lock {lock}", "Permission denied")


def test_postgresql_down_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _veille("crawl", "--config", str(_config(tmp_path, f"postgresql://veille:{PASSWORD}@127.0.0.1:{port}/v")))
    line = _one_line(proc, f"://veille:***@127.0.0.1:{port}/v", "Connection refused")
    assert PASSWORD not in proc.stdout + proc.stderr, line


class _PasswordCluster(Cluster):
    """The test cluster, but asking for a password (scram) instead of trusting loopback."""

    def start(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run(pg_bin("initdb") or "initdb", "-D", str(self.data), "-U", "postgres",
                  "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8", "--locale=C")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
                "-c fsync=off -c max_connections=20")
        self._run(pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                  "-l", str(self.dir / "log"), "start")


@pytest.fixture(scope="module")
def password_cluster() -> Iterator[_PasswordCluster]:
    if not available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed; .ci/run installs them")
    cluster = _PasswordCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_wrong_postgresql_password_is_one_line(tmp_path: Path, password_cluster: _PasswordCluster) -> None:
    port = password_cluster.port
    url = f"postgresql://postgres:wrong-{PASSWORD}@127.0.0.1:{port}/postgres"
    proc = _veille("crawl", "--config", str(_config(tmp_path, url)))
    _one_line(proc, f"://postgres:***@127.0.0.1:{port}/postgres",
              "password authentication failed")
    assert PASSWORD not in proc.stdout + proc.stderr
