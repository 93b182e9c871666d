"""`veille outlets check` and `veille outlets discover` against real HTTP servers on 127.0.0.1.

- check on the replay outlets: every source ok, with its item count and newest date;
  the Cloudflare-blocked and the broken replay outlets are blocked and dead, exit 1.
- check on small hostile sites (http.server handlers written here): a 403, a 404, an
  empty feed, a redirect to another host or port, a robots.txt disallow, a closed port,
  a feed that never answers; the request cap; one request at a time per host, and
  outlets on different hosts probed at the same time.
- discover on replay outlets: the feed and sitemap found, the printed YAML loads with
  the project's config loader.

What was requested is read from the servers' own logs.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURE_OUTLETS, TEST_CRAWL, replay_config, write_config
from veille.cli import main
from veille.crawler import discovery as d
from veille.crawler.probe import MAX_REQUESTS
from veille.crawler.replay import ReplayServer
from veille.pipeline.config import load_config

UA = "veille-probe-test/1.0 (+https://example.org/veille)"
GOOD = ["bladi", "chamalpress", "hespress", "le360", "maghress", "moroccoworldnews"]

Route = tuple[int, dict[str, str], bytes] | Callable[[], tuple[int, dict[str, str], bytes]]


def rss(*links: str) -> bytes:
    items = "".join(f"<item><title>t</title><link>{u}</link>"
                    "<pubDate>Mon, 14 Apr 2025 18:30:00 GMT</pubDate></item>" for u in links)
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


XML = {"Content-Type": "application/rss+xml"}


class Site:
    """A tiny HTTP server on 127.0.0.1: fixed routes, every request logged."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, str]] = []  # (path, user agent)
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with site.lock:
                    site.log.append((self.path, self.headers.get("User-Agent", "")))
                route = site.routes.get(self.path, (404, {}, b"not found"))
                status, headers, body = route() if callable(route) else route
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.log]

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def outlet(name: str, base: str, **sources: Any) -> dict[str, Any]:
    return {"name": name, "url": base + "/", "language": "fr", **sources}


def check(tmp_path: Path, outlets: list[dict[str, Any]], capsys: pytest.CaptureFixture[str],
          *args: str, **crawl: Any) -> tuple[int, Any]:
    """`veille outlets check --json` on these outlets: (exit code, {name: {url: source}})."""
    data = {"crawl": {**TEST_CRAWL, "user_agent": UA, **crawl}, "outlets": outlets}
    config = write_config(tmp_path / "config.yaml", data)
    code = main(["outlets", "check", "--json", "--config", str(config), *args])
    out = json.loads(capsys.readouterr().out)
    return code, {o["name"]: {**o, "by_url": {s["url"]: s for s in o["sources"]}} for o in out}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(FIXTURE_OUTLETS) as srv:
        yield srv


# ------------------------------------------------------------------ check on the replay


def test_check_on_the_replay_gives_every_source_its_items_and_newest_date(
        replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    replay.clear_log()
    data = replay_config(replay, tmp_path / "v.db", outlets=GOOD, user_agent=UA)
    config = write_config(tmp_path / "config.yaml", data)
    assert main(["outlets", "check", "--json", "--config", str(config)]) == 0
    reports = {o["name"]: o for o in json.loads(capsys.readouterr().out)}
    assert sorted(reports) == sorted(GOOD) and all(o["working"] for o in reports.values())
    for cfg in data["outlets"]:
        sources = reports[cfg["name"]]["sources"]
        assert sources[0]["kind"] == "robots" and sources[0]["verdict"] == "ok"
        configured = cfg.get("feeds", []) + cfg.get("sitemaps", []) + cfg.get("sections", [])
        assert [s["url"] for s in sources[1:]] == configured  # each source, in the crawler's order
        for s in sources[1:]:
            assert s["verdict"] == "ok" and s["answers"] == ["200"] and s["items"] > 0, s
    hespress = {s["kind"]: s for s in reports["hespress"]["sources"]}
    news = d.parse_sitemap((FIXTURE_OUTLETS / "hespress" / "sitemap-news.xml").read_bytes(), "http://x/")
    assert hespress["sitemap"]["items"] == len(news.entries) == 6
    assert hespress["sitemap"]["newest"] == max(e.published for e in news.entries if e.published).isoformat()
    assert hespress["robots"]["note"] == "1 Sitemap line"
    le360_index = reports["le360"]["sources"][2]
    assert le360_index["note"] == "index of 1 sitemap, 1 read" and le360_index["items"] == 5
    chamal_sitemap = reports["chamalpress"]["sources"][3]
    assert chamal_sitemap["usable"] < chamal_sitemap["items"]  # article_pattern leaves some out
    # robots.txt first on each site, with the configured user agent, nothing disallowed asked
    for name in GOOD:
        log = replay.requests_for(name)
        assert log[0].path == "/robots.txt" and {e.user_agent for e in log} == {UA}
        assert not any(e.path.startswith(("/prive/", "/preview/", "/search")) for e in log)


def test_check_table_names_the_blocked_and_the_dead_and_exits_1(
        replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a terminal wide enough not to wrap the notes
    data = replay_config(replay, tmp_path / "v.db", outlets=["bladi", "blockedoutlet", "deadoutlet"])
    config = write_config(tmp_path / "config.yaml", data)
    assert main(["outlets", "check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "1 of 3 outlets have a working source" in out
    assert "(bot challenge)" in out and "HTTP 500 Internal Server Error" in out
    assert out.rstrip().splitlines()[-1] == "No working source: blockedoutlet, deadoutlet"
    assert main(["outlets", "check", "--json", "--outlet", "blockedoutlet", "--config", str(config)]) == 1
    blocked = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in blocked] == ["blockedoutlet"]
    assert {s["verdict"] for s in blocked[0]["sources"]} == {"blocked"}


def test_check_of_an_unknown_outlet_is_one_line(
        replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "config.yaml", replay_config(replay, tmp_path / "v.db", outlets=["bladi"]))
    assert main(["outlets", "check", "--outlet", "nosuch", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"veille: error: {config}: no outlet named 'nosuch' (known: bladi)"


# ------------------------------------------------------------------ hostile sites


def test_each_hostile_answer_gets_its_verdict_and_nothing_off_limits_is_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Site() as site, Site() as admin:
        b = site.base
        other_host = b.replace("127.0.0.1", "127.0.0.2") + "/feed.xml"
        site.routes = {
            "/robots.txt": (200, {"Content-Type": "text/plain"},
                            b"User-agent: *\nDisallow: /prive/\n\nUser-agent: veille-probe-test\n"
                            b"Disallow: /prive/\nDisallow: /interdit/\n"),
            "/good.xml": (200, XML, rss(b + "/2025/04/14/un-article/")),
            "/forbidden.xml": (403, {"Content-Type": "text/html"}, b"<h1>Forbidden</h1>"),
            "/throttled.xml": (429, {"Retry-After": "60"}, b"slow down"),
            "/empty.xml": (200, XML, rss()),
            "/html.xml": (200, {"Content-Type": "text/html"}, b"<html><body>accueil</body></html>"),
            "/elsewhere.xml": (301, {"Location": other_host}, b""),
            "/admin.xml": (302, {"Location": admin.base + "/feed.xml"}, b""),
            "/old.xml": (301, {"Location": "/good.xml"}, b""),
            "/prive/feed.xml": (200, XML, rss(b + "/2025/04/14/secret/")),
            "/interdit/feed.xml": (200, XML, rss(b + "/2025/04/14/secret/")),
            "/broken": (500, {}, b"oops"),
        }
        admin.routes = {"/feed.xml": (200, XML, rss(admin.base + "/2025/04/14/x/"))}
        feeds = [b + p for p in ("/good.xml", "/forbidden.xml", "/throttled.xml", "/empty.xml",
                                 "/html.xml", "/elsewhere.xml", "/admin.xml", "/old.xml",
                                 "/prive/feed.xml", "/interdit/feed.xml", "/missing.xml",
                                 "/broken")]
        code, reports = check(tmp_path, [outlet("site", b, feeds=feeds,
                                                sitemaps=[admin.base + "/sitemap.xml"])], capsys)
        assert code == 0  # /good.xml works
        got = {url.removeprefix(b): (s["verdict"], s["note"]) for url, s in reports["site"]["by_url"].items()}
        assert got["/good.xml"] == ("ok", "")
        assert got["/forbidden.xml"] == ("blocked", "HTTP 403 Forbidden")
        assert got["/throttled.xml"] == ("blocked", "HTTP 429 Too Many Requests")
        assert got["/empty.xml"] == ("empty", "no items")
        assert got["/html.xml"][0] == "empty" and "(text/html)" in got["/html.xml"][1]
        assert got["/elsewhere.xml"] == ("moved", f"→ {other_host} (not followed: other host 127.0.0.2)")
        admin_port = admin.base.rsplit(":", 1)[1]
        assert got["/admin.xml"] == ("moved", f"→ {admin.base}/feed.xml (not followed: other port {admin_port})")
        assert got["/old.xml"] == ("moved", f"→ {b}/good.xml")
        assert reports["site"]["by_url"][b + "/old.xml"]["working"] is True  # the crawler follows it
        assert got["/prive/feed.xml"] == ("blocked", "disallowed by robots.txt")
        assert got["/interdit/feed.xml"] == ("blocked", "disallowed by robots.txt")  # our token's group
        assert got["/missing.xml"] == ("dead", "HTTP 404 Not Found")
        assert got["/broken"] == ("dead", "HTTP 500 Internal Server Error")
        sitemap = reports["site"]["by_url"][admin.base + "/sitemap.xml"]
        assert (sitemap["verdict"], sitemap["answers"]) == ("skipped", ["-"])
        assert sitemap["note"] == f"not on the outlet's origin (other port {admin_port})"
        assert admin.paths() == []  # neither the redirect nor the configured sitemap reached it
        asked = site.paths()
        assert asked[0] == "/robots.txt" and asked.count("/robots.txt") == 1
        assert not any(p.startswith(("/prive/", "/interdit/")) for p in asked)
        assert {ua for _, ua in site.log} == {UA}


def test_an_outlet_with_only_broken_sources_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Site() as site:
        site.routes = {"/empty.xml": (200, XML, rss()), "/robots.txt": (404, {}, b"")}
        code, reports = check(tmp_path, [outlet("site", site.base, feeds=[site.base + "/empty.xml"])],
                              capsys)
    assert code == 1 and reports["site"]["working"] is False
    assert reports["site"]["sources"][0]["note"] == "no robots.txt (HTTP 404): everything allowed"


def test_a_closed_port_and_a_silent_feed_are_dead(
        replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # nobody listens once it is closed
    slow = replay.outlet_configs()[[o for o in replay.outlets].index("slowoutlet")]
    code, reports = check(tmp_path, [outlet("closed", closed, feeds=[closed + "/feed/"]), slow],
                          capsys, timeout=1)
    assert code == 1
    assert [(s["verdict"], s["note"]) for s in reports["closed"]["sources"]] == [
        ("dead", "connection refused")] * 2
    feed = reports["slowoutlet"]["sources"][1]
    assert (feed["verdict"], feed["answers"], feed["note"]) == ("dead", ["timeout"], "timeout after 1s")


def test_requests_per_outlet_and_bytes_per_answer_are_capped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Site() as site:
        big = rss(*(f"{site.base}/2025/04/14/article-numero-{i}/" for i in range(2_000)))
        site.routes = {"/big.xml": (200, XML, big)}
        site.routes |= {f"/f{i}.xml": (200, XML, rss(site.base + f"/2025/04/14/a-{i}/"))
                        for i in range(MAX_REQUESTS + 5)}
        feeds = [site.base + "/big.xml"] + [site.base + f"/f{i}.xml" for i in range(MAX_REQUESTS + 5)]
        code, reports = check(tmp_path, [outlet("site", site.base, feeds=feeds)], capsys,
                              max_page_bytes=20_000)
        assert len(site.paths()) == MAX_REQUESTS == reports["site"]["requests"]
    sources = reports["site"]["sources"]
    assert len(big) > 20_000
    assert sources[1]["verdict"] == "ok" and sources[1]["note"].endswith("body cut at the byte cap")
    assert 0 < sources[1]["items"] < 2_000  # what the first 20 kB held
    skipped = [s for s in sources if s["verdict"] == "skipped"]
    assert len(skipped) == len(feeds) + 1 - MAX_REQUESTS  # + robots.txt, which counts
    assert all(s["note"] == f"request cap reached ({MAX_REQUESTS} per outlet)" for s in skipped)
    assert code == 0


def test_one_request_at_a_time_per_host_and_hosts_in_parallel(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two outlets on one server never overlap; two on separate servers do.

    A feed of the shared server waits for another request to arrive while it is open (it
    never should); a feed of each separate server waits for the other server's feed
    request (it must come: the outlets are probed in parallel). Each wait is bounded.
    """
    arrived = {"a": threading.Event(), "b": threading.Event(), "shared": threading.Event()}
    overlap: list[str] = []
    in_flight = threading.Semaphore(1)

    def shared_feed() -> tuple[int, dict[str, str], bytes]:
        if not in_flight.acquire(blocking=False):
            overlap.append("two at once")
            return 200, XML, rss(shared.base + "/2025/04/14/article-partage/")
        try:
            arrived["shared"].wait(0.3)  # another request of this host would be one at a time
        finally:
            in_flight.release()
        return 200, XML, rss(shared.base + "/2025/04/14/article-partage/")

    met: dict[str, bool] = {}

    def meet(mine: str, other: str, base: Callable[[], str]) -> Callable[[], tuple[int, dict[str, str], bytes]]:
        def answer() -> tuple[int, dict[str, str], bytes]:
            arrived[mine].set()
            met[mine] = arrived[other].wait(20)  # probed one after the other, it never comes
            return 200, XML, rss(base() + f"/2025/04/14/article-{mine}/")
        return answer

    with Site() as shared, Site() as site_a, Site() as site_b:
        shared.routes = {f"/feed{i}.xml": shared_feed for i in range(3)}
        site_a.routes = {"/feed.xml": meet("a", "b", lambda: site_a.base)}
        site_b.routes = {"/feed.xml": meet("b", "a", lambda: site_b.base)}
        outlets = [outlet("one", shared.base, feeds=[shared.base + "/feed0.xml", shared.base + "/feed1.xml"]),
                   outlet("two", shared.base, feeds=[shared.base + "/feed2.xml"]),
                   outlet("a", site_a.base, feeds=[site_a.base + "/feed.xml"]),
                   outlet("b", site_b.base, feeds=[site_b.base + "/feed.xml"])]
        code, reports = check(tmp_path, outlets, capsys)
    assert code == 0 and overlap == []
    assert met == {"a": True, "b": True}
    assert all(reports[n]["sources"][1]["verdict"] == "ok" for n in reports)


def test_a_name_resolving_to_loopback_is_refused_before_any_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if "127.0.0.1" not in addresses:
        pytest.skip(f"{name!r} does not resolve to 127.0.0.1 ({addresses})")
    with Site() as site:
        base = f"http://{name}:{site.base.rsplit(':', 1)[1]}"
        site.routes = {"/feed.xml": (200, XML, rss(base + "/2025/04/14/un-article/"))}
        code, reports = check(tmp_path, [outlet("named", base, feeds=[base + "/feed.xml"])], capsys)
        assert site.paths() == []  # not even robots.txt
    assert code == 1
    for source in reports["named"]["sources"]:
        assert source["verdict"] == "skipped"
        assert "resolves to a non-public address (127.0.0.1)" in source["note"]


# ------------------------------------------------------------------ discover


def discover(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["outlets", "discover", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fast_config(tmp_path: Path) -> str:
    """A config without the politeness delay (the shipped one waits 1 s between requests)."""
    return str(write_config(tmp_path / "config.yaml", {"crawl": TEST_CRAWL}))


def load_entry(tmp_path: Path, printed: str) -> Any:
    """The printed entry pasted under `outlets:` of a config, read by the project's loader."""
    path = tmp_path / "pasted.yaml"
    path.write_text("outlets:\n" + printed, encoding="utf-8")
    return load_config(path).outlets[0]


def test_discover_finds_the_feed_and_the_sitemap_and_prints_a_loadable_entry(
        replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml: the default crawl settings
    base = replay.base("hespress")
    replay.clear_log()
    code, out, err = discover(capsys, base + "/politique", "--language", "ar", "--name", "hespress")
    assert code == 0
    entry = load_entry(tmp_path, out)
    assert (entry.name, entry.url, entry.language) == ("hespress", base + "/", "ar")
    assert entry.feeds == [base + "/feed"]  # /feed/ answered 301 → /feed: the final URL
    assert entry.sitemaps == [base + "/sitemap-news.xml"]  # robots.txt's Sitemap: line
    assert "Candidates tried" in err and "moved" in err
    assert yaml.safe_load(out)[0]["feeds"] == [base + "/feed"]
    asked = [e.path for e in replay.requests_for("hespress")]
    assert asked[0] == "/robots.txt" and len(asked) == len(set(asked))


def test_discover_reads_the_home_pages_feed_link_and_language(
        replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the candidates' table unwrapped
    base = replay.base("bladi")
    code, out, err = discover(capsys, base + "/", "--name", "bladi", "--config", fast_config(tmp_path))
    assert code == 0
    entry = load_entry(tmp_path, out)
    assert entry.language == "fr"  # <html lang="fr">
    assert entry.feeds == [base + "/spip.php?page=backend"]  # <link rel="alternate">
    assert entry.sitemaps == []  # none answers: every guess is a 404
    assert "│ home page  │ feed    │ /spip.php?page=backend │ 200" in err


def test_discover_of_a_dead_site_or_a_bad_url_is_one_line(
        replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = replay.base("deadoutlet")
    code, out, err = discover(capsys, base, "--language", "fr", "--config", fast_config(tmp_path))
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith(f"veille: error: {base}/: no feed or sitemap answered")
    assert "Traceback" not in err
    code, out, err = discover(capsys, "ftp://example.org/")
    assert code == 2 and err.strip() == ("veille: error: 'ftp://example.org/' is not an http(s) URL "
                                         "(e.g. https://www.example.ma/)")
    code, out, err = discover(capsys, base, "--name", "Not A Slug")
    assert code == 2 and err.startswith("veille: error: outlet name: 'Not A Slug' is not a slug")
