"""web_server: which hosts are this machine only, and binding before uvicorn starts."""

from __future__ import annotations

import socket

import pytest

from veille.web_server import bind, is_loopback


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("veille.example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bind_gives_a_free_port_and_refuses_a_taken_one() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # listening already: a client may connect before the server runs
        with pytest.raises(OSError):
            bind("127.0.0.1", port).close()
    finally:
        sock.close()
