"""Offline replay of the fixture outlets, one real HTTP server per outlet on 127.0.0.1.

Tests, `veille demo` and `bench/` crawl these instead of the internet. The format of an
outlet folder (outlet.yaml, routes.yaml, expected.yaml) is described in
tests/fixtures/outlets/README.md. Stdlib only, so it starts in milliseconds and has no
moving parts a test would have to mock.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml


def _default_root() -> Path:
    """The bundled replay outlets: shipped as the package data `veille.replay_outlets`
    (tests/fixtures/outlets in a checkout), so `veille demo` works from a wheel too."""
    spec = importlib.util.find_spec("veille.replay_outlets")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "outlets"


DEFAULT_ROOT = _default_root()
BASE_MARK = "{{BASE}}"
CATCH_ALL = "*"
FIXED_MODIFIED = datetime(2024, 1, 1, tzinfo=UTC)
_TEXTUAL = ("xml", "json", "javascript", "html")


@dataclass(frozen=True)
class AccessEntry:
    """One request as the server saw it; tests assert on these (robots, conditional GET)."""

    outlet: str
    method: str
    path: str  # path with query, as requested
    status: int
    conditional: bool  # If-None-Match or If-Modified-Since was sent
    user_agent: str
    at: float = field(default=0.0, compare=False)  # time.monotonic() when it arrived


def outlet_dirs(root: Path = DEFAULT_ROOT) -> list[Path]:
    """Every folder of `root` holding an outlet.yaml, sorted by name."""
    return sorted(p.parent for p in root.glob("*/outlet.yaml"))


def _http_date(value: Any) -> datetime:
    """A route's `modified` key (ISO date/datetime, YAML date or HTTP date) as aware UTC."""
    if value is None:
        return FIXED_MODIFIED
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        dt = parsedate_to_datetime(str(value))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class _Outlet:
    """One outlet folder and its running server."""

    def __init__(self, folder: Path) -> None:
        self.name = folder.name
        self.folder = folder
        self.routes: dict[str, dict[str, Any]] = yaml.safe_load(
            (folder / "routes.yaml").read_text(encoding="utf-8")) or {}
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.base = ""


class ReplayServer:
    """Serve fixture outlets; a context manager that starts and stops every server."""

    def __init__(self, root: Path = DEFAULT_ROOT, outlets: list[str] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None, port_base: int = 0) -> None:
        found = {d.name: d for d in outlet_dirs(Path(root))}
        names = list(found) if outlets is None else list(outlets)
        unknown = [n for n in names if n not in found]
        if unknown:
            raise ValueError(f"unknown outlet(s) {unknown} in {root} (known: {sorted(found)})")
        self._outlets = {n: _Outlet(found[n]) for n in names}
        self._overrides: dict[str, dict[str, Any]] = dict(overrides or {})
        self._port_base = port_base
        self._lock = threading.Lock()
        self._log: list[AccessEntry] = []
        self._stopping = threading.Event()
        self._released = threading.Event()  # answers routes with `hold: true`

    def start(self) -> ReplayServer:
        self._stopping.clear()
        for i, o in enumerate(self._outlets.values()):
            port = self._port_base + i if self._port_base else 0
            try:
                server = ThreadingHTTPServer(("127.0.0.1", port), self._handler(o))
            except OSError:
                self.stop()  # do not leave the outlets already started running
                raise
            server.daemon_threads = True
            server.block_on_close = False  # a hanging handler must not delay stop()
            o.server, o.base = server, f"http://127.0.0.1:{server.server_address[1]}"
            o.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"replay-{o.name}", daemon=True)
            o.thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a `hang`
        for o in self._outlets.values():
            if o.server is not None:
                o.server.shutdown()
                o.server.server_close()
                o.server = None
            if o.thread is not None:
                o.thread.join(timeout=5)
                o.thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def outlets(self) -> list[str]:
        return list(self._outlets)

    def base(self, outlet: str) -> str:
        base = self._outlets[outlet].base
        if not base:
            raise RuntimeError("ReplayServer is not started")
        return base

    def outlet_configs(self) -> list[dict[str, Any]]:
        """Each outlet.yaml with {{BASE}} filled in, ready for a config's `outlets:` list."""
        return [yaml.safe_load((o.folder / "outlet.yaml").read_text(encoding="utf-8")
                               .replace(BASE_MARK, self.base(o.name)))
                for o in self._outlets.values()]

    @property
    def access_log(self) -> list[AccessEntry]:
        with self._lock:
            return list(self._log)

    def requests_for(self, outlet: str, path: str | None = None) -> list[AccessEntry]:
        return [e for e in self.access_log
                if e.outlet == outlet and (path is None or e.path == path)]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def release(self) -> None:
        """Let every request held by a `hold: true` route be answered (now and later).

        A test holds a page until something has happened (a signal was handled), instead
        of hoping a `hang` of N seconds outlasts it on a busy machine.
        """
        self._released.set()

    def set_override(self, outlet: str, routes: dict[str, Any] | None) -> None:
        """Replace routes of one outlet while running; they win over routes.yaml.

        An override `"*"` answers every path not named in the override itself; None clears.
        """
        with self._lock:
            if routes:
                self._overrides[outlet] = dict(routes)
            else:
                self._overrides.pop(outlet, None)

    def _route(self, o: _Outlet, path: str) -> dict[str, Any] | None:
        with self._lock:
            override = self._overrides.get(o.name) or {}
        for table in (override, o.routes):
            for key in (path, unquote(path)):
                if key in table:
                    return table[key]
            if CATCH_ALL in table:
                return table[CATCH_ALL]
        return None

    def _handler(self, o: _Outlet) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "replay/1"
            timeout = 30  # idle keep-alive connections

            def do_GET(self) -> None:
                replay._serve(o, self, head=False)

            def do_HEAD(self) -> None:
                replay._serve(o, self, head=True)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the access log is the record; stderr noise helps nobody

            def handle(self) -> None:
                try:
                    super().handle()
                except (ConnectionError, TimeoutError):
                    pass  # a crawler that timed out and hung up is the expected case

        return Handler

    def _serve(self, o: _Outlet, h: BaseHTTPRequestHandler, head: bool) -> None:
        route = self._route(o, h.path)
        headers: dict[str, str] = {}
        body = b""
        if route is None:
            status, body = 404, b"<html><body><h1>404 Not Found</h1></body></html>"
            headers["Content-Type"] = "text/html; charset=utf-8"
        else:
            status = int(route.get("status", 301 if "redirect" in route else 200))
            if "redirect" in route:
                target = str(route["redirect"]).replace(BASE_MARK, o.base)
                headers["Location"] = o.base + target if target.startswith("/") else target
            if "file" in route:
                body, headers["Content-Type"] = self._body(o, route)
            elif status >= 400:
                body = f"{status} {h.responses.get(status, ('',))[0]}".encode()
                headers["Content-Type"] = "text/plain; charset=utf-8"
            if status == 200 and "file" in route:
                headers["ETag"] = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
                modified = _http_date(route.get("modified"))
                headers["Last-Modified"] = format_datetime(modified, usegmt=True)
                if self._not_modified(h, headers["ETag"], modified):
                    status, body = 304, b""
                    del headers["Content-Type"]
            for k, v in (route.get("headers") or {}).items():
                headers[str(k)] = str(v).replace(BASE_MARK, o.base)
        conditional = bool(h.headers.get("If-None-Match") or h.headers.get("If-Modified-Since"))
        with self._lock:  # logged before any hang, so a test sees the request it is waiting on
            self._log.append(AccessEntry(o.name, h.command, h.path, status, conditional,
                                         h.headers.get("User-Agent", ""), time.monotonic()))
        if route is not None and route.get("hang"):
            if self._stopping.wait(float(route["hang"])):
                h.close_connection = True
                return  # stopping: hang up without an answer
        if route is not None and route.get("hold"):
            while not self._released.wait(0.05):
                if self._stopping.is_set():
                    h.close_connection = True
                    return
        h.send_response_only(status)  # not send_response: a route may set its own Server
        lower = {k.lower() for k in headers}
        for k, v in {"Server": h.version_string(), "Date": h.date_time_string()}.items():
            if k.lower() not in lower:
                h.send_header(k, v)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        if self._stopping.is_set():
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        if not head and status != 304:
            h.wfile.write(body)

    @staticmethod
    def _body(o: _Outlet, route: dict[str, Any]) -> tuple[bytes, str]:
        """File bytes with {{BASE}} filled in, re-encoded to the route's charset."""
        ctype = str(route.get("type", "text/html"))
        raw = (o.folder / str(route["file"])).read_bytes()
        if not (ctype.startswith("text/") or any(t in ctype for t in _TEXTUAL)):
            return raw, ctype
        charset = str(route.get("charset", "utf-8"))
        text = raw.decode("utf-8").replace(BASE_MARK, o.base)
        body = text.encode(charset, errors="xmlcharrefreplace")
        if route.get("header_charset", True) and "charset=" not in ctype:
            ctype = f"{ctype}; charset={charset}"
        return body, ctype

    @staticmethod
    def _not_modified(h: BaseHTTPRequestHandler, etag: str, modified: datetime) -> bool:
        inm = h.headers.get("If-None-Match")
        if inm:  # takes precedence over If-Modified-Since (RFC 9110 13.2.2)
            tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
            return "*" in tags or etag in tags
        ims = h.headers.get("If-Modified-Since")
        if ims:
            try:
                return parsedate_to_datetime(ims) >= modified.replace(microsecond=0)
            except (TypeError, ValueError):
                return False
        return False


def main(argv: list[str] | None = None) -> int:
    """`python -m crawler.replay`: serve every fixture outlet until Ctrl-C (or SIGTERM)."""
    ap = argparse.ArgumentParser(prog="python -m crawler.replay", description=__doc__)
    ap.add_argument("--port-base", type=int, default=0,
                    help="first port; outlets take consecutive ports (default: free ports)")
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="fixture outlets folder")
    ap.add_argument("outlet", nargs="*", help="outlets to serve (default: all)")
    args = ap.parse_args(argv)
    try:
        server = ReplayServer(args.root, args.outlet or None, port_base=args.port_base).start()
    except (ValueError, OSError) as exc:
        ap.exit(2, f"replay: {exc}\n")
    for name in server.outlets:
        print(f"{name:16} {server.base(name)}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
