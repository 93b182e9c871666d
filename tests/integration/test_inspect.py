"""app/inspect (`veille extract`) against a real HTTP server on 127.0.0.1 and SQLite files.

A page is read from a URL (redirects followed, headers as the crawler would hand them) or
a file; what cannot be read is one line naming the source; the outlet's learnt template
is read from its database without ever creating or migrating one. The JSON shape is the
same for an article and for a page that is not one, so scripts can rely on its keys.
tests/integration/test_cli.py covers the command's output and exit codes; this file the
module's own rules.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURE_OUTLETS, repo_topics
from veille.inspect import InspectError, inspect_page, load_page, outlet_template
from veille.pipeline.config import Config, config_from_dict
from veille.pipeline.template import Template
from veille.storage import templates as st_templates
from veille.storage.db import Database
from veille.storage.models import Outlet

ARTICLE = (FIXTURE_OUTLETS / "bladi" / "articles" / "e1-hammouchi-medaille.html").read_bytes()
LISTING = (FIXTURE_OUTLETS / "le360" / "politique.html").read_bytes()
MAX_BYTES = 200_000


class Site(BaseHTTPRequestHandler):
    """/article.html, /moved (301 to it), /listing.html, /big (over the size limit), 404 else."""

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", base + "/article.html")
            self.end_headers()
            return
        body = {"/article.html": ARTICLE.replace(b"{{BASE}}", base.encode()),
                "/listing.html": LISTING.replace(b"{{BASE}}", base.encode()),
                "/big": b"<p>" + b"x" * (MAX_BYTES + 10) + b"</p>"}.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("X-Served-By", "test")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def config(db_url: str, site: str = "http://127.0.0.1:1") -> Config:
    return config_from_dict({"database": {"url": db_url}, "crawl": {"max_page_bytes": MAX_BYTES, "timeout": 10},
                             "outlets": [{"name": "bladi", "url": site + "/", "language": "fr"}],
                             "topics": repo_topics()})


def test_a_page_by_url_follows_redirects_and_keeps_the_given_identity(site: str, tmp_path: Path) -> None:
    cfg = config(f"sqlite:///{tmp_path / 'v.db'}", site)
    page = load_page(site + "/moved", cfg, url=None, outlet="bladi", language="fr")
    assert (page.url, page.final_url) == (site + "/moved", site + "/article.html")
    assert page.headers["content-type"] == "text/html; charset=utf-8" and page.headers["x-served-by"] == "test"
    assert page.language_hint == "fr" and page.outlet == "bladi" and b"Hammouchi" in page.body
    named = load_page(site + "/moved", cfg, url="https://www.bladi.net/x,1.html", outlet="cli", language=None)
    assert named.url == "https://www.bladi.net/x,1.html" and named.final_url == site + "/article.html"


def test_a_page_from_a_file_is_named_by_its_path_unless_a_url_is_given(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(ARTICLE)
    cfg = config(f"sqlite:///{tmp_path / 'v.db'}")
    page = load_page(str(path), cfg, url=None, outlet="cli", language=None)
    assert page.url == page.final_url == path.resolve().as_uri() and page.headers == {}
    named = load_page(str(path), cfg, url="https://www.bladi.net/x,1.html", outlet="cli", language=None)
    assert named.url == named.final_url == "https://www.bladi.net/x,1.html"


@pytest.mark.parametrize(("path", "said"), [
    ("/nothing-here", "HTTP 404 Not Found"),
    ("/big", f"page larger than crawl.max_page_bytes ({MAX_BYTES})"),
])
def test_a_page_that_cannot_be_had_is_one_line(site: str, tmp_path: Path, path: str, said: str) -> None:
    with pytest.raises(InspectError) as err:
        load_page(site + path, config(f"sqlite:///{tmp_path / 'v.db'}", site), url=None, outlet="cli",
                  language=None)
    assert str(err.value) == f"{site}{path}: {said}"


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.html"
    with pytest.raises(InspectError) as err:
        load_page(str(missing), config(f"sqlite:///{tmp_path / 'v.db'}"), url=None, outlet="cli", language=None)
    assert str(err.value) == f"{missing}: cannot read file (No such file or directory)"


def test_an_article_and_a_listing_have_the_same_keys(site: str, tmp_path: Path) -> None:
    cfg = config(f"sqlite:///{tmp_path / 'v.db'}", site)
    art = inspect_page(site + "/article.html", cfg, outlet="bladi")
    listing = inspect_page(site + "/listing.html", cfg)
    assert set(art) == set(listing) - {"skipped"}
    assert listing["skipped"] and listing["text"] is None and listing["topics"] == []
    assert "Hammouchi" in art["title"] and art["language"] == "fr"
    assert art["published"] == "2024-07-02T21:00:00+01:00"  # ISO, at the offset the page stated
    (topic,) = art["topics"]
    assert topic["name"] == "maroc-france-securite" and topic["score"] > 0
    assert all(set(m) == {"term", "field", "count"} for m in topic["matched"])


# --------------------------------------------------------------------------- the learnt template


def test_no_database_no_template_and_none_is_created(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "v.db"
    assert outlet_template(config(f"sqlite:///{path}"), "bladi") == Template("bladi")
    assert not path.exists() and not path.parent.exists()


def test_a_database_without_its_tables_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    sqlite3.connect(path).close()  # an empty file: some other program's, or a fresh one
    assert outlet_template(config(f"sqlite:///{path}"), "bladi") == Template("bladi")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_an_unreachable_database_gives_the_generic_rules() -> None:
    assert outlet_template(config("postgresql://veille@127.0.0.1:1/veille"), "bladi") == Template("bladi")


def test_only_configured_outlets_read_their_evidence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    db = Database(url)
    with db.transaction() as s:
        for name in ("bladi", "other"):
            s.add(outlet := Outlet(name=name, url=f"https://{name}.example/"))
            s.flush()
            st_templates.record_lines(s, outlet.id, ["0123456789abcdef"], datetime.now(UTC))
    db.dispose()
    cfg = config(url)
    assert outlet_template(cfg, "bladi").pages == 1  # read from its database
    assert outlet_template(cfg, "other") == Template("other")  # not configured: generic rules
