"""An outlet's template learnt in the database: evidence grows page by page, survives the
process, and a replay outlet whose template sits inside the article node comes out clean.

Real SQLite files (and PostgreSQL when installed, via `db_url`), real pages from the replay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.conftest import FIXTURE_OUTLETS, repo_topics
from veille.pipeline import learn
from veille.pipeline.config import config_from_dict
from veille.pipeline.process import Processor
from veille.pipeline.template import MIN_PAGES, fingerprint, line_key
from veille.pipeline.types import Article, RawPage
from veille.storage import templates as st
from veille.storage.db import Database
from veille.storage.models import Article as ArticleRow
from veille.storage.models import TemplateLine, TopicMatchRow

OUTLET = "chamalpress"
TOPIC = "maroc-france-securite"
FOLLOW = "Chamal Press — l’actualité du Nord, sans détour"
N = 4  # pages of one language before its next page comes out clean (a teaser needs 3 earlier carriers)


def _article(i: int, *extra: str) -> Article:
    text = "\n".join([f"Paragraphe propre à l’article numéro {i}, assez long pour être du texte "
                      f"et jamais un gabarit, avec un détail qui n’appartient qu’à lui : {i * 7}.",
                      *extra])
    return Article(url=f"https://c.example/a/{i}", outlet=OUTLET, title=f"Un titre d’article numéro {i}",
                   text=text, published=datetime(2025, 9, 1, tzinfo=UTC) + timedelta(days=i),
                   author=None, site_name=None, language="fr")


def _page(art: Article) -> RawPage:
    return RawPage(url=art.url, final_url=art.url, outlet=OUTLET, status=200, headers={}, body=b"",
                   fetched_at=datetime(2025, 12, 1, tzinfo=UTC), language_hint="fr")


def _processor(url: str) -> Processor:
    cfg = config_from_dict({"database": {"url": url}, "outlets": [
        {"name": OUTLET, "url": "https://c.example/", "language": "fr"}], "topics": repo_topics()})
    return Processor(Database(url), cfg)


def test_evidence_grows_with_each_page_and_is_read_back(db_url: str) -> None:
    proc = _processor(db_url)
    for i in range(MIN_PAGES + 1):
        outcome = proc.store(_page(a := _article(i, FOLLOW)), a)
        assert outcome.kind == "new"
        stored = proc.db.transaction
        with stored() as s:
            text = s.scalars(select(ArticleRow.text).where(ArticleRow.url == a.url)).one()
        assert (FOLLOW in text) == (i < MIN_PAGES)  # never on fewer pages' evidence
    proc.store(_page(a := _article(0, FOLLOW)), a)  # the same page again: not a new vote
    key = fingerprint(line_key(FOLLOW))
    with proc.db.transaction() as s:
        row = s.scalars(select(TemplateLine).where(TemplateLine.fingerprint == key)).one()
        assert (row.pages, row.since) == (MIN_PAGES + 1, 0)
    again = learn.template_of(Database(db_url), OUTLET)  # another process, later
    assert again.pages == MIN_PAGES + 1 and again.lines[key] == (MIN_PAGES + 1, 0)
    assert line_key(_article(2).title) in again.titles


def test_old_lines_are_pruned(db_url: str) -> None:
    proc = _processor(db_url)
    for i in range(MIN_PAGES):
        proc.store(_page(a := _article(i, FOLLOW)), a)
    later = datetime.now(UTC) + timedelta(days=st.PRUNE_DAYS + 1)
    with proc.db.transaction() as s:
        assert st.prune_lines(s, OUTLET, later) > 0
        assert not s.scalars(select(TemplateLine)).all()


def test_an_outlet_keeps_its_most_carried_lines(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = _processor(db_url)
    for i in range(3):
        proc.store(_page(a := _article(i, FOLLOW, *(["Ligne courante"] if i else []))), a)
    monkeypatch.setattr(st, "MAX_LINES", 2)
    with proc.db.transaction() as s:
        assert st.prune_lines(s, OUTLET, datetime.now(UTC)) == 3  # 5 rows: the 3 carried by one page go
        kept = {r.fingerprint: r.pages for r in s.scalars(select(TemplateLine))}
    assert kept == {fingerprint(line_key(FOLLOW)): 3, fingerprint(line_key("Ligne courante")): 2}


# --------------------------------------------------------------------------- the replay outlet


def _expected() -> list[dict[str, Any]]:
    data = yaml.safe_load((FIXTURE_OUTLETS / OUTLET / "expected.yaml").read_text(encoding="utf-8"))
    return sorted(data["articles"], key=lambda a: (str(a["published"]), a["path"]))


def _replayed(item: dict[str, Any]) -> RawPage:
    routes = yaml.safe_load((FIXTURE_OUTLETS / OUTLET / "routes.yaml").read_text(encoding="utf-8"))
    base = "http://127.0.0.1:8000"
    body = (FIXTURE_OUTLETS / OUTLET / routes[item["path"]]["file"]).read_text(encoding="utf-8")
    return RawPage(url=base + item["path"], final_url=base + item["path"], outlet=OUTLET, status=200,
                   headers={"content-type": "text/html; charset=utf-8"},
                   body=body.replace("{{BASE}}", base).encode(), fetched_at=datetime(2025, 11, 20, tzinfo=UTC),
                   language_hint="fr")


@pytest.fixture()
def replayed(tmp_path: Path) -> tuple[Processor, list[dict[str, Any]], dict[str, ArticleRow], set[str]]:
    """The outlet's pages processed one by one in publication order, then the story pass."""
    proc, items, texts = _processor(f"sqlite:///{tmp_path / 'v.db'}"), _expected(), {}
    for item in items:
        outcome = proc.process(page := _replayed(item))
        assert outcome.kind == "new", (item["path"], outcome)
        with proc.db.transaction() as s:
            texts[item["path"]] = s.scalars(select(ArticleRow.text).where(ArticleRow.url == page.url)).one()
    proc.settle()
    with proc.db.transaction() as s:
        rows = {r.url.removeprefix("http://127.0.0.1:8000"): r for r in s.scalars(select(ArticleRow))}
        flagged = set(s.scalars(select(ArticleRow.url).join(TopicMatchRow).where(TopicMatchRow.topic == TOPIC)))
    return proc, items, {**{p: r.text for p, r in rows.items()}, **{f"first:{p}": t for p, t in texts.items()}}, \
        {u.removeprefix("http://127.0.0.1:8000") for u in flagged}


def _learnable(items: list[dict[str, Any]]) -> set[str]:
    """Template lines the outlet's pages can teach: on more than one page, or another
    article's headline. A teaser's standfirst shown on a single page cannot be told from
    text by its outlet's pages (a known limit: it stays)."""
    carried: dict[str, int] = {}
    for item in items:
        for line in item["template"]:
            carried[line] = carried.get(line, 0) + 1
    titles = {i["title"] for i in items}
    return {line for line, n in carried.items() if n > 1 or line in titles}


def test_the_outlet_comes_out_clean_after_its_first_pages(replayed: Any) -> None:
    _, items, texts, _ = replayed
    learnable = _learnable(items)
    assert len(learnable) >= len({t for i in items for t in i["template"]}) - 2  # one per language
    seen: dict[str, int] = {}
    for item in items:
        first = texts[f"first:{item['path']}"]  # as stored when the page arrived
        left = [line for line in item["template"] if line in first and line in learnable]
        if seen.get(item["language"], 0) >= N:
            assert not left, (item["path"], left)
        seen[item["language"]] = seen.get(item["language"], 0) + 1
        for sentence in item["keep"]:
            assert sentence in texts[item["path"]]


def test_after_the_story_pass_no_page_keeps_its_template(replayed: Any) -> None:
    _, items, texts, _ = replayed
    learnable = _learnable(items)
    left = {item["path"]: [t for t in item["template"] if t in texts[item["path"]] and t in learnable]
            for item in items}
    assert not {p: lines for p, lines in left.items() if lines}


def test_the_brief_is_flagged_and_the_related_block_is_not(replayed: Any) -> None:
    _, items, texts, flagged = replayed
    assert flagged == {i["path"] for i in items if i["on_topic"]}
    brief = next(i for i in items if i["event"] == "E8")
    assert 150 <= len(texts[brief["path"]]) <= 400  # stored as the brief it is, template gone
    notice = next(i for i in items if "recrutement" in i["path"])
    assert notice["path"] not in flagged and "DGSI" not in texts[notice["path"]]


def test_veille_extract_shows_the_template_lines_and_why(replayed: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.conftest import write_config
    from veille.cli import main

    proc, items, _, _ = replayed
    notice = next(i for i in items if "recrutement" in i["path"])
    page = tmp_path / "notice.html"
    page.write_bytes(_replayed(notice).body)
    cfg = write_config(tmp_path / "c.yaml", {
        "database": {"url": proc.db.url},
        "outlets": [{"name": OUTLET, "url": "http://127.0.0.1:8000/", "language": "fr"}],
        "topics": repo_topics()})

    def run(outlet: str) -> dict[str, Any]:
        capsys.readouterr()
        assert main(["extract", str(page), "--json", "--outlet", outlet, "--config", str(cfg),
                     "--url", "http://127.0.0.1:8000" + notice["path"]]) == 0
        return dict(json.loads(capsys.readouterr().out))

    learnt, generic = run(OUTLET), run("cli")  # "cli": no evidence, generic rules only
    reasons = {d["line"]: d["reason"] for d in learnt["template"]}
    assert reasons["Chamal Press — l’actualité du Nord, sans détour"].startswith("recurs on ")
    assert reasons["Tanger Med bat son record mensuel de conteneurs"] == "title of another article of this outlet"
    assert reasons["Suivez-nous sur Google News pour ne rien manquer de l’actualité du Nord."] == "generic: follow line"
    assert not learnt["topics"] and "Les plus lus" not in learnt["text"]
    assert {d["reason"] for d in generic["template"]} <= {
        "generic: follow line", "generic: newsletter line",
        "generic: heading of a related or most-read list", "generic: listed under 'Les plus lus cette semaine'",
        "generic: listed under 'Sujets associés :'"}
    assert "Chamal Press — l’actualité du Nord, sans détour" in generic["text"]


def test_stripping_again_rewrites_all_that_follows_from_the_text(db_url: str) -> None:
    """The articles stored before a line was known to be template lose it when the run's
    evidence is complete (`Processor.restrip`), and everything stored from their text
    follows: hash, MinHash and its LSH bands, story features, topic matches. The others
    are left as they were."""
    from veille.pipeline.dedup import band_keys
    from veille.pipeline.prepare import prepare
    from veille.storage.models import ArticleBand

    proc = _processor(db_url)
    extra = (FOLLOW, TEASER)
    for i in range(MIN_PAGES + 2):
        proc.store(_page(a := _article(i, *extra)), a)
    with proc.db.transaction() as s:
        before = {r.id: (r.text, r.content_hash) for r in s.scalars(select(ArticleRow).order_by(ArticleRow.id))}
        flagged_before = set(s.scalars(select(TopicMatchRow.article_id)))
    assert proc.restrip() == MIN_PAGES
    with proc.db.transaction() as s:
        rows = list(s.scalars(select(ArticleRow).order_by(ArticleRow.id)))
        topics = {(m.article_id, m.topic, m.score) for m in s.scalars(select(TopicMatchRow))}
        bands = {(b.article_id, b.band) for b in s.scalars(select(ArticleBand))}
        restripped = {r.id for r in rows if r.text != before[r.id][0]}
        assert len(restripped) == MIN_PAGES and all(FOLLOW not in r.text and TEASER not in r.text for r in rows)
        assert proc.changed == restripped
        for r in rows:
            prep = prepare(Article(r.url, OUTLET, r.title, r.text, r.published_stated, r.author, r.site_name,
                                   r.language, r.final_url), proc.topics)
            assert (r.content_hash, r.minhash, r.features) == (prep.content_hash, prep.signature_bytes,
                                                               list(prep.features))
            assert {(t, sc) for a, t, sc in topics if a == r.id} == {(m.topic, m.score) for m in prep.matches}
            assert {b for a, b in bands if a == r.id} == set(band_keys(prep.signature))
    assert flagged_before >= restripped and not {a for a, _, _ in topics} & restripped  # the teaser flagged them
    assert proc.restrip() == 0  # nothing learnt since


TEASER = "Hammouchi reçoit le directeur de la DGSI : la coopération sécuritaire Maroc–France"


def test_a_text_stripped_again_is_searched_as_stripped(db_url: str) -> None:
    """The search index, refreshed after the articles were stored, folds their text again
    once the template is stripped from it: the outlet's footer then finds none of them."""
    from veille.search import refresh_index, run_search

    proc = _processor(db_url)
    for i in range(MIN_PAGES + 2):
        proc.store(_page(a := _article(i, FOLLOW)), a)
    assert refresh_index(proc.db) == MIN_PAGES + 2  # the first MIN_PAGES with the footer
    proc.settle()  # strips them again, places all in stories
    assert refresh_index(proc.db) == MIN_PAGES
    assert run_search(proc.db, "Chamal Press") == []
    found = {a.title for h in run_search(proc.db, "paragraphe propre") for a in h.articles}
    assert found == {f"Un titre d’article numéro {i}" for i in range(MIN_PAGES + 2)}


def test_stored_line_counts_are_read_back_for_any_number_of_lines(db_url: str) -> None:
    """A page's few lines (one statement of a fixed length, padded) or many (in chunks):
    the stored (fingerprint, pages, since) of those stored, nothing for the others."""
    db = Database(db_url)
    now = datetime.now(UTC)
    stored = [f"{i:016x}" for i in range(700)]
    with db.transaction() as s:
        from veille.storage.pages import ensure_outlet

        outlet_id = ensure_outlet(s, OUTLET)
        st.record_lines(s, outlet_id, stored[:400], now)
        st.record_lines(s, outlet_id, stored[200:700:2], now)
    twice = set(stored[200:700:2])
    expected = {fp: ((i < 400) + (fp in twice), 0 if i < 400 else 1) for i, fp in enumerate(stored)
                if i < 400 or fp in twice}
    unknown = [f"{i:016x}" for i in range(10_000, 10_600)]
    with db.transaction() as s:
        for n in (0, 1, 15, 16, 17, 600):
            asked = stored[390 : 390 + n] + unknown[:n]
            got = st.line_counts(s, OUTLET, asked)
            assert sorted(got) == sorted((fp, *expected[fp]) for fp in stored[390 : 390 + n] if fp in expected), n
        assert st.line_counts(s, "another-outlet", stored[:3]) == []
