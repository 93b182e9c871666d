"""The crawler end to end: real replay server on 127.0.0.1, real SQLite file, real processes.

Each crawl runs in its own process (`run_crawl_subprocess` / `veille crawl`),
as the daemon runs it, since Twisted's reactor cannot restart. What was downloaded is
read from the replay server's access log, what was stored from the database.

No assertion depends on the machine's speed (CI shares 2 cores with everything else).
A crawl that is not about timeouts runs with a download timeout far above anything a
page on 127.0.0.1 needs (`SAFE_TIMEOUT`): the crawl process extracts pages in its
reactor thread, and on a busy machine that stalls in-flight downloads for seconds, so a
3 s timeout failed healthy pages. A hanging server hangs until it is stopped, and the
test checks the crawl *ended* (it could not have waited for the answer); a page that
must stay in flight is held until the test releases it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.conftest import FIXTURE_OUTLETS, replay_config, without_env_overrides, write_config
from veille.crawl import run_crawl_subprocess
from veille.crawler.canonical import canonical_url
from veille.crawler.replay import AccessEntry, ReplayServer, outlet_dirs
from veille.crawler.run import PROJECT_ROOT
from veille.storage.db import Database
from veille.storage.models import Article, CrawlRun, OutletRun, Page

UA = "veille-test/1.0 (+https://example.org/veille-tests)"
FAULTY = {"deadoutlet": "failing", "blockedoutlet": "blocked"}  # answer at once, wrongly
SLOW = "slowoutlet"  # its feed never answers: crawled apart, with a short timeout
SAFE_TIMEOUT = 120  # seconds: no page of the replay comes near it, however busy the machine
FOREVER = 3600  # a `hang` that lasts until the server stops


def expected_of(outlet: str) -> dict[str, Any]:
    path = FIXTURE_OUTLETS / outlet / "expected.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@dataclass
class Crawl:
    code: int
    seconds: float
    log: list[AccessEntry]

    def paths(self, outlet: str) -> list[str]:
        return [e.path for e in self.log if e.outlet == outlet]


@dataclass
class World:
    outlets: list[str]
    bases: dict[str, str]
    configs: dict[str, dict[str, Any]]
    db: Database
    first: Crawl
    second: Crawl

    def url(self, outlet: str, path: str) -> str:
        url = canonical_url(self.bases[outlet] + path)
        assert url is not None
        return url

    def healthy(self) -> list[str]:
        return [o for o in self.outlets if o not in FAULTY]


def crawl(srv: ReplayServer, config: Path, outlets: list[str] | None = None) -> Crawl:
    srv.clear_log()
    t0 = time.monotonic()
    # the timeout is a safety net against a hung test, never an assertion
    code = run_crawl_subprocess(config, outlets, timeout=600)
    return Crawl(code, time.monotonic() - t0, srv.access_log)


def hang_forever(srv: ReplayServer, outlet: str, path: str) -> None:
    """Make one route of `outlet` hang until the server stops."""
    routes = yaml.safe_load((FIXTURE_OUTLETS / outlet / "routes.yaml").read_text(encoding="utf-8"))
    srv.set_override(outlet, {path: {**routes[path], "hang": FOREVER}})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("crawl")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VEILLE_DATABASE_URL", raising=False)
        outlets = [d.name for d in outlet_dirs(FIXTURE_OUTLETS) if d.name != SLOW]
        with ReplayServer(FIXTURE_OUTLETS, outlets=outlets) as srv:
            data = replay_config(srv, tmp / "veille.db", user_agent=UA, timeout=SAFE_TIMEOUT)
            config = write_config(tmp / "config.yaml", data)
            first = crawl(srv, config)
            second = crawl(srv, config)
            bases = {o: srv.base(o) for o in srv.outlets}
        db = Database(data["database"]["url"])
        yield World(list(bases), bases, {o["name"]: o for o in data["outlets"]}, db, first, second)
        db.dispose()


def outlet_runs(db: Database, run_id: int) -> dict[str, OutletRun]:
    with db.transaction() as s:
        return {r.outlet: r for r in s.scalars(select(OutletRun).where(OutletRun.run_id == run_id))}


# ---------------------------------------------------------------- first crawl


def test_both_crawls_complete(world: World) -> None:
    assert (world.first.code, world.second.code) == (0, 0)
    with world.db.transaction() as s:
        runs = list(s.scalars(select(CrawlRun).order_by(CrawlRun.id)))
        assert [(r.status, r.finished_at is not None) for r in runs] == [("ok", True)] * 2


def test_first_crawl_stores_exactly_the_expected_articles(world: World) -> None:
    expected = {world.url(o, a["path"]) for o in world.outlets for a in expected_of(o).get("articles", [])}
    with world.db.transaction() as s:
        articles = set(s.scalars(select(Article.url)))
        folded = set(s.scalars(select(Page.url).where(Page.kind == "duplicate")))
    # an outlet's own update under a new URL is folded into the original article (a page
    # row of kind "duplicate", no article row); every other expected page is an article
    own_updates = {
        world.url(o, a["path"])
        for o in world.outlets
        for a in expected_of(o).get("articles", [])
        if (a.get("duplicate_of") or "").split(":", 1)[0] == o
    }
    assert articles == expected - own_updates
    assert own_updates <= folded
    assert not articles & folded


def test_no_listing_tag_or_video_page_becomes_an_article(world: World) -> None:
    skipped = {world.url(o, p) for o in world.outlets for p in expected_of(o).get("skipped", [])}
    with world.db.transaction() as s:
        articles = set(s.scalars(select(Article.url)))
    assert skipped and not skipped & articles


def test_robots_disallowed_paths_are_never_requested(world: World) -> None:
    for outlet in world.outlets:
        never = set(expected_of(outlet).get("never_requested", []))
        requested = set(world.first.paths(outlet)) | set(world.second.paths(outlet))
        assert not never & requested, outlet


def test_every_request_carries_the_configured_user_agent(world: World) -> None:
    agents = {e.user_agent for e in world.first.log + world.second.log}
    assert agents == {UA}


def test_dead_and_blocked_outlets_are_reported_by_name(world: World) -> None:
    runs = outlet_runs(world.db, 1)
    assert set(runs) == set(world.outlets)
    assert {o: runs[o].status for o in FAULTY} == FAULTY
    assert all(runs[o].status == "ok" and runs[o].new > 0 for o in world.healthy())
    dead, blocked = runs["deadoutlet"], runs["blockedoutlet"]
    assert dead.failed >= 1 and any("HTTP 500" in e for e in dead.errors)
    assert any("HTTP 403" in e for e in blocked.errors)
    assert all("timeout" not in e for r in runs.values() for e in r.errors)


def test_a_hanging_outlet_costs_only_its_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The slow outlet's feed never answers; the run ends anyway, the others are crawled.

    Only the first pages of the healthy outlet are looked at: its feed and first
    articles arrive before the crawl process extracts anything (what can stall it), so
    a short timeout is safe here; and the hang outlasts any timeout.
    """
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi", SLOW, *FAULTY]) as srv:
        hang_forever(srv, SLOW, "/feed/")
        data = replay_config(srv, tmp_path / "v.db", outlets=list(srv.outlets), timeout=3)
        result = crawl(srv, write_config(tmp_path / "config.yaml", data))
        assert [e.path for e in srv.requests_for(SLOW)] == ["/robots.txt", "/feed/"]
        base = srv.base(SLOW)
    assert result.code == 0  # it ended although the feed never answered
    db = Database(data["database"]["url"])
    runs = outlet_runs(db, 1)
    db.dispose()
    assert {o: runs[o].status for o in (SLOW, *FAULTY)} == {SLOW: "failing", **FAULTY}
    assert runs[SLOW].errors == [f"{base}/feed/: timeout after 3s"]
    assert runs["bladi"].status == "ok" and runs["bladi"].fetched > 0


def test_counts_match_storage(world: World) -> None:
    runs = outlet_runs(world.db, 1)
    with world.db.transaction() as s:
        pages = len(list(s.scalars(select(Page.id))))
    assert sum(r.new + r.updated + r.skipped for r in runs.values()) == pages
    assert all(r.discovered >= r.fetched for r in runs.values())


# ---------------------------------------------------------------- second crawl


def test_second_crawl_downloads_no_page_already_stored(world: World) -> None:
    for outlet in world.outlets:
        exp = expected_of(outlet)
        pages = {a["path"] for a in exp.get("articles", [])} | set(exp.get("skipped", []))
        sources = {_path(world.bases[outlet], u) for kind in ("feeds", "sitemaps", "sections")
                   for u in world.configs[outlet].get(kind) or []}
        again = set(world.second.paths(outlet)) & (pages - sources)
        assert not again, f"{outlet} downloaded again: {sorted(again)}"


def test_second_crawl_asks_sources_conditionally(world: World) -> None:
    for outlet in world.healthy():
        answers = [e for e in world.second.log if e.outlet == outlet and e.path != "/robots.txt"]
        assert any(e.conditional and e.status == 304 for e in answers), outlet
    runs = outlet_runs(world.db, 2)
    assert all(runs[o].fetched == 0 and runs[o].status == "ok" for o in world.healthy())


def _path(base: str, url: str) -> str:
    return url[len(base):] if url.startswith(base) else url


# ---------------------------------------------------------------- faults, budget, signals


@pytest.fixture()
def bladi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ReplayServer, Path]]:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi"]) as srv:
        yield srv, tmp_path


def _articles(outlet: str = "bladi") -> list[str]:
    return [a["path"] for a in expected_of(outlet)["articles"]]


def test_page_faults_are_counted_and_logged_not_fatal(bladi: tuple[ReplayServer, Path]) -> None:
    srv, tmp = bladi
    offsite, loop, pdf, error, ok = _articles()[:5]
    srv.set_override("bladi", {
        offsite: {"redirect": "http://offsite.invalid/page.html", "status": 302},
        loop: {"redirect": loop, "status": 301},
        pdf: {"file": "robots.txt", "type": "application/pdf"},
        error: {"status": 404},
    })
    config = write_config(tmp / "config.yaml", replay_config(srv, tmp / "v.db", timeout=SAFE_TIMEOUT))
    result = crawl(srv, config)
    assert result.code == 0
    db = Database(f"sqlite:///{tmp / 'v.db'}")
    run = outlet_runs(db, 1)["bladi"]
    reasons = {e.split(": ", 1)[0].removeprefix(srv.base("bladi")): e.split(": ", 1)[1] for e in run.errors}
    assert run.status == "ok" and run.failed == 4
    assert "off-site redirect to offsite.invalid" in reasons[offsite]
    assert "redirect loop" in reasons[loop] or "too many redirects" in reasons[loop]
    assert "not an HTML page (application/pdf)" in reasons[pdf]
    assert reasons[error] == "HTTP 404"
    with db.transaction() as s:
        assert canonical_url(srv.base("bladi") + ok) in set(s.scalars(select(Article.url)))
    db.dispose()


def test_oversized_pages_are_cut_off_and_counted(bladi: tuple[ReplayServer, Path]) -> None:
    srv, tmp = bladi
    data = replay_config(srv, tmp / "v.db", max_page_bytes=12_000,
                         timeout=SAFE_TIMEOUT)  # articles are ~12-13 kB
    result = crawl(srv, write_config(tmp / "config.yaml", data))
    assert result.code == 0
    db = Database(data["database"]["url"])
    run = outlet_runs(db, 1)["bladi"]
    too_big = [e for e in run.errors if e.endswith("body larger than the size limit (crawl.max_page_bytes)")]
    assert run.status == "ok" and len(too_big) >= 5 and run.failed == len(too_big)
    db.dispose()


def test_wall_clock_limit_stops_the_run_as_interrupted(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    with ReplayServer(FIXTURE_OUTLETS, outlets=["bladi", SLOW]) as srv:
        hang_forever(srv, SLOW, "/feed/")  # the run cannot end on its own
        # the in-flight feed is given up at its timeout (3 s), after the 1 s limit
        data = replay_config(srv, tmp_path / "v.db", outlets=list(srv.outlets), wall_clock_limit=1,
                             timeout=3)
        result = crawl(srv, write_config(tmp_path / "config.yaml", data))
    assert result.code == 0  # interrupted is not a failure: the next run continues
    db = Database(data["database"]["url"])
    with db.transaction() as s:
        run = s.scalars(select(CrawlRun)).one()
        assert (run.status, run.message) == ("interrupted", "wall-clock limit of 1s reached")
    db.dispose()


def test_max_pages_per_outlet_bounds_a_run_and_the_next_run_continues(
        bladi: tuple[ReplayServer, Path]) -> None:
    srv, tmp = bladi
    config = write_config(tmp / "config.yaml",
                          replay_config(srv, tmp / "v.db", max_pages_per_outlet=3,
                                        timeout=SAFE_TIMEOUT))
    articles = set(_articles()) | set(expected_of("bladi")["skipped"])
    seen: list[str] = []
    for _ in range(2):
        result = crawl(srv, config)
        fetched = [p for p in result.paths("bladi") if p in articles and p != "/maroc/"]
        assert result.code == 0 and len(fetched) == 3
        seen += fetched
    assert len(set(seen)) == 6  # the second run fetched three others, none twice


def test_the_crawl_program_exits_at_once_with_its_output_and_logs_whole(
        bladi: tuple[ReplayServer, Path]) -> None:
    """`veille crawl` run as a program skips the interpreter's teardown once the run is
    recorded (crawler.run.end_crawl_process): its exit code, its JSON summary on stdout and
    every log line up to the last (the search index, after the run record) still arrive."""
    import json

    srv, tmp = bladi
    data = replay_config(srv, tmp / "v.db", max_pages_per_outlet=2, timeout=SAFE_TIMEOUT)
    config = write_config(tmp / "config.yaml", data)
    done = subprocess.run([sys.executable, "-m", "veille.cli", "crawl", "--config", str(config), "--quiet",
                           "--json", "-v", "--log-format", "json"],
                          cwd=PROJECT_ROOT, env=without_env_overrides(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "ok" and summary["totals"]["new"] >= 1
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("logger") == "veille.search" and "indexed" in e for e in logged)
    db = Database(data["database"]["url"])
    with db.transaction() as s:
        run = s.scalars(select(CrawlRun)).one()
        assert run.status == "ok" and run.finished_at is not None
    db.dispose()


def test_sigterm_stops_gracefully_and_in_flight_pages_commit(bladi: tuple[ReplayServer, Path]) -> None:
    srv, tmp = bladi
    newest = max(expected_of("bladi")["articles"], key=lambda a: a["published"])
    slow = newest["path"]  # among the first requested (newest first), so others still queue
    routes = yaml.safe_load((FIXTURE_OUTLETS / "bladi" / "routes.yaml").read_text(encoding="utf-8"))
    srv.set_override("bladi", {slow: {**routes[slow], "hold": True}})  # answered after SIGTERM
    data = replay_config(srv, tmp / "v.db", timeout=30, concurrency_per_domain=1)
    config = write_config(tmp / "config.yaml", data)
    proc = subprocess.Popen([sys.executable, "-m", "veille.cli", "crawl", "--config", str(config), "--quiet"],
                            cwd=PROJECT_ROOT, env=without_env_overrides(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # a bound on an event that comes much sooner
        while not srv.requests_for("bladi", slow) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.requests_for("bladi", slow), "the slow page was never requested"
        proc.send_signal(signal.SIGTERM)  # delivered before the held page can be answered
        srv.release()
        code = proc.wait(timeout=60)
    finally:
        srv.release()
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    db = Database(data["database"]["url"])
    with db.transaction() as s:
        run = s.scalars(select(CrawlRun)).one()
        articles = set(s.scalars(select(Article.url)))
        pages = set(s.scalars(select(Page.url)))
    assert run.status == "interrupted" and run.finished_at is not None
    assert canonical_url(srv.base("bladi") + slow) in articles  # in flight: finished and committed
    assert articles <= pages  # every stored article is whole (its page row too)
    fetched = [p for p in srv.requests_for("bladi") if p.path in set(_articles())]
    assert len(fetched) < len(_articles())  # queued pages were dropped, not fetched
    db.dispose()


def test_run_crawl_runs_once_per_process(bladi: tuple[ReplayServer, Path]) -> None:
    srv, tmp = bladi
    config = write_config(tmp / "config.yaml", replay_config(srv, tmp / "v.db", timeout=SAFE_TIMEOUT))
    script = ("import sys\n"
              "from veille.crawler.run import CrawlError, run_crawl\n"
              "from veille.pipeline.config import load_config\n"
              "cfg = load_config(sys.argv[1])\n"
              "print(run_crawl(cfg, progress=False).status)\n"
              "try:\n"
              "    run_crawl(cfg, progress=False)\n"
              "except CrawlError as exc:\n"
              "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", script, str(config)], cwd=PROJECT_ROOT,
                         env=without_env_overrides(), capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == [
        "ok", "a crawl already ran in this process (Twisted's reactor cannot restart): "
              "use veille.crawl.run_crawl_subprocess"]


# ---------------------------------------------------------------- discovery sources


def _page(title: str, lang: str, date: str, paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="{{{{CHARSET}}}}">'
            f"<title>{title}</title><meta property=\"og:title\" content=\"{title}\">"
            f'<meta property="article:published_time" content="{date}"></head><body>'
            f'<nav><a href="/">Accueil</a></nav><article><h1>{title}</h1>{body}</article>'
            "<footer>© Wpsite</footer></body></html>")


FR = ["La Direction générale de la sûreté nationale a présenté mardi à Rabat le bilan de sa "
      "coopération avec les services de police européens, en insistant sur l'échange de "
      "renseignements et sur la formation commune des officiers de liaison.",
      "Selon le communiqué, plusieurs opérations conjointes ont permis de démanteler des réseaux "
      "de trafic de stupéfiants et de migration irrégulière au cours des derniers mois, avec "
      "l'appui des magistrats de liaison en poste dans les deux pays.",
      "Les responsables ont annoncé un nouveau programme d'échanges pour l'année prochaine."]
FR_B = ["Un programme d'échanges destiné aux officiers de liaison marocains et européens "
        "démarrera au printemps, a indiqué mercredi la direction de la coopération internationale.",
        "Une trentaine de cadres suivront des stages de trois semaines dans des écoles de police, "
        "consacrés à l'analyse criminelle, à la cybercriminalité et à la sécurité des grands "
        "événements sportifs prévus ces prochaines années.",
        "Les premiers participants seront désignés à l'issue d'un concours interne organisé en mars, "
        "et un bilan sera présenté devant les deux administrations à la fin de l'année."]
AR = ["أعلنت المديرية العامة للأمن الوطني، يوم الثلاثاء بالرباط، عن حصيلة تعاونها مع أجهزة الشرطة "
      "الأوروبية، مؤكدة على أهمية تبادل المعلومات والتكوين المشترك لضباط الاتصال.",
      "وحسب البلاغ، مكنت عدة عمليات مشتركة من تفكيك شبكات للاتجار في المخدرات والهجرة غير النظامية "
      "خلال الأشهر الأخيرة، بدعم من قضاة الاتصال المعتمدين في البلدين.",
      "وأعلن المسؤولون عن برنامج جديد للتبادل خلال السنة المقبلة، يشمل دورات تكوينية في التحليل "
      "الجنائي ومكافحة الجريمة الإلكترونية وتأمين التظاهرات الرياضية الكبرى.",
      "وسيتم اختيار المشاركين الأوائل بعد مباراة داخلية تنظم في شهر مارس المقبل."]

WPSITE = {
    "outlet.yaml": {"name": "wpsite", "url": "{{BASE}}/", "language": "fr", "wp_json": True,
                    "feeds": ["{{BASE}}/feed-ar.xml"], "sitemaps": ["{{BASE}}/robots.txt"]},
    "routes.yaml": {
        "/robots.txt": {"file": "robots.txt", "type": "text/plain"},
        "/sitemap_index.xml": {"file": "index.xml", "type": "application/xml"},
        "/post-sitemap.xml": {"file": "posts.xml", "type": "application/xml"},
        "/wp-json/wp/v2/posts?per_page=50&_fields=link,date_gmt,title":
            {"file": "posts.json", "type": "application/json"},
        "/feed-ar.xml": {"file": "feed-ar.xml", "type": "application/rss+xml", "charset": "windows-1256"},
        "/2025/04/14/la-dgsn-presente-le-bilan-de-sa-cooperation/": {"file": "a.html"},
        "/2025/04/15/un-nouveau-programme-d-echanges-pour-les-officiers/": {"file": "b.html"},
        "/2020/01/01/un-article-trop-ancien-pour-ce-crawl/": {"file": "a.html"},
        "/brouillon/2025/04/16/un-brouillon-a-ne-pas-lire/": {"file": "a.html"},
        "/2025/04/16/الأمن-الوطني-يقدم-حصيلة-التعاون-1533800.html":
            {"file": "d.html", "charset": "windows-1256", "header_charset": False},
    },
    "robots.txt": "User-agent: *\nDisallow: /brouillon/\nSitemap: {{BASE}}/sitemap_index.xml\n",
    "index.xml": '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                 "<sitemap><loc>{{BASE}}/post-sitemap.xml</loc><lastmod>2025-04-16</lastmod></sitemap>"
                 "</sitemapindex>",
    "posts.xml": '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                 "<url><loc>{{BASE}}/2025/04/14/la-dgsn-presente-le-bilan-de-sa-cooperation/</loc>"
                 "<lastmod>2025-04-14T10:00:00Z</lastmod></url>"
                 "<url><loc>{{BASE}}/brouillon/2025/04/16/un-brouillon-a-ne-pas-lire/</loc>"
                 "<lastmod>2025-04-16T10:00:00Z</lastmod></url>"
                 "<url><loc>{{BASE}}/2020/01/01/un-article-trop-ancien-pour-ce-crawl/</loc>"
                 "<lastmod>2020-01-01T10:00:00Z</lastmod></url></urlset>",
    "posts.json": '[{"link": "{{BASE}}/2025/04/15/un-nouveau-programme-d-echanges-pour-les-officiers/",'
                  ' "date_gmt": "2025-04-15T09:00:00", "title": {"rendered": "B"}}]',
    "feed-ar.xml": '<?xml version="1.0" encoding="windows-1256"?><rss version="2.0"><channel>'
                   "<item><title>الأمن الوطني يقدم حصيلة التعاون</title>"
                   "<link>{{BASE}}/2025/04/16/الأمن-الوطني-يقدم-حصيلة-التعاون-1533800.html</link>"
                   "</item></channel></rss>",
    "a.html": _page("La DGSN présente le bilan de sa coopération policière", "fr",
                    "2025-04-14T10:00:00Z", FR).replace("{{CHARSET}}", "utf-8"),
    "b.html": _page("Un nouveau programme d'échanges pour les officiers de liaison", "fr",
                    "2025-04-15T09:00:00Z", FR_B).replace("{{CHARSET}}", "utf-8"),
    "d.html": _page("الأمن الوطني يقدم حصيلة التعاون مع الشرطة الأوروبية", "ar",
                    "2025-04-16T09:00:00Z", AR).replace("{{CHARSET}}", "windows-1256"),
}


def test_wp_json_robots_sitemaps_index_recency_and_a_windows_1256_feed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    folder = tmp_path / "outlets" / "wpsite"
    folder.mkdir(parents=True)
    for name, content in WPSITE.items():
        text = yaml.safe_dump(content, allow_unicode=True) if isinstance(content, dict) else content
        (folder / name).write_text(text, encoding="utf-8")
    with ReplayServer(tmp_path / "outlets") as srv:
        data = replay_config(srv, tmp_path / "v.db", sitemap_max_age_days=30, timeout=SAFE_TIMEOUT)
        result = crawl(srv, write_config(tmp_path / "config.yaml", data))
        base = srv.base("wpsite")
    assert result.code == 0
    paths = result.paths("wpsite")
    assert "/post-sitemap.xml" in paths and any(p.startswith("/wp-json/") for p in paths)
    assert not [p for p in paths if p.startswith(("/brouillon/", "/2020/"))]  # robots, too old
    db = Database(data["database"]["url"])
    with db.transaction() as s:
        stored = {a.url: a for a in s.scalars(select(Article))}
    routes = [p for p in WPSITE["routes.yaml"] if p.startswith("/2025/")]  # type: ignore[union-attr]
    assert set(stored) == {canonical_url(base + p) for p in routes}
    arabic = stored[canonical_url(base + routes[2])]
    assert arabic.title.startswith("الأمن الوطني") and AR[1][:40] in arabic.text
    db.dispose()


# ---------------------------------------------------------------- extraction workers


def test_a_big_run_hands_extraction_to_worker_processes(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    from datetime import UTC, datetime

    import veille.crawler.pipelines as pipelines
    from veille.crawler.spiders.context import OutletTally
    from veille.pipeline.config import config_from_dict
    from veille.pipeline.types import RawPage

    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.setattr(pipelines, "POOL_AFTER_PAGES", 1)
    routes = yaml.safe_load((FIXTURE_OUTLETS / "bladi" / "routes.yaml").read_text(encoding="utf-8"))
    base = "http://127.0.0.1:1"
    pages = [RawPage(base + a, base + a, "bladi", 200, {"content-type": "text/html; charset=utf-8"},
                     (FIXTURE_OUTLETS / "bladi" / routes[a]["file"]).read_bytes()
                     .replace(b"{{BASE}}", base.encode()), datetime.now(UTC), "fr")
             for a in _articles()]
    cfg = config_from_dict({"database": {"url": f"sqlite:///{tmp_path / 'v.db'}"},
                            "outlets": [{"name": "bladi", "url": base + "/", "language": "fr"}]})
    db = Database(cfg.database.url)
    processor = pipelines.PageProcessor(db, cfg, workers=2)
    tally = OutletTally("bladi")

    async def handle_all() -> None:
        await processor.handle(pages[0], tally)  # in this process; starts the pool
        while not all(f.done() for f in processor._warming):
            await asyncio.sleep(0.05)
        await asyncio.gather(*(processor.handle(p, tally) for p in pages[1:]))

    try:
        asyncio.run(handle_all())
        assert processor.pool is not None  # the workers did the rest, and did not break
    finally:
        processor.close()
        db.dispose()
    assert tally.counts.failed == 0
    assert tally.counts.new + tally.counts.updated + tally.counts.skipped == len(pages)


# ---------------------------------------------------------------- conditional GET state


def test_validators_serve_for_a_day_and_are_dropped_when_a_source_was_cut_short(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from veille.crawler.spiders.context import CrawlContext, OutletTally
    from veille.pipeline.config import config_from_dict
    from veille.storage.models import FeedState

    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    cfg = config_from_dict({"database": {"url": f"sqlite:///{tmp_path / 'v.db'}"}})
    db = Database(cfg.database.url)
    ctx = CrawlContext(cfg, db)
    feed, modified = "https://www.example.ma/feed", "Mon, 01 Jan 2024 00:00:00 GMT"

    def after_run(etag: str, *, full: bool, dirty: bool = False, finished: bool = True) -> dict[str, str]:
        tally = OutletTally("x")
        tally.validators[feed] = (etag, modified, full)
        if dirty:
            tally.dirty.add(feed)
        ctx.save_validators(tally, finished=finished)
        return ctx.conditional_headers(feed)

    assert ctx.conditional_headers(feed) == {}
    assert after_run('"a"', full=True) == {"If-None-Match": '"a"', "If-Modified-Since": modified}
    with db.transaction() as s:  # a day later the stored validators are not trusted
        s.execute(update(FeedState).values(last_full_fetch=datetime.now(UTC) - timedelta(hours=25)))
    assert ctx.conditional_headers(feed) == {}
    assert after_run('"b"', full=True) == {"If-None-Match": '"b"', "If-Modified-Since": modified}
    assert after_run('"c"', full=False, dirty=True) == {}  # entries left: ask for 200 next time
    assert after_run('"d"', full=True) != {}
    assert after_run('"e"', full=False, finished=False) == {}  # interrupted run: same
    db.dispose()
