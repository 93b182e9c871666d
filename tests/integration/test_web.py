"""`veille serve` end to end: uvicorn on 127.0.0.1 in a thread, a SQLite database filled
through the storage models, and Debian's headless Chromium driven by selenium.

The database holds a French story (three outlets and a copy), an Arabic one, one whose
title carries `<script>` and `<b>`, one older than the default week and one flagged for
no topic. The checks read what a reader sees (order, timeline, right-to-left, escaped
text), what a feed reader parses (feedparser), and the JSON the CLI prints.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
import yaml
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ROOT, without_env_overrides
from veille.cli import main
from veille.pipeline.config import Config, config_from_dict
from veille.search import refresh_index
from veille.storage import pages as page_store
from veille.storage.db import Database
from veille.storage.models import Article, Story, TopicMatchRow
from veille.web import create_app
from veille.web_auth import Secrets
from veille.web_server import bind, serving_in_thread

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
TOPIC = "maroc-france-securite"
TOKEN, PASSWORD = "team-token-5b1f", "mot-de-passe"
HOSTILE = "<script>alert(1)</script> <b>Extradition</b> d'un suspect vers la France"
WAIT_S = 20

STORIES: dict[str, dict[str, Any]] = {
    "untracked": {"title": "Vague de chaleur attendue dans le Souss", "hours": 1, "topic": None,
                  "articles": [("hespress-fr", "fr")], "text": "La météo annonce des températures élevées."},
    "fr": {"title": "Hammouchi reçoit le directeur de la DGSI à Rabat", "hours": 2,
           "articles": [("le360", "fr"), ("hespress-fr", "fr"), ("bladi", "fr")],
           "text": "Le directeur général de la DGSN, Abdellatif Hammouchi, a reçu mardi à Rabat le "
                   "directeur de la DGSI française pour passer en revue la coopération sécuritaire.",
           "matched": [{"term": "hammouchi", "field": "title", "count": 1},
                       {"term": "dgsi", "field": "text", "count": 2}]},
    "ar": {"title": "تعاون أمني بين المغرب وفرنسا لمواجهة الإرهاب", "hours": 5,
           "articles": [("hespress", "ar"), ("alyaoum24", "ar")],
           "text": "أكدت المديرية العامة للأمن الوطني أن التعاون الأمني بين المغرب وفرنسا مكن من "
                   "تفكيك خلية إرهابية كانت تخطط لتنفيذ عمليات في البلدين.",
           "matched": [{"term": "فرنسا", "field": "title", "count": 1}]},
    "html": {"title": HOSTILE, "hours": 8, "articles": [("h24info", "fr")],
             "text": "Un ressortissant recherché par la justice française a été extradé vers Paris."},
    "old": {"title": "Ancienne affaire de coopération judiciaire", "hours": 24 * 10,
            "articles": [("le360", "fr")], "text": "Une affaire ancienne."},
}


def add_story(db: Database, spec: dict[str, Any], now: datetime) -> int:
    """One story, one article per outlet (a minute apart), the topic match on each."""
    seen = now - timedelta(hours=spec["hours"])
    with db.transaction() as s:
        story = Story(title=spec["title"], first_seen=seen, last_seen=seen, published=seen, features=[])
        s.add(story)
        s.flush()
        for i, (outlet, lang) in enumerate(spec["articles"]):
            art = Article(url=f"https://{outlet}.example/{story.id}/{i}", title=spec["title"],
                          text=spec["text"], language=lang, content_hash=f"{story.id}-{i}",
                          outlet_id=page_store.ensure_outlet(s, outlet, f"https://{outlet}.example/", lang),
                          story_id=story.id, published=seen, first_seen=seen + timedelta(minutes=i))
            if spec.get("topic", TOPIC):
                art.topics.append(TopicMatchRow(topic=TOPIC, score=6.5, matched=spec.get("matched", [])))
            s.add(art)
        return story.id


def add_article(db: Database, story_id: int, outlet: str, lang: str, seen: datetime,
                copy_of: int | None = None) -> int:
    with db.transaction() as s:
        story = s.get(Story, story_id)
        assert story is not None
        art = Article(url=f"https://{outlet}.example/{story_id}/{seen.timestamp()}", title=story.title,
                      text="Reprise de la dépêche.", language=lang, content_hash=f"{outlet}-{seen}",
                      outlet_id=page_store.ensure_outlet(s, outlet, f"https://{outlet}.example/", lang),
                      story_id=story_id, published=seen, first_seen=seen, duplicate_of_id=copy_of)
        s.add(art)
        s.flush()
        return art.id


def first_article(db: Database, story_id: int) -> int:
    with db.transaction() as s:
        story = s.get(Story, story_id)
        assert story is not None
        return min(a.id for a in story.articles)


@dataclass
class Site:
    url: str
    db: Database
    cfg: Config
    config_file: Path
    ids: dict[str, int]


def make_site(tmp: Path) -> tuple[Database, Config, Path, dict[str, int]]:
    data = {"database": {"url": f"sqlite:///{tmp / 'veille.db'}"},
            "topics": [{"name": TOPIC, "label": "Coopération sécuritaire Maroc–France",
                        "require": [["maroc"], ["france"]]}],
            "schedule": {"timezone": "Africa/Casablanca"}}
    config_file = tmp / "config.yaml"
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    cfg = config_from_dict(data, source=str(config_file), environ={})
    db = Database(cfg.database.url)
    now = datetime.now(UTC)
    ids = {key: add_story(db, spec, now) for key, spec in STORIES.items()}
    fr_first = first_article(db, ids["fr"])
    add_article(db, ids["fr"], "mapexpress", "fr", now - timedelta(minutes=90), copy_of=fr_first)
    refresh_index(db)  # what a crawl does after storing; the web view only reads it
    return db, cfg, config_file, ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VEILLE_DATABASE_URL", raising=False)
        mp.delenv("VEILLE_CONFIG", raising=False)
        db, cfg, config_file, ids = make_site(tmp_path_factory.mktemp("web"))
        with serving_in_thread(create_app(cfg, db)) as url:
            yield Site(url, db, cfg, config_file, ids)
        db.dispose()


@pytest.fixture(scope="module")
def guarded(site: Site) -> Iterator[str]:
    """The same database behind a token and a password."""
    with serving_in_thread(create_app(site.cfg, site.db, secrets=Secrets(TOKEN, PASSWORD))) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver "
                    "(.ci/run does); the web view is tested in a real browser", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1100,1400",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, css: str) -> list[WebElement]:
    WebDriverWait(driver, WAIT_S).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    return driver.find_elements(By.CSS_SELECTOR, css)


def direction(driver: WebDriver, element: WebElement) -> str:
    return str(driver.execute_script("return getComputedStyle(arguments[0]).direction", element))


def listed(driver: WebDriver) -> list[int]:
    return [int(str(li.get_attribute("data-story"))) for li in wait_for(driver, "li.story")]


# ---------------------------------------------------------------- the browser


def test_the_list_shows_tracked_stories_of_the_week_newest_first(site: Site, browser: WebDriver) -> None:
    browser.get(site.url + "/")
    ids = site.ids
    assert listed(browser) == [ids["fr"], ids["ar"], ids["html"]]
    assert "Coopération sécuritaire Maroc–France" in browser.find_element(By.CSS_SELECTOR, "li.story").text
    browser.find_element(By.ID, "older").click()  # nothing older this week: look further back
    WebDriverWait(browser, WAIT_S).until(ec.url_contains("days=28"))
    assert listed(browser) == [ids["fr"], ids["ar"], ids["html"], ids["old"]]
    browser.get(site.url + "/?all=1")
    assert listed(browser) == [ids["untracked"], ids["fr"], ids["ar"], ids["html"]]
    browser.get(site.url + "/?language=ar")
    assert listed(browser) == [ids["ar"]]


def test_the_story_page_shows_its_timeline_reasons_and_copies(site: Site, browser: WebDriver) -> None:
    browser.get(site.url + "/")
    wait_for(browser, f"li.story[data-story='{site.ids['fr']}'] a.story-title")[0].click()
    rows = wait_for(browser, "#timeline tbody tr")
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [c[1] for c in cells] == ["le360", "hespress-fr", "bladi", "mapexpress"]  # as they joined
    assert all(c[3] == "fr" for c in cells)
    assert "a reçu mardi à Rabat" in cells[0][4]  # the excerpt
    link = rows[0].find_element(By.CSS_SELECTOR, ".entry-title a")
    assert link.get_attribute("href") == f"https://le360.example/{site.ids['fr']}/0"
    assert "copy of le360" in cells[3][4]
    assert "mapexpress" in browser.find_element(By.ID, "copies").text
    reason = browser.find_element(By.CSS_SELECTOR, ".reason").text
    assert "Coopération sécuritaire Maroc–France" in reason and "hammouchi" in reason and "6.5" in reason


def test_an_arabic_story_reads_right_to_left(site: Site, browser: WebDriver) -> None:
    browser.get(site.url + "/")
    title = wait_for(browser, f"li.story[data-story='{site.ids['ar']}'] a.story-title")[0]
    french = browser.find_element(By.CSS_SELECTOR, f"li.story[data-story='{site.ids['fr']}'] a.story-title")
    assert direction(browser, title) == "rtl" and title.get_attribute("lang") == "ar"
    assert direction(browser, french) == "ltr"
    title.click()
    heading = wait_for(browser, "h1#story-title")[0]
    assert heading.text == STORIES["ar"]["title"] and direction(browser, heading) == "rtl"
    excerpts = browser.find_elements(By.CSS_SELECTOR, "#timeline .excerpt")
    assert excerpts and all(direction(browser, e) == "rtl" for e in excerpts)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"


def test_a_title_carrying_html_shows_as_text(site: Site, browser: WebDriver) -> None:
    for path in ("/", f"/stories/{site.ids['html']}"):
        browser.get(site.url + path)
        css = (f"li.story[data-story='{site.ids['html']}'] a.story-title" if path == "/"
               else "h1#story-title")
        title = wait_for(browser, css)[0]
        assert title.text == HOSTILE  # the literal characters, visible
        assert title.find_elements(By.CSS_SELECTOR, "*") == []  # no <b>, no <script> element
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.dismiss()


def test_search_in_french_and_arabic(site: Site, browser: WebDriver) -> None:
    for query, expected in (("DGSI hammouchi", site.ids["fr"]), ("الارهاب", site.ids["ar"]),
                            ("extrade", site.ids["html"]), ("sahara", None)):
        browser.get(site.url + f"/stories/{site.ids['old']}")  # the box is on every page
        box = wait_for(browser, "header input[name=q]")[0]
        box.send_keys(query)
        box.submit()
        WebDriverWait(browser, WAIT_S).until(ec.url_contains("/search?q="))
        if expected is None:
            assert wait_for(browser, "#no-results")
            continue
        assert listed(browser) == [expected]
        if expected == site.ids["ar"]:
            title = browser.find_element(By.CSS_SELECTOR, "#results a.story-title")
            assert direction(browser, title) == "rtl"


def test_the_token_is_refused_when_wrong_and_kept_in_a_cookie_when_right(
        guarded: str, site: Site, browser: WebDriver) -> None:
    browser.delete_all_cookies()
    browser.get(guarded + "/?token=wrong")
    body = wait_for(browser, "body")[0].text
    assert body.startswith("veille: unauthorized") and TOKEN not in body
    browser.get(guarded + f"/?token={TOKEN}")
    assert listed(browser)[0] == site.ids["fr"]
    browser.get(guarded + f"/stories/{site.ids['ar']}")  # the cookie carries it on
    assert wait_for(browser, "h1#story-title")[0].text == STORIES["ar"]["title"]
    assert "veille_token" not in str(browser.execute_script("return document.cookie"))  # HttpOnly
    browser.delete_all_cookies()


# ---------------------------------------------------------------- HTTP


def test_secrets_by_header_and_basic_auth(guarded: str) -> None:
    refused = httpx.get(guarded + "/api/stories")
    assert refused.status_code == 401 and refused.text.count("\n") == 1
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(guarded + "/", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(guarded + "/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(guarded + "/outlets", auth=("analyst", PASSWORD)).status_code == 200
    assert httpx.get(guarded + "/outlets", auth=("analyst", "nope")).status_code == 401
    first = httpx.get(guarded + f"/?token={TOKEN}")
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and TOKEN not in cookie
    assert first.headers["cache-control"] == "private, no-store"


def test_only_get_and_head(site: Site) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = httpx.request(method, site.url + "/api/stories")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", method
    head = httpx.head(site.url + "/")
    assert head.status_code == 200 and head.content == b""


def test_pages_forbid_scripts_and_referrers(site: Site) -> None:
    r = httpx.get(site.url + "/")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "script" not in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in r.text.replace("&lt;script", "")


@pytest.mark.parametrize(("path", "status", "line"), [
    ("/?since=hier", 400, "since: 'hier' is not an ISO date/time"),
    ("/?topic=meteo", 400, "topic: no topic named 'meteo'"),
    ("/stories/999999", 404, "no story 999999"),
    ("/stories/99999999999999999999999", 404, "no story 99999999999999999999999"),
    ("/topics/meteo.atom", 404, "no topic named 'meteo'"),
    ("/nowhere", 404, "nothing at /nowhere"),
])
def test_bad_requests_are_one_line_pages(site: Site, path: str, status: int, line: str) -> None:
    r = httpx.get(site.url + path)
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    assert f'<p class="box" id="error">{line}'.replace("'", "&#39;") in r.text
    assert "Traceback" not in r.text


@pytest.mark.parametrize(("path", "status", "error"), [
    ("/api/stories?limit=0", 400, "limit: 0 is not between 1 and 500"),
    ("/api/stories/999999", 404, "no story 999999"),
    ("/api/search?q=", 400, "q: nothing to search for"),
])
def test_api_errors_are_one_json_line(site: Site, path: str, status: int, error: str) -> None:
    r = httpx.get(site.url + path)
    assert (r.status_code, r.json()) == (status, {"error": error})


# ---------------------------------------------------------------- JSON = the CLI's


def cli_json(site: Site, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert main([*args, "--json", "--config", str(site.config_file)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("query", [
    {},
    {"all": "1"},
    {"topic": TOPIC, "limit": "2"},
    {"since": "2000-01-01", "all": "1"},
    {"days": "30"},
])
def test_api_stories_equals_veille_stories_json(site: Site, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, query: dict[str, str]) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    args = [f"--{k}" if k == "all" else f"--{k}={v}" for k, v in query.items()]
    expected = cli_json(site, capsys, "stories", *args)
    got = httpx.get(site.url + "/api/stories", params=query).json()
    assert got == expected and got  # the same stories, fields and order
    one = httpx.get(site.url + f"/api/stories/{expected[0]['id']}").json()
    assert one["timeline"] == expected[0]["timeline"] and one["updated"] == expected[0]["updated"]


def test_api_search_equals_veille_search_json(site: Site, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    for query in ("coopération", "المغرب"):
        expected = cli_json(site, capsys, "search", query)
        got = httpx.get(site.url + "/api/search", params={"q": query}).json()
        assert got == expected and got


# ---------------------------------------------------------------- Atom


def test_a_topic_feed_keeps_ids_and_moves_updated_when_a_story_develops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    db, cfg, _, ids = make_site(tmp_path)
    try:
        with serving_in_thread(create_app(cfg, db)) as url:
            page = httpx.get(url + f"/?topic={TOPIC}").text
            assert f'type="application/atom+xml" title="Coopération sécuritaire Maroc–France" href="/topics/{TOPIC}.atom"' in page
            feed_url = url + f"/topics/{TOPIC}.atom"
            first, again = (feedparser.parse(httpx.get(feed_url).content) for _ in range(2))
            assert not first.bozo, first.get("bozo_exception")
            assert [e.id for e in first.entries] == [e.id for e in again.entries]
            assert len({e.id for e in first.entries}) == 4  # every flagged story, untracked left out
            assert first.entries[0].link == f"{url}/stories/{ids['fr']}"
            old = {e.id: e for e in first.entries}
            add_article(db, ids["ar"], "le360-ar", "ar", datetime.now(UTC))  # the story develops
            after = feedparser.parse(httpx.get(feed_url).content)
            moved = after.entries[0]
            assert moved.link == f"{url}/stories/{ids['ar']}" and moved.id in old
            assert moved.updated_parsed > old[moved.id].updated_parsed
            assert {e.id for e in after.entries} == set(old)
            assert "3 outlets: hespress, alyaoum24, le360-ar" in moved.summary
    finally:
        db.dispose()


# ---------------------------------------------------------------- the command


def test_veille_serve_starts_answers_and_stops_on_sigterm(site: Site) -> None:
    env = {**without_env_overrides(), "VEILLE_WEB_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "veille.cli", "serve", "--port", "0",
                             "--config", str(site.config_file)], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # printed once the socket listens
        assert "read-only on http://127.0.0.1:" in line and "warning" not in line, line
        url = line.split(" on ", 1)[1].split()[0].rstrip("/")
        assert httpx.get(url + "/api/stories", timeout=30).status_code == 401
        r = httpx.get(url + "/api/stories", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert r.status_code == 200 and r.json()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        rest = proc.stderr.read()
        assert "Traceback" not in rest and TOKEN not in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_veille_serve_warns_off_loopback_and_says_why_it_cannot_listen(
        site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VEILLE_WEB_TOKEN", "VEILLE_WEB_PASSWORD", "VEILLE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails, no packet is sent
    assert main(["serve", "--host", "192.0.2.1", "--port", "8080", "--config", str(site.config_file)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("veille: warning: serving on 192.0.2.1 without VEILLE_WEB_TOKEN")
    assert err[-1].startswith("veille: error: cannot listen on 192.0.2.1:8080 (")
    busy = bind("127.0.0.1", 0)
    try:
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--config", str(site.config_file)]) == 1
        err = capsys.readouterr().err.splitlines()
        assert err == [f"veille: error: cannot listen on 127.0.0.1:{port} (Address already in use)"]
    finally:
        busy.close()
    assert main(["serve", "--port", "70000", "--config", str(site.config_file)]) == 2
    assert "--port: 70000 is not a TCP port" in capsys.readouterr().err
