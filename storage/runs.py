"""Recording a crawl run, so that a full disk never leaves it "running".

A run is written when it starts and when it ends. The end is written after the crawl
has filled whatever space was left, so with SQLite a little room is set aside beside the
database (`<db>.headroom`) when the run starts and given back only if recording its end
hits a full disk: the end is then written in that room. Without the room, the run would
show as running until the next crawl noticed its process was gone.

Failures are StorageError: one line naming the database (password masked).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from veille.storage import crawl_runs as run_store
from veille.storage.db import Database, StorageError, _first_line, describe
from veille.storage.timestamps import utcnow

log = logging.getLogger(__name__)

# Recording a run's end rewrites a few pages per outlet (WAL frames of 4 KB): 256 KB
# covers dozens of outlets, and is little to ask of a disk that holds the database.
HEADROOM_BYTES = 256 * 1024


class Headroom:
    """Disk space held beside a SQLite database file, given back when it is needed.

    A no-op for PostgreSQL and in-memory SQLite: their space is not ours to hold.
    """

    def __init__(self, url: str, size: int = HEADROOM_BYTES) -> None:
        u = make_url(url)
        self.url, self.size = url, size
        self.path: Path | None = None
        if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
            db_file = Path(u.database).expanduser()
            self.path = db_file.with_name(db_file.name + ".headroom")

    def take(self) -> None:
        """Write the room out (real blocks, not a sparse file); StorageError if the disk
        has not even that much left."""
        if self.path is None:
            return
        try:
            with self.path.open("wb") as f:
                f.write(b"\0" * self.size)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            self.give_back()
            raise StorageError(f"{describe(self.url)}: no room to record a crawl run beside the "
                               f"database ({exc.strerror or exc}): free some disk space") from None

    def give_back(self) -> bool:
        """Delete the room; True if there was one to free."""
        if self.path is None:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path, exc.strerror or exc)
            return False
        return True


class RunRecord:
    """One crawl run as the database records it, from `start` to `finish`."""

    def __init__(self, db: Database, run_id: int, headroom: Headroom) -> None:
        self.db, self.id, self.headroom = db, run_id, headroom

    @classmethod
    def start(cls, db: Database, kind: str = "crawl") -> RunRecord:
        """Set the room aside and write the run as running; StorageError if either fails."""
        headroom = Headroom(db.url)
        headroom.take()
        try:
            with db.transaction() as s:
                run_id = run_store.start_run(s, kind)
        except SQLAlchemyError as exc:
            headroom.give_back()
            raise StorageError(f"{describe(db.url)}: cannot record the crawl run ({_first_line(exc)})") from None
        return cls(db, run_id, headroom)

    def finish(self, counts: dict[str, run_store.OutletCounts], status: str, message: str | None) -> str | None:
        """Write how the run ended; None when written, else what went wrong in one line.

        A full disk: the room is given back and the run written as failed in it; should
        that fail too, it is closed as failed in the smallest write there is.
        """
        problem = self._write_end(counts, status, message)
        freed = self.headroom.give_back()
        if problem is None:
            return None
        problem = f"{describe(self.db.url)}: cannot record the end of crawl run {self.id} ({problem})"
        if freed and self._write_end(counts, "failed", problem) is None:
            return f"{problem}: recorded as failed in the room set aside for it; free some disk space"
        try:
            with self.db.transaction() as s:
                run_store.close_runs(s, [self.id], "failed", problem)
        except SQLAlchemyError:
            return f"{problem}; it shows as running until the next crawl closes it"
        return f"{problem}; closed as failed, without its counts"

    def tidy(self, keep_days: int) -> str | None:
        """After the run: forget runs older than `keep_days` (0 keeps them all) and let
        the planner's statistics follow the new rows. None when done, else one line (the
        crawl's work is stored either way; the next run tries again)."""
        try:
            if keep_days > 0:
                with self.db.transaction() as s:
                    gone = run_store.prune_runs(s, utcnow() - timedelta(days=keep_days), keep=self.id)
                if gone:
                    log.info("run history: %d run(s) older than %d days forgotten", gone, keep_days)
            self.db.optimize()
        except SQLAlchemyError as exc:
            return f"{describe(self.db.url)}: cannot prune the run history ({_first_line(exc)})"
        return None

    def _write_end(self, counts: dict[str, run_store.OutletCounts], status: str, message: str | None) -> str | None:
        try:
            with self.db.transaction() as s:
                for name, c in counts.items():
                    run_store.save_outlet_counts(s, self.id, name, c)
                errors = [f"{n}: {e}" for n, c in counts.items() for e in c.errors]
                run_store.finish_run(s, self.id, status, errors, message)
        except SQLAlchemyError as exc:
            log.debug("crawl run %d: recording its end failed", self.id, exc_info=True)
            return _first_line(exc)
        return None
