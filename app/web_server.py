"""Running the web view under uvicorn: in the foreground for `veille serve`, or in a
thread for the tests and the screenshot script.

The socket is bound before uvicorn starts, so a port in use is one clear error (uvicorn
would exit the process), and port 0 gives a free port known before the first request.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

READY_TIMEOUT_S = 30


def is_loopback(host: str) -> bool:
    """True when `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (OSError when it cannot be had)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class WebServer(uvicorn.Server):
    """A uvicorn server whose `ready` event is set once it accepts connections, and that
    returns after a SIGINT or SIGTERM has shut it down gracefully (uvicorn raises the
    signal again, killing the process or raising KeyboardInterrupt: `veille serve` stops
    with exit 0 instead)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()  # handled: the server has shut down


def make_server(app: ASGIApp, *, log_level: str = "info") -> WebServer:
    """A server for `app`; veille's logging stays as set up, the access log is ours
    (web_auth logs requests without their query string, which may carry the token)."""
    return WebServer(uvicorn.Config(app, log_config=None, access_log=False, log_level=log_level,
                                    lifespan="off", server_header=False))


@contextmanager
def serving_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` from a thread for the block; yields its base URL once it accepts."""
    sock = bind(host, port)
    server = make_server(app, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="veille-web")
    thread.start()
    try:
        if not server.ready.wait(READY_TIMEOUT_S) or not server.started:
            raise RuntimeError(f"the web view did not start within {READY_TIMEOUT_S} s")
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(READY_TIMEOUT_S)
        sock.close()
