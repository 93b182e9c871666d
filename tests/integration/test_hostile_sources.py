"""Outlets as untrusted input: real crawls against real HTTP servers on 127.0.0.1.

- A feed item, sitemap entry, child sitemap, robots.txt sitemap, section link or
  redirect towards the outlet's host on another port (an "admin" server) is never
  requested: the admin server's access log stays empty.
- An outlet whose *name* resolves to a loopback address is refused before any request.
- A sitemap index whose children are indexes, without end, costs a bounded number of
  requests and not the feed's articles; the run and `veille status` say so.

What was requested is read from the servers' access logs, what was stored from the
database; nothing here waits on a clock (the crawls end on their own).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.conftest import (
    FIXTURE_OUTLETS,
    TEST_CRAWL,
    repo_topics,
    without_env_overrides,
    write_config,
)
from veille.crawl import run_crawl_subprocess
from veille.crawler.canonical import canonical_url
from veille.crawler.origin import non_public
from veille.crawler.replay import ReplayServer
from veille.crawler.run import PROJECT_ROOT
from veille.crawler.settings import SITEMAP_MAX_REQUESTS
from veille.storage.db import Database
from veille.storage.models import Article, OutletRun

BLADI = FIXTURE_OUTLETS / "bladi" / "articles"
# distinct events, so none is folded into another as a duplicate
PAGES = ["e1-hammouchi-medaille.html", "e4-tanger-fugitif.html", "e6-berthon-rabat.html",
         "x-dgsn-recrutement.html"]


def article_bytes(name: str, base: str) -> bytes:
    return (BLADI / name).read_bytes().replace(b"{{BASE}}", base.encode())


def config_for(outlet: dict[str, Any], db: Path, **crawl: Any) -> dict[str, Any]:
    """One outlet; a download timeout no local page comes near, however busy the machine."""
    return {"database": {"url": f"sqlite:///{db}"}, "crawl": {**TEST_CRAWL, "timeout": 120, **crawl},
            "outlets": [outlet], "topics": repo_topics()}


def outlet_run(db: Database) -> OutletRun:
    with db.transaction() as s:
        return s.scalars(select(OutletRun)).one()


def stored_urls(db: Database) -> set[str]:
    with db.transaction() as s:
        return set(s.scalars(select(Article.url)))


def veille(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veille.cli", *args, "--config", str(config)],
                          cwd=PROJECT_ROOT, env=without_env_overrides(), capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)


# ---------------------------------------------------------------- the outlet's own port


def _site_files(admin: str) -> dict[str, str]:
    """The outlet's sources, every one of them also pointing at the admin port."""
    urlset = ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
              + "".join(f"<url><loc>{u}</loc></url>" for u in (
                  "{{BASE}}/2024/07/01/b-la-page-du-sitemap-du-site/",
                  admin + "/2024/07/01/une-page-du-sitemap-sur-le-port-admin/")) + "</urlset>")
    return {
        "robots.txt": f"User-agent: *\nAllow: /\nSitemap: {admin}/robots-sitemap.xml\n",
        "feed.xml": '<?xml version="1.0"?><rss version="2.0"><channel>' + "".join(
            f"<item><title>t</title><link>{u}</link></item>" for u in (
                "{{BASE}}/2024/07/01/a-la-page-du-flux-du-site/",
                admin + "/2024/07/01/une-page-du-flux-sur-le-port-admin/",
                "{{BASE}}/2024/07/01/une-page-qui-redirige-vers-le-port-admin/")) + "</channel></rss>",
        "index.xml": '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                     f"<sitemap><loc>{admin}/child-sitemap.xml</loc></sitemap>"
                     "<sitemap><loc>{{BASE}}/posts.xml</loc></sitemap></sitemapindex>",
        "posts.xml": urlset,
        "section.html": "<html><body><h1>Politique</h1><ul>"
                        '<li><a href="/2024/07/01/c-la-page-de-la-rubrique-du-site/">C</a></li>'
                        f'<li><a href="{admin}/2024/07/01/une-page-de-la-rubrique-sur-le-port-admin/">X</a>'
                        "</li></ul></body></html>",
    }


SITE_ROUTES: dict[str, dict[str, Any]] = {
    "/robots.txt": {"file": "robots.txt", "type": "text/plain"},
    "/feed.xml": {"file": "feed.xml", "type": "application/rss+xml"},
    "/sitemap_index.xml": {"file": "index.xml", "type": "application/xml"},
    "/posts.xml": {"file": "posts.xml", "type": "application/xml"},
    "/politique/": {"file": "section.html"},
    "/2024/07/01/a-la-page-du-flux-du-site/": {"file": "a.html"},
    "/2024/07/01/b-la-page-du-sitemap-du-site/": {"file": "b.html"},
    "/2024/07/01/c-la-page-de-la-rubrique-du-site/": {"file": "c.html"},
}


@pytest.fixture()
def site_and_admin(tmp_path: Path) -> Iterator[ReplayServer]:
    """Two servers on 127.0.0.1: the outlet, and an admin console on another port."""
    root = tmp_path / "outlets"
    for name in ("site", "admin"):
        (root / name).mkdir(parents=True)
        (root / name / "outlet.yaml").write_text(
            yaml.safe_dump({"name": name, "url": "{{BASE}}/", "language": "fr"}), encoding="utf-8")
    (root / "admin" / "routes.yaml").write_text(yaml.safe_dump({"*": {"file": "secret.html"}}))
    (root / "site" / "routes.yaml").write_text("{}")  # served through an override, below
    (root / "admin" / "secret.html").write_bytes(article_bytes(PAGES[3], "http://admin.invalid"))
    routes = dict(SITE_ROUTES)
    with ReplayServer(root) as srv:
        admin = srv.base("admin")
        routes["/2024/07/01/une-page-qui-redirige-vers-le-port-admin/"] = {
            "redirect": admin + "/2024/07/01/la-cible-de-la-redirection/", "status": 302}
        for name, text in _site_files(admin).items():
            (root / "site" / name).write_text(text, encoding="utf-8")
        for name, page in zip(("a.html", "b.html", "c.html"), PAGES, strict=False):
            (root / "site" / name).write_bytes(article_bytes(page, srv.base("site")))
        srv.set_override("site", routes)  # the admin's port is known only now
        yield srv


def test_nothing_on_the_outlets_host_at_another_port_is_ever_requested(
        site_and_admin: ReplayServer, tmp_path: Path) -> None:
    srv = site_and_admin
    base, admin = srv.base("site"), srv.base("admin")
    outlet = {"name": "site", "url": base + "/", "language": "fr", "feeds": [base + "/feed.xml"],
              "sitemaps": [base + "/robots.txt", base + "/sitemap_index.xml"],
              "sections": [base + "/politique/"]}
    data = config_for(outlet, tmp_path / "v.db")
    assert run_crawl_subprocess(write_config(tmp_path / "c.yaml", data)) == 0

    assert srv.requests_for("admin") == []  # the admin port never saw a request
    site_paths = [e.path for e in srv.requests_for("site")]
    assert {"/feed.xml", "/posts.xml", "/politique/"} <= set(site_paths)  # every source was read
    db = Database(data["database"]["url"])
    assert stored_urls(db) == {canonical_url(base + p) for p in SITE_ROUTES if p.startswith("/2024/")}
    run = outlet_run(db)
    refused = sorted(e.split(": ", 1)[0] for e in run.errors if ": refused: " in e)
    assert refused == sorted(admin + p for p in (
        "/robots-sitemap.xml", "/child-sitemap.xml", "/2024/07/01/une-page-du-flux-sur-le-port-admin/",
        "/2024/07/01/une-page-du-sitemap-sur-le-port-admin/",
        "/2024/07/01/une-page-de-la-rubrique-sur-le-port-admin/"))
    port = admin.rsplit(":", 1)[1]
    assert all(f"other port {port}" in e for e in run.errors if ": refused: " in e)
    redirect = [e for e in run.errors if "une-page-qui-redirige" in e]
    assert len(redirect) == 1 and f"off-site redirect to 127.0.0.1:{port}" in redirect[0]
    assert run.status == "ok"
    db.dispose()


def test_an_outlet_whose_name_resolves_to_loopback_is_refused(tmp_path: Path) -> None:
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if "127.0.0.1" not in addresses or not all(non_public(str(a)) for a in addresses):
        pytest.skip(f"{name!r} does not resolve to 127.0.0.1 only ({addresses})")
    with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi"]) as srv:
        port = srv.base("bladi").rsplit(":", 1)[1]
        base = f"http://{name}:{port}"  # a public-looking name of the same server
        outlet = {"name": "bladi", "url": base + "/", "language": "fr",
                  "feeds": [base + "/spip.php?page=backend"]}
        data = config_for(outlet, tmp_path / "v.db")
        run_crawl_subprocess(write_config(tmp_path / "c.yaml", data))
        assert srv.access_log == []  # not even robots.txt
    db = Database(data["database"]["url"])
    run = outlet_run(db)
    assert run.status == "failing" and not stored_urls(db)
    assert any(f"{name.lower()} resolves to a non-public address (127.0.0.1)" in e for e in run.errors)
    db.dispose()


# ---------------------------------------------------------------- sitemap-index trap


class TrapServer:
    """An outlet with a real feed of 4 articles and a sitemap index of indexes without end."""

    FANOUT = 25

    def __init__(self) -> None:
        self.log: list[str] = []
        self.lock = threading.Lock()
        trap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with trap.lock:
                    trap.log.append(self.path)
                status, ctype, body = trap.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/feed.xml":
            items = "".join(f"<item><title>{i}</title><link>{self.base}/articles/{i}.html</link></item>"
                            for i in range(len(PAGES)))
            return 200, "application/rss+xml", f'<rss version="2.0"><channel>{items}</channel></rss>'.encode()
        if path.startswith("/articles/"):
            i = int(path.rsplit("/", 1)[1].split(".")[0])
            return 200, "text/html; charset=utf-8", article_bytes(PAGES[i], self.base)
        if path.startswith("/sitemap") and path.endswith(".xml"):  # every child is an index again
            stem = path[:-4]
            children = "".join(f"<sitemap><loc>{self.base}{stem}-{i}.xml</loc>"
                               "<lastmod>2025-04-16</lastmod></sitemap>" for i in range(self.FANOUT))
            return 200, "application/xml", (
                '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"{children}</sitemapindex>").encode()
        return 404, "text/plain", b"not found"

    def __enter__(self) -> TrapServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_sitemap_index_trap_costs_a_bounded_number_of_requests_not_the_feeds_articles(
        tmp_path: Path) -> None:
    with TrapServer() as srv:
        outlet = {"name": "trap", "url": srv.base + "/", "language": "fr",
                  "sitemaps": [srv.base + "/sitemap.xml"], "feeds": [srv.base + "/feed.xml"]}
        config = write_config(tmp_path / "c.yaml", config_for(outlet, tmp_path / "v.db"))
        assert run_crawl_subprocess(config) == 0
        log = list(srv.log)
    sitemaps = [p for p in log if p.startswith("/sitemap")]
    assert len(sitemaps) <= SITEMAP_MAX_REQUESTS  # not thousands
    assert len(sitemaps) == len(set(sitemaps))
    assert sorted(p for p in log if p.startswith("/articles/")) == [f"/articles/{i}.html" for i in range(4)]
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    assert len(stored_urls(db)) == 4
    run = outlet_run(db)
    assert run.status == "ok" and run.new == 4
    assert any("sitemaps truncated: " in e for e in run.errors[:2])
    db.dispose()

    status = veille(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    (trap,) = json.loads(status.stdout)["outlets"]
    assert trap["sitemaps_truncated"] and "limit" in trap["sitemaps_truncated"]
    table = veille(config, "status")
    assert "trap: sitemaps truncated: " in table.stdout
