"""One crawl at a time per database, and no stale lock after a crash.

SQLite: an exclusive `flock` on a file beside the database; PostgreSQL: a session
advisory lock. In both cases the operating system or the server releases the lock when
the holder dies, so a SIGKILLed crawl never blocks the next one.

A lock that cannot be taken at all (a read-only filesystem, a lock file another user
owns, PostgreSQL down or refusing the password) raises StorageError: one line for the
user, like any other database problem.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from veille.storage.db import StorageError, _first_line, describe, make_engine

log = logging.getLogger(__name__)


class LockHeld(Exception):
    """Another crawl holds the lock for this database."""


def _lock_path(url: str) -> Path:
    u = make_url(url)
    if u.database and u.database != ":memory:":
        return Path(u.database).expanduser().with_name(Path(u.database).name + ".crawl.lock")
    digest = hashlib.sha1(url.encode()).hexdigest()[:16]
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"veille-{digest}.crawl.lock"


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def crawl_lock(url: str, *, wait: bool = False, poll: float = 1.0) -> Iterator[None]:
    """Hold the database's crawl lock for the block; raise LockHeld if taken (unless `wait`)."""
    if make_url(url).get_backend_name() == "sqlite":
        with _file_lock(url, wait, poll):
            yield
    else:
        with _advisory_lock(url, wait, poll):
            yield


@contextmanager
def _file_lock(url: str, wait: bool, poll: float) -> Iterator[None]:
    path = _lock_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"{describe(url)}: cannot open the crawl lock {path} "
                           f"({exc.strerror or exc}): is the database folder writable by this user?") from None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise LockHeld(
                        f"another crawl is running on {describe(url)} ({_holder(path)}); "
                        "try again later or use --wait"
                    ) from None
                time.sleep(poll)
        _note_holder(fd, path)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _note_holder(fd: int, path: Path) -> None:
    """Write who holds the lock, for the message of a crawl that finds it taken.

    Only a courtesy: on a full disk the note is lost, not the lock.
    """
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
    except OSError as exc:
        log.warning("crawl lock %s: cannot note the holder (%s)", path, exc.strerror or exc)


_PG_KEY = 0x7665696C  # "veil"


@contextmanager
def _advisory_lock(url: str, wait: bool, poll: float) -> Iterator[None]:
    engine = make_engine(url)
    try:
        try:
            conn_cm = engine.connect()
        except OperationalError as exc:  # server down, wrong password: say so, not a traceback
            raise StorageError(f"{describe(url)}: cannot take the crawl lock ({_first_line(exc)})") from None
        with conn_cm as conn:
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_KEY}).scalar():
                if not wait:
                    raise LockHeld(
                        f"another crawl is running on {describe(url)}; try again later or use --wait"
                    )
                time.sleep(poll)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_KEY})
                conn.commit()
    finally:
        engine.dispose()
