"""The replay server and the fixture outlets it serves.

Two halves: the server's HTTP behaviour, checked on a tiny outlet built in tmp_path, and
the consistency of every outlet folder under tests/fixtures/outlets (files exist, every
expected page is routed and linked, robots.txt forbids what must never be requested, the
keep/drop strings are really on the page). The second half is what keeps hand-written
fixtures honest when someone edits a page.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import unicodedata
import urllib.error
import urllib.request
import urllib.robotparser
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import lxml.html
import pytest
import yaml

from veille.crawler.replay import DEFAULT_ROOT, AccessEntry, ReplayServer, outlet_dirs
from veille.pipeline.config import OutletConfig, config_from_dict

ROUTE_KEYS = {"file", "type", "charset", "header_charset", "status", "redirect", "hang",
              "headers", "modified"}
ARTICLE_KEYS = {"path", "title", "published", "language", "on_topic", "event", "duplicate_of",
                "keep", "drop"}
EVENTS = {f"E{i}" for i in range(1, 12)}
OUTLETS = [d.name for d in outlet_dirs()]
URL_SAFE = "/?&=:+,;@!$'()*~%#"


# --- helpers -----------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET",
          timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """GET/HEAD without following redirects; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(quote(url, safe=URL_SAFE), headers=headers or {}, method=method)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def visible_text(html_text: str) -> str:
    """Page text as a reader sees it (no script/style), whitespace collapsed, NFC."""
    html_text = re.sub(r"^\s*<\?xml[^>]*>", "", html_text)
    doc = lxml.html.document_fromstring(html_text)
    for el in doc.xpath("//script|//style|//template"):
        el.drop_tree()
    return norm(doc.text_content())


def spellings(path: str) -> set[str]:
    """How a path may appear in a page or sitemap: raw or percent-encoded, HTML-escaped or not."""
    forms = {path, quote(path, safe=URL_SAFE)}
    return forms | {escape(f) for f in forms}


def norm(s: str) -> str:
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", s)).strip()


# --- the server, on a tiny outlet -----------------------------------------------------------

MINI_ROUTES = """
"/robots.txt": {file: robots.txt, type: text/plain}
"/feed.xml": {file: feed.xml, type: application/rss+xml, modified: 2024-07-02T21:00:00}
"/ar.html": {file: ar.html, charset: windows-1256}
"/ar-bare.html": {file: ar.html, charset: windows-1256, header_charset: false}
"/old.html": {redirect: "/new.html", status: 301}
"/new.html": {file: new.html}
"/spip.php?page=backend": {file: feed.xml, type: application/rss+xml}
"/slow.html": {file: new.html, hang: 30}
"/doc.pdf": {file: doc.pdf, type: application/pdf}
"/blocked": {file: new.html, status: 403, headers: {Server: cloudflare, CF-RAY: "8a1b-CDG"}}
"""


@pytest.fixture()
def mini(tmp_path: Path) -> Path:
    d = tmp_path / "mini"
    d.mkdir()
    (d / "outlet.yaml").write_text(
        'name: mini\nurl: "{{BASE}}/"\nlanguage: fr\nfeeds: ["{{BASE}}/feed.xml"]\n')
    (d / "routes.yaml").write_text(MINI_ROUTES)
    (d / "robots.txt").write_text("User-agent: *\nDisallow: /prive/\n")
    (d / "feed.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss><channel>'
        "<item><link>{{BASE}}/new.html</link></item></channel></rss>", encoding="utf-8")
    (d / "ar.html").write_text(
        '<html><head><meta charset="windows-1256"></head><body><p>الأمن الوطني</p></body></html>',
        encoding="utf-8")
    (d / "new.html").write_text("<html><body><p>Sécurité à Paris</p></body></html>",
                                encoding="utf-8")
    (d / "doc.pdf").write_bytes(b"%PDF-1.4\n\xff\xfe binary {{BASE}}\n%%EOF\n")
    return tmp_path


@pytest.fixture()
def server(mini: Path) -> Any:
    with ReplayServer(mini) as srv:
        yield srv


def test_serves_file_with_base_substituted_and_validators(server: ReplayServer) -> None:
    base = server.base("mini")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
    status, headers, body = fetch(base + "/feed.xml")
    assert status == 200
    assert headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert f"<link>{base}/new.html</link>".encode() in body and b"{{BASE}}" not in body
    assert headers["ETag"].startswith('"') and headers["Last-Modified"].endswith("GMT")
    assert headers["Last-Modified"] == "Tue, 02 Jul 2024 21:00:00 GMT"


def test_conditional_get_answers_304(server: ReplayServer) -> None:
    url = server.base("mini") + "/feed.xml"
    _, headers, _ = fetch(url)
    status, _, body = fetch(url, {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    assert fetch(url, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert fetch(url, {"If-Modified-Since": "Mon, 01 Jul 2024 00:00:00 GMT"})[0] == 200
    assert fetch(url, {"If-None-Match": '"stale"'})[0] == 200
    log = server.requests_for("mini", "/feed.xml")
    assert [e.conditional for e in log] == [False, True, True, True, True]
    assert [e.status for e in log] == [200, 304, 304, 200, 200]


def test_charset_reencoding(server: ReplayServer) -> None:
    status, headers, body = fetch(server.base("mini") + "/ar.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=windows-1256"
    assert "الأمن الوطني".encode("windows-1256") in body
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    _, headers, bare = fetch(server.base("mini") + "/ar-bare.html")
    assert headers["Content-Type"] == "text/html" and bare == body


def test_binary_file_served_untouched(server: ReplayServer, mini: Path) -> None:
    status, headers, body = fetch(server.base("mini") + "/doc.pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert body == (mini / "mini" / "doc.pdf").read_bytes()


def test_redirect_404_status_headers_and_head(server: ReplayServer) -> None:
    base = server.base("mini")
    status, headers, _ = fetch(base + "/old.html")
    assert status == 301 and headers["Location"] == base + "/new.html"
    assert fetch(base + "/nowhere.html")[0] == 404
    status, headers, body = fetch(base + "/blocked")
    assert status == 403 and headers["Server"] == "cloudflare" and headers["CF-RAY"]
    assert b"Paris" in body
    status, headers, body = fetch(base + "/new.html", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_query_routes_and_access_log(server: ReplayServer) -> None:
    base = server.base("mini")
    ua = "veille-test/1.0"
    assert fetch(base + "/spip.php?page=backend", {"User-Agent": ua})[0] == 200
    assert fetch(base + "/spip.php?page=other")[0] == 404
    entry = server.requests_for("mini", "/spip.php?page=backend")[0]
    assert entry == AccessEntry("mini", "GET", "/spip.php?page=backend", 200, False, ua)
    assert [e.status for e in server.access_log] == [200, 404]
    server.clear_log()
    assert server.access_log == []


def test_hang_does_not_block_others_and_stop_is_prompt(mini: Path) -> None:
    srv = ReplayServer(mini).start()
    base = srv.base("mini")
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        fetch(base + "/slow.html", timeout=0.5)  # what a crawler's download timeout sees
    outcome: list[object] = []
    slow = threading.Thread(target=lambda: outcome.append(_try(base + "/slow.html")))
    slow.start()
    assert fetch(base + "/new.html", timeout=5)[0] == 200  # answered while /slow.html sleeps
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    stopper.join(timeout=10)
    slow.join(timeout=10)
    assert not stopper.is_alive() and not slow.is_alive()
    assert outcome and not isinstance(outcome[0], int)  # hung up on, never answered


def _try(url: str) -> object:
    try:
        return fetch(url, timeout=60)[0]
    except Exception as exc:  # noqa: BLE001 - the test inspects what happened
        return exc


def test_overrides_replace_routes_at_runtime(mini: Path) -> None:
    with ReplayServer(mini, overrides={"mini": {"*": {"status": 500}}}) as srv:
        base = srv.base("mini")
        assert fetch(base + "/feed.xml")[0] == 500
        assert fetch(base + "/anything")[0] == 500
        srv.set_override("mini", {"/feed.xml": {"status": 503}})
        assert fetch(base + "/feed.xml")[0] == 503
        assert fetch(base + "/new.html")[0] == 200
        srv.set_override("mini", None)
        assert fetch(base + "/feed.xml")[0] == 200


def test_outlet_configs_have_base(server: ReplayServer) -> None:
    [cfg] = server.outlet_configs()
    assert cfg["feeds"] == [server.base("mini") + "/feed.xml"]
    OutletConfig.model_validate(cfg)


def test_unknown_outlet_is_a_clear_error(mini: Path) -> None:
    with pytest.raises(ValueError, match="nope"):
        ReplayServer(mini, outlets=["nope"])


# --- every fixture outlet -------------------------------------------------------------------

def _routes(name: str) -> dict[str, dict[str, Any]]:
    return load(DEFAULT_ROOT / name / "routes.yaml") or {}


def _expected(name: str) -> dict[str, Any]:
    return load(DEFAULT_ROOT / name / "expected.yaml") or {}


def _served_text(name: str, route: dict[str, Any]) -> str:
    return (DEFAULT_ROOT / name / route["file"]).read_text(encoding="utf-8")


def test_there_are_fixture_outlets() -> None:
    assert {"bladi", "le360", "deadoutlet", "slowoutlet", "blockedoutlet"} <= set(OUTLETS)


@pytest.mark.parametrize("name", OUTLETS)
def test_outlet_folder_is_consistent(name: str) -> None:
    folder = DEFAULT_ROOT / name
    outlet = OutletConfig.model_validate(
        yaml.safe_load((folder / "outlet.yaml").read_text("utf-8").replace("{{BASE}}", "http://h:1")))
    assert outlet.name == name
    routes = _routes(name)
    for path, route in routes.items():
        assert path == "*" or path.startswith("/"), path
        assert set(route) <= ROUTE_KEYS, f"{path}: unknown keys {set(route) - ROUTE_KEYS}"
        if "file" in route:
            assert (folder / route["file"]).is_file(), f"{path}: {route['file']} missing"
        if "redirect" in route and route["redirect"].startswith("/"):
            assert route["redirect"] in routes, f"{path}: redirect target not routed"
    for url in [*outlet.feeds, *outlet.sitemaps, *outlet.sections]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        assert path in routes or "*" in routes, f"{url} is not routed"


@pytest.mark.parametrize("name", OUTLETS)
def test_expected_pages_are_routed_linked_and_allowed(name: str) -> None:
    routes, exp = _routes(name), _expected(name)
    assert set(exp) <= {"articles", "skipped", "never_requested", "health"}
    assert exp.get("health", "ok") in {"ok", "failing", "blocked", "silent"}
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(_served_text(name, routes["/robots.txt"]).splitlines()
                 if "/robots.txt" in routes else [])
    others = {p: _served_text(name, r) for p, r in routes.items() if "file" in r
              and not r["file"].endswith(".pdf")}
    pages = ([a["path"] for a in exp.get("articles") or []] + list(exp.get("skipped") or [])
             + list(exp.get("never_requested") or []))
    assert len(pages) == len(set(pages)), "a path is listed twice in expected.yaml"
    for path in pages:
        assert path in routes, f"{path} is in expected.yaml but not routed"
        assert any(form in text for p, text in others.items() if p != path
                   for form in spellings(path)), f"{path} is not linked from any other page"
    for path in exp.get("never_requested") or []:
        assert not robots.can_fetch("veille", path), f"{path} is not disallowed by robots.txt"
    for path in [a["path"] for a in exp.get("articles") or []] + list(exp.get("skipped") or []):
        assert robots.can_fetch("veille", path), f"{path} is disallowed by robots.txt"


def _all_article_ids() -> set[str]:
    return {f"{n}:{a['path']}" for n in OUTLETS for a in _expected(n).get("articles") or []}


@pytest.mark.parametrize("name", OUTLETS)
def test_expected_articles_match_their_pages(name: str) -> None:
    routes = _routes(name)
    known = _all_article_ids()
    for art in _expected(name).get("articles") or []:
        where = f"{name}:{art.get('path')}"
        keys = set(art) - {"template"}  # optional: lines only the outlet's other pages reveal
        assert keys == ARTICLE_KEYS, f"{where}: keys {sorted(keys ^ ARTICLE_KEYS)}"
        assert isinstance(art["published"], dt.date), f"{where}: published is not a date"
        assert art["language"] in {"fr", "ar", "en"} and isinstance(art["on_topic"], bool)
        assert art["event"] is None or art["event"] in EVENTS, where
        assert art["duplicate_of"] is None or art["duplicate_of"] in known, where
        assert art["duplicate_of"] != where
        assert len(art["keep"]) >= 2 and len(art["drop"]) >= 3, f"{where}: keep/drop too short"
        text = visible_text(_served_text(name, routes[art["path"]]))
        assert norm(art["title"]) in text, f"{where}: title not on the page"
        for s in [*art["keep"], *art["drop"], *art.get("template", [])]:
            assert norm(s) in text, f"{where}: {s!r} is not on the page"


def test_every_fixture_outlet_is_served() -> None:
    with ReplayServer() as srv:
        config_from_dict({"outlets": srv.outlet_configs()})  # valid as a config, names unique
        for name in srv.outlets:
            base, routes = srv.base(name), _routes(name)
            for path, route in routes.items():
                if path == "*" or route.get("hang"):
                    continue
                status = fetch(base + path)[0]
                want = route.get("status", 301 if "redirect" in route else 200)
                assert status == want, f"{name}{path}: {status} != {want}"
            if "*" in routes:
                want = routes["*"].get("status", 200)
                assert fetch(base + "/no-such-page-here/")[0] == want
            else:
                assert fetch(base + "/no-such-page-here/")[0] == 404
        assert {e.outlet for e in srv.access_log} == set(srv.outlets)
