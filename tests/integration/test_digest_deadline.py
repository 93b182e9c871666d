"""A digest against an SMTP server that never finishes: `smtp.deadline` ends the send, and a
digest left behind (a process stopped or killed mid-send) never blocks the next one nor
gets its stories mailed twice.

The servers are real sockets on 127.0.0.1 trickling one byte at a time, so no single read
ever waits `smtp.timeout`; `veille digest` runs as a child process, and each test waits for
it to exit (or kills it) and for the server's events, never for a length of time.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.conftest import without_env_overrides
from tests.integration.test_digest import (
    Inbox,
    assert_lists_exactly,
    digests,
    free_port,
    make_config,
    seed,
    sent_items,
)
from veille.crawler.run import PROJECT_ROOT
from veille.digest import send_digest
from veille.storage.db import Database

EXIT_BOUND = 120  # seconds: only a bound on a process that should have ended long before


class Trickler:
    """An SMTP server that stalls for ever at one point, sending a byte every 20 ms.

    `stall="greeting"`: it never finishes its greeting (endless "220-" lines).
    `stall="reply"`: a normal conversation up to the end of the message, then an endless
    reply to it (the server may have accepted the message: it never says).
    """

    def __init__(self, stall: str) -> None:
        self.stall = stall
        self.connected = threading.Event()
        self.ended = threading.Event()  # the message's last line arrived
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        self.connected.set()
        with conn:
            try:
                if self.stall == "greeting":
                    self._trickle(conn, b"220-still greeting\r\n")
                    return
                f = conn.makefile("rb")
                conn.sendall(b"220 ready\r\n")
                while line := f.readline():
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        conn.sendall(b"250-trickler\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 go on\r\n")
                        while (body := f.readline()) and body != b".\r\n":
                            pass
                        self.ended.set()
                        self._trickle(conn, b"250-still thinking\r\n")
                        return
                    else:
                        conn.sendall(b"250 ok\r\n")
            except OSError:  # the client cut the connection
                return

    def _trickle(self, conn: socket.socket, line: bytes) -> None:
        while True:
            for byte in line:
                if self._stop.wait(0.02):
                    return
                conn.sendall(bytes([byte]))



@pytest.fixture
def trickler(request: pytest.FixtureRequest) -> Iterator[Trickler]:
    srv = Trickler(request.param)
    yield srv
    srv.close()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def start_digest(database: Database, tmp_path: Path, port: int, deadline: float) -> subprocess.Popen[str]:
    """`veille digest` in a child process, against 127.0.0.1:`port`."""
    data = make_config(database.url, port, timeout=5, deadline=deadline).model_dump(
        mode="json", by_alias=True, exclude={"source"})
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "veille.cli", "digest", "--config", str(cfg), "--log-format", "text"],
        cwd=PROJECT_ROOT, env=without_env_overrides(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[str]) -> tuple[int, list[str]]:
    """Wait for the digest to exit on its own: its exit code and stderr lines."""
    try:
        _, err = proc.communicate(timeout=EXIT_BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("veille digest was still sending: no overall deadline")
    return proc.returncode, err.strip().splitlines()


def kill9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


@pytest.mark.parametrize("trickler", ["greeting"], indirect=True)
def test_a_trickling_server_is_left_at_the_deadline_in_one_line(
    db: Database, trickler: Trickler, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    seeded = seed(db)
    code, err = finish(start_digest(db, tmp_path, trickler.port, deadline=1))

    assert code == 1
    assert err[-1] == (f"veille: error: SMTP 127.0.0.1:{trickler.port}: not done within "
                       "smtp.deadline (1s), stopped during connect")
    assert not any("Traceback" in line for line in err)
    assert sent_items(db) == [] and digests(db) == [("failed", 0)]

    box, port = inbox  # the next digest is not blocked and carries every story
    result = send_digest(db, make_config(db.url, port))
    assert result.status == "sent" and result.count == 3
    assert_lists_exactly(box.messages[0], seeded)


@pytest.mark.parametrize("trickler", ["reply"], indirect=True)
def test_no_reply_to_the_end_of_the_message_counts_it_sent_never_mailed_twice(
    db: Database, trickler: Trickler, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    seeded = seed(db)
    code, err = finish(start_digest(db, tmp_path, trickler.port, deadline=1))

    assert trickler.ended.is_set()
    assert code == 1
    assert err[-1].startswith(f"veille: error: SMTP 127.0.0.1:{trickler.port}: no reply to the end "
                              "of the message within smtp.deadline (1s); digest 1 may have been "
                              "delivered: its stories count as sent")
    assert digests(db) == [("unconfirmed", 3)]
    assert sent_items(db) == sorted(seeded.tracked)

    box, port = inbox
    assert send_digest(db, make_config(db.url, port)).status == "empty"
    assert box.envelopes == []


@pytest.mark.parametrize("trickler", ["greeting"], indirect=True)
def test_a_digest_killed_before_the_end_of_its_message_is_sent_by_the_next(
    db: Database, trickler: Trickler, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    seeded = seed(db)
    proc = start_digest(db, tmp_path, trickler.port, deadline=3600)
    try:
        assert trickler.connected.wait(EXIT_BOUND), "the digest never connected"
    finally:
        kill9(proc)
    assert digests(db) == [("pending", 0)]  # what kill -9 leaves

    box, port = inbox
    result = send_digest(db, make_config(db.url, port))

    assert result.status == "sent" and result.count == 3
    assert_lists_exactly(box.messages[0], seeded)
    assert digests(db) == [("failed", 0), ("sent", 3)]


@pytest.mark.parametrize("trickler", ["reply"], indirect=True)
def test_a_digest_killed_after_the_end_of_its_message_is_not_mailed_again(
    db: Database, trickler: Trickler, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    seeded = seed(db)
    proc = start_digest(db, tmp_path, trickler.port, deadline=3600)
    try:
        assert trickler.ended.wait(EXIT_BOUND), "the message never reached its end"
    finally:
        kill9(proc)

    box, port = inbox
    result = send_digest(db, make_config(db.url, port))

    assert result.status == "empty" and box.envelopes == []
    assert digests(db) == [("unconfirmed", 3)]
    assert sent_items(db) == sorted(seeded.tracked)
