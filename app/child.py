"""A `veille <command>` child process, supervised: its JSON log lines relayed to our
logging, SIGTERM once to stop it, SIGKILL to its whole group after a grace period.

The one supervisor of veille's children: the daemon's crawls and digests, and
`veille.crawl.run_crawl_subprocess` (tests and benchmarks) use it alike.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import IO

log = logging.getLogger(__name__)

_QUIET = ("alembic",)  # child loggers relayed from WARNING only (schema checks at every start)
_LOGRECORD_KEYS = {"time", "level", "logger", "message"} | set(vars(logging.makeLogRecord({})))


class Child:
    """One `veille <command>` child process; its JSON log lines are relayed to our logging."""

    def __init__(self, kind: str, argv: list[str]) -> None:
        self.kind = kind
        self.started = datetime.now(UTC)
        self.tail: deque[str] = deque(maxlen=5)  # last lines, for the failure message
        self.killed = False
        self.terminated = False
        self._stop_lock = threading.Lock()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}  # summary lines unwrapped
        # A session of its own: a Ctrl-C on the terminal reaches only the daemon, which
        # forwards one SIGTERM (a second signal would make Scrapy shut down uncleanly).
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", env=env, start_new_session=True,
        )
        self.pid = self.proc.pid
        self._relays = [
            threading.Thread(target=self._relay, args=(stream, level), name=f"{kind}-{name}", daemon=True)
            for stream, level, name in ((self.proc.stdout, logging.INFO, "out"),
                                        (self.proc.stderr, logging.WARNING, "err"))
        ]
        for t in self._relays:
            t.start()

    def _relay(self, stream: IO[str], level: int) -> None:
        """Relay JSON log lines as log records, other lines (summary, traceback) as text."""
        plain = logging.getLogger(f"veille.{self.kind}")
        for line in stream:
            line = line.rstrip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "message" in doc:
                extra = {k: v for k, v in doc.items() if k not in _LOGRECORD_KEYS}
                levelname = str(doc.get("level", "info")).upper()
                levelno = logging.getLevelName(levelname)
                record = logging.makeLogRecord({
                    "name": str(doc.get("logger", plain.name)), "msg": str(doc["message"]),
                    "levelno": levelno if isinstance(levelno, int) else logging.INFO,
                    "levelname": levelname, "child_pid": self.pid, **extra,
                })
                if record.levelno >= logging.WARNING or not record.name.startswith(_QUIET):
                    self.tail.append(record.msg)
                    logging.getLogger(record.name).handle(record)
            else:
                self.tail.append(line)
                plain.log(level, line, extra={"child_pid": self.pid})

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._relays:
            t.join(timeout=5)
        return code

    def terminate(self) -> None:
        """Send SIGTERM once (Scrapy takes a second signal as an order to stop uncleanly)."""
        with self._stop_lock:
            if self.terminated or self.proc.poll() is not None:
                return
            self.terminated = True
            log.info("stopping %s (pid %d): SIGTERM", self.kind, self.pid)
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, deadline: float) -> None:
        """Wait for the child until `deadline` (time.monotonic()), then SIGKILL it."""
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with self._stop_lock:
                if self.proc.poll() is None:
                    log.warning("%s (pid %d) did not stop in time: SIGKILL", self.kind, self.pid)
                    self.killed = True
                    try:  # the whole process group: nothing the child started survives it
                        os.killpg(self.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.proc.wait()


def run_child(kind: str, argv: list[str], timeout: float | None, grace: float) -> int:
    """Run `argv` as a supervised child; its exit code. Past `timeout` seconds it gets
    SIGTERM, then SIGKILL after `grace` more; an exception here (Ctrl-C) stops it too."""
    child = Child(kind, argv)
    try:
        code = child.wait(timeout)
        if code is not None:
            return code
        log.warning("%s (pid %d) passed its %ss limit: stopping it", kind, child.pid, timeout)
    except BaseException:
        child.terminate()
        child.stop(time.monotonic() + grace)
        raise
    child.terminate()
    child.stop(time.monotonic() + grace)
    code = child.wait(None)
    assert code is not None
    return code
