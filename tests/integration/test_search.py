"""Archive search on SQLite (FTS5) and PostgreSQL (tsvector + GIN): folding in three
languages, stories grouped, filters, phrases, the incremental index, the 0006 upgrade,
`veille search` and a re-crawl that changes an article's words."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, text

from tests.conftest import repo_topics, without_env_overrides
from veille.cli import main
from veille.search import refresh_index, run_search
from veille.storage import search as search_store
from veille.storage.db import Database
from veille.storage.models import Article, Outlet, Story, TopicMatchRow

DAY = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


def _outlet(s: Any, name: str, language: str) -> int:
    oid = s.scalar(select(Outlet.id).where(Outlet.name == name))
    if oid is None:
        row = Outlet(name=name, url=f"https://{name}.example/", language=language)
        s.add(row)
        s.flush()
        oid = row.id
    return int(oid)


def add_story(db: Database, title: str, articles: list[tuple[str, str, str, str]], *,
              published: datetime = DAY, topic: str | None = None) -> tuple[int, list[int]]:
    """A story with its articles: (outlet, language, title, text) each; returns the ids."""
    with db.transaction() as s:
        story = Story(title=title, published=published, first_seen=published, last_seen=published)
        s.add(story)
        s.flush()
        ids = []
        for n, (outlet, language, a_title, body) in enumerate(articles):
            url = f"https://{outlet}.example/{story.id}-{n}"
            row = Article(url=url, outlet_id=_outlet(s, outlet, language), story_id=story.id,
                          title=a_title, text=body, language=language, published=published,
                          content_hash=url, first_seen=published)
            if topic:
                row.topics.append(TopicMatchRow(topic=topic, score=5.0, matched=[]))
            s.add(row)
            s.flush()
            ids.append(row.id)
        return story.id, ids


def found(db: Database, query: str, **kw: Any) -> list[int]:
    return [h.id for h in run_search(db, query, **kw)]


# ---------------------------------------------------------------- three languages


@pytest.fixture
def archive(db: Database) -> dict[str, int]:
    stories = {
        "fr": add_story(db, "Hammouchi reçu à Paris", [
            ("bladi", "fr", "Abdellatif HAMMOUCHI reçu à Paris",
             "Le directeur général de la Sûreté nationale a évoqué la sécurité des Jeux."),
        ], topic="maroc-france-securite")[0],
        "ar": add_story(db, "حموشي في باريس", [
            ("hespress", "ar", "حموشي يستقبل وفدا فرنسيا",
             "أكدت المديرية العامة للأمن الوطني والمديرية العامة لمراقبة التراب الوطني "
             "أن التعاون بين المغرب وفرنسا يتعزز في مجال مكافحة الإرهاب."),
        ], published=DAY - timedelta(days=30))[0],
        "en": add_story(db, "Moroccan officers in France", [
            ("mwn", "en", "Moroccan police officers deployed for the Olympics",
             "The General Directorate for National Security sent dog handlers to Paris."),
        ], published=DAY - timedelta(days=60))[0],
    }
    assert refresh_index(db) == 3
    return stories


@pytest.mark.parametrize("query", ["securite", "SÉCURITÉ", "Sécurité", "hammouchi", "Hammouchi",
                                   "HAMMOUCHI", "surete nationale", "recu"])
def test_french_folds_case_and_accents(db: Database, archive: dict[str, int], query: str) -> None:
    assert found(db, query) == [archive["fr"]]


@pytest.mark.parametrize("query", [
    "المديريه العامه للامن الوطني",  # ta marbuta as ha, bare alef
    "مديرية عامة أمن وطني",  # without the article and its clitics
    "الأمن",  # found in للأمن
    "فرنسا",  # found in وفرنسا (bare proclitic)
    "الارهاب",
    '"التراب الوطني"',
])
def test_arabic_folds_letter_variants_and_clitics(db: Database, archive: dict[str, int],
                                                  query: str) -> None:
    assert found(db, query) == [archive["ar"]]


@pytest.mark.parametrize("query, expected", [
    ("moroccan police", ["en"]),
    ("Dog Handlers", ["en"]),
    ("paris", ["fr", "en"]),  # newest first
    ("olympics zanzibar", []),  # every word must match
])
def test_english_and_every_word_must_match(db: Database, archive: dict[str, int], query: str,
                                           expected: list[str]) -> None:
    assert found(db, query) == [archive[k] for k in expected]


def test_a_phrase_matches_its_words_in_order_only(db: Database) -> None:
    together, _ = add_story(db, "a", [("bladi", "fr", "La Sûreté nationale recrute", "")])
    apart, _ = add_story(db, "b", [("bladi", "fr", "Nationale : la sûreté du port", "")],
                         published=DAY - timedelta(days=1))
    refresh_index(db)
    assert found(db, "sûreté nationale") == [together, apart]
    assert found(db, '"sûreté nationale"') == [together]
    assert found(db, '"surete nationale" port') == []


def test_articles_of_one_story_are_one_result_best_first(db: Database) -> None:
    sid, (once, twice) = add_story(db, "Berthon à Rabat", [
        ("le360", "fr", "Céline Berthon à Rabat", "La DGSI et la DGST."),
        ("bladi", "fr", "Berthon reçue à Rabat", "Berthon rencontre Hammouchi. Berthon et la DGSI."),
    ])
    other, _ = add_story(db, "Autre", [("bladi", "fr", "Rien à voir", "La DGSI recrute.")],
                         published=DAY - timedelta(days=2))
    refresh_index(db)
    hits = run_search(db, "Berthon")
    assert [h.id for h in hits] == [sid]
    (hit,) = hits
    assert [a.id for a in hit.articles] == [twice, once]  # more mentions rank higher
    assert hit.rank == max(a.rank for a in hit.articles) > 0
    assert {a.outlet for a in hit.articles} == {"le360", "bladi"}
    assert hit.articles[0].url == f"https://bladi.example/{sid}-1"
    assert (hit.title, hit.published, hit.articles[0].language) == ("Berthon à Rabat", DAY, "fr")
    assert [h.id for h in run_search(db, "dgsi")] == [sid, other]
    assert [h.id for h in run_search(db, "dgsi", limit=1)] == [sid]


def test_topic_and_since_filter(db: Database, archive: dict[str, int]) -> None:
    assert found(db, "paris") == [archive["fr"], archive["en"]]
    assert found(db, "paris", topic="maroc-france-securite") == [archive["fr"]]
    assert found(db, "paris", topic="another") == []
    assert found(db, "paris", since=DAY - timedelta(days=1)) == [archive["fr"]]
    assert found(db, "paris", since=DAY - timedelta(days=90)) == [archive["fr"], archive["en"]]


def test_an_updated_article_is_found_by_its_new_words_only(db: Database) -> None:
    sid, (aid,) = add_story(db, "t", [("bladi", "fr", "Visite à Tanger", "Un fugitif arrêté à Tanger.")])
    refresh_index(db)
    assert found(db, "fugitif") == [sid]
    with db.transaction() as s:
        row = s.get(Article, aid)
        assert row is not None
        row.text, row.versions, row.updated_at = "Extradé vers la France.", row.versions + 1, datetime.now(UTC)
    assert found(db, "extrade") == []  # the web view reads the index as it is
    assert refresh_index(db) == 1
    assert found(db, "extrade") == [sid]
    assert found(db, "fugitif") == []
    assert found(db, "tanger") == [sid]  # the title still says it
    assert refresh_index(db) == 0  # nothing changed since


def test_refresh_pages_through_batches(db: Database) -> None:
    """Refreshes page by update time: each article once, a killed back-fill resumes."""
    sids = [add_story(db, f"s{i}", [("bladi", "fr", f"Titre {i}", "Commun à tous.")],
                      published=DAY - timedelta(days=i))[0] for i in range(5)]
    assert refresh_index(db, batch=2) == 5
    assert found(db, "commun") == sids
    more = [add_story(db, f"m{i}", [("bladi", "fr", f"Autre {i}", "Commun à tous.")],
                      published=DAY + timedelta(days=1 + i))[0] for i in range(3)]
    assert refresh_index(db, batch=2) == 3
    assert found(db, "commun") == more[::-1] + sids
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(search_store.search_docs)) == 8


def test_a_killed_back_fill_resumes_where_it_stopped(db: Database) -> None:
    """Articles are indexed oldest update first, so what a killed refresh wrote is what
    was updated before its newest mark: the next refresh finds everything else, even an
    early article updated late."""
    from veille.pipeline.search_text import document_text
    from veille.storage.search import IndexDoc

    made = [add_story(db, f"s{i}", [("bladi", "fr", f"Titre {i}", "Commun à tous.")])
            for i in range(6)]
    ids = [aids[0] for _sid, aids in made]
    with db.transaction() as s:  # the first article was updated a month later, the others in order
        for n, aid in enumerate(ids):
            row = s.get(Article, aid)
            assert row is not None
            row.updated_at = DAY + (timedelta(days=30) if n == 0 else timedelta(hours=n))
    with db.transaction() as s:  # one batch of a back-fill, then the process dies
        rows = search_store.articles_to_index(s, since=None, limit=2)
        search_store.write_search_docs(s, [IndexDoc(r.id, r.versions, r.updated_at,
                                                    document_text(r.title, r.text)) for r in rows])
    assert [r.id for r in rows] == ids[1:3]
    assert refresh_index(db, batch=2) == 4
    assert sorted(found(db, "commun")) == sorted(sid for sid, _ in made)


def test_a_back_fill_says_how_many_articles_before_it_starts(db: Database,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The first refresh of an archive from before the index folds every article: it
    says how many first (a crawl that ends with it must not look hung); later refreshes,
    and a first one of a batch or less, say nothing before."""
    for i in range(5):
        add_story(db, f"s{i}", [("bladi", "fr", f"Titre {i}", "Commun à tous.")])
    with caplog.at_level(logging.INFO, logger="veille.search"):
        assert refresh_index(db, batch=2) == 5
    said = [r.getMessage() for r in caplog.records if r.name == "veille.search"]
    assert said[0].startswith("search index: indexing 5 articles stored before it existed")
    assert "veille search --reindex" in said[0] and said[-1] == "search index: 5 articles indexed"
    caplog.clear()
    add_story(db, "m", [("bladi", "fr", "Autre", "Commun à tous.")])
    with caplog.at_level(logging.INFO, logger="veille.search"):
        assert refresh_index(db, batch=2) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "veille.search"] == [
        "search index: 1 articles indexed"]


def test_a_query_with_nothing_to_search_finds_nothing(db: Database, archive: dict[str, int]) -> None:
    assert found(db, "  ?! ") == []
    assert found(db, 'and OR "NOT" near') == []  # FTS5 / tsquery operators are plain words


@pytest.mark.parametrize("filters", [{}, {"topics": ["maroc-france-securite"], "since": DAY}])
def test_the_search_is_bounded_by_its_indexes(db: Database, archive: dict[str, int],
                                              filters: dict[str, Any]) -> None:
    """No full scan: the FTS5 index (SQLite) or the GIN index (PostgreSQL; or, with a topic,
    the topic's index) drives it, every other table is reached by key."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt = search_store.search_statement(db.backend, ["paris", "surete nationale"],
                                         topics=filters.get("topics"), since=filters.get("since"),
                                         limit=10)
    with db.transaction() as s:
        if db.backend == "sqlite":
            sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            plan = [r[-1] for r in s.execute(text("EXPLAIN QUERY PLAN " + sql))]
            scans = [p for p in plan if p.startswith("SCAN") and "VIRTUAL TABLE" not in p
                     and p.split()[1] not in {"hits", "top"}]  # the CTEs: at most HIT_CAP rows
            assert any("search_fts VIRTUAL TABLE" in p for p in plan), plan
        else:
            sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            s.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: show what it can use
            plan = [r[0] for r in s.execute(text("EXPLAIN " + sql))]
            scans = [p for p in plan if "Seq Scan" in p]
            driver = "ix_topic_matches_topic" if filters else "ix_search_docs_folded"
            assert any(driver in p for p in plan), "\n".join(plan)
        assert scans == [], "\n".join(plan)
        assert search_store.articles_to_index(s, since=None) == []
        assert search_store.articles_to_index(s, since=DAY) == []


def test_the_indexer_reads_by_update_time(tmp_path: Path) -> None:
    """A refresh reads the articles through `ix_articles_updated_at` (from its start on
    the first refresh, from the watermark later) and the index by key. SQLite only: its
    plan does not depend on statistics, PostgreSQL's does (the search's own plan is
    checked on both above)."""
    from sqlalchemy import event

    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    with db.transaction() as s:
        conn = s.connection()
        for since in (None, DAY):
            sent: list[tuple[str, Any]] = []

            def grab(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
                sent.append((statement, params))  # noqa: B023 - used before the loop moves on

            event.listen(conn, "before_cursor_execute", grab)
            search_store.articles_to_index(s, since=since)
            event.remove(conn, "before_cursor_execute", grab)
            (statement, params), = sent
            plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
            assert "ix_articles_updated_at" in plan and "TEMP B-TREE" not in plan, plan
            assert "SCAN d" not in plan and "SCAN search_docs" not in plan, plan
    db.dispose()


# ---------------------------------------------------------------- the 0006 upgrade


def test_a_0005_database_upgrades_and_its_first_refresh_finds_old_articles(db_url: str) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import insert

    from veille.storage.db import alembic_config, current_revision, include_name, make_engine
    from veille.storage.models import Base

    engine = make_engine(db_url)
    t = Base.metadata.tables
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.execute(insert(t["outlets"]).values(id=1, name="hespress", url=""))
        conn.execute(insert(t["stories"]).values(id=1, title="حموشي"))
        conn.execute(insert(t["articles"]).values([
            {"id": 1, "url": "https://h/1", "outlet_id": 1, "story_id": 1, "title": "حموشي",
             "text": "المديرية العامة للأمن الوطني", "content_hash": "1"},
            {"id": 2, "url": "https://h/2", "outlet_id": 1, "story_id": 1, "title": "Hammouchi",
             "text": "La Sûreté nationale", "content_hash": "2"},
        ]))
        command.upgrade(cfg, "0006")
        assert conn.execute(select(func.count()).select_from(search_store.search_docs)).scalar() == 0
    engine.dispose()
    db = Database(db_url)  # and on to the newest revision
    try:
        assert current_revision(db.engine) >= "0006"
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(
                conn, opts={"include_name": include_name}), Base.metadata) == []
        assert found(db, "surete") == []  # created empty: folding is pipeline's
        assert refresh_index(db) == 2
        (hit,) = run_search(db, "للامن")
        assert [a.id for a in hit.articles] == [1]
        assert [a.id for a in run_search(db, "SURETE")[0].articles] == [2]
    finally:
        db.dispose()


def test_the_0006_downgrade_drops_the_index(db_url: str) -> None:
    from alembic import command

    from veille.storage.db import alembic_config, table_names

    db = Database(db_url)
    with db.engine.begin() as conn:
        cfg = alembic_config(db.engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    assert not [n for n in table_names(db.engine) if n.startswith("search_")]
    db.dispose()
    db = Database(db_url)  # and up again
    assert "search_docs" in table_names(db.engine)
    db.dispose()


# ---------------------------------------------------------------- veille search


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": url}, "topics": repo_topics()},
                                   allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Database, Path]:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    url = f"sqlite:///{tmp_path / 'v.db'}"
    return Database(url), _config(tmp_path, url)


def test_cli_search_refreshes_then_prints_stories(cli_db: tuple[Database, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db, cfg = cli_db
    topic = repo_topics()[0]["name"]
    sid, ids = add_story(db, "Hammouchi [reçu] à Paris", [
        ("le360", "fr", "Hammouchi reçu à Paris", "La Sûreté nationale."),
        ("hespress", "ar", "حموشي في باريس", "المديرية العامة للأمن الوطني"),
    ], topic=topic)
    add_story(db, "Autre", [("bladi", "fr", "Sans rapport", "Rien.")])
    # not refreshed: `veille search` indexes what was stored before it searches
    assert main(["search", "hammouchi", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "Hammouchi [reçu] à Paris" in out and f"https://le360.example/{sid}-0" in out
    assert "Sans rapport" not in out

    assert main(["search", "باريس", "--json", "--topic", topic, "--since", "2025-03-01",
                 "--config", str(cfg)]) == 0
    (story,) = json.loads(capsys.readouterr().out)
    assert story["id"] == sid and story["title"] == "Hammouchi [reçu] à Paris"
    assert {"first_seen", "published", "topics", "articles"} <= set(story)  # as `veille stories --json`
    assert [t["name"] for t in story["topics"]] == [topic]
    assert len(story["articles"]) == 2
    assert [(m["id"], m["url"], m["language"]) for m in story["matches"]] == [
        (ids[1], f"https://hespress.example/{sid}-1", "ar")]
    assert story["rank"] > 0

    assert main(["search", "باريس", "--json", "--since", "2025-04-01", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["search", "zanzibar", "--config", str(cfg)]) == 0
    assert "No story matches 'zanzibar'" in capsys.readouterr().out


def test_cli_search_on_a_read_only_database_searches_the_index_as_it_stands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # a URI is no folder to create: none appears where veille runs
    path = tmp_path / "v.db"
    db = Database(f"sqlite:///{path}")
    indexed, _ = add_story(db, "Indexé", [("bladi", "fr", "Hammouchi à Rabat", "")])
    refresh_index(db)
    add_story(db, "Pas encore", [("bladi", "fr", "Hammouchi à Tanger", "")])
    db.dispose()
    cfg = _config(tmp_path, f"sqlite:///file:{path}?mode=ro&uri=true")
    assert main(["search", "hammouchi", "--json", "--config", str(cfg), "--log-format", "text"]) == 0
    out = capsys.readouterr()
    assert [st["id"] for st in json.loads(out.out)] == [indexed]
    assert "search index not refreshed: attempt to write a readonly database" in out.err
    assert not (tmp_path / "file:").exists()


def test_cli_reindex_brings_the_index_up_to_date_without_a_query(cli_db: tuple[Database, Path],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    db, cfg = cli_db
    sid, _ = add_story(db, "Hammouchi à Paris", [("le360", "fr", "Hammouchi reçu à Paris", "La Sûreté.")])
    add_story(db, "Autre", [("bladi", "fr", "Sans rapport", "Rien.")])
    assert main(["search", "--reindex", "--config", str(cfg)]) == 0
    assert "search index: 2 article(s) indexed" in capsys.readouterr().err
    assert found(db, "hammouchi") == [sid]  # indexed, with no search run to refresh it
    assert main(["search", "--reindex", "hammouchi", "--json", "--config", str(cfg)]) == 0
    out = capsys.readouterr()
    assert "search index: up to date" in out.err and [st["id"] for st in json.loads(out.out)] == [sid]


@pytest.mark.parametrize("argv, message", [
    ([], "a QUERY is needed (or --reindex)"),
    (["!!"], "'!!' has no words to search for"),
    (["x", "--topic", "nope"], "no topic named 'nope'"),
])
def test_cli_search_bad_input_is_one_line(cli_db: tuple[Database, Path], capsys: pytest.CaptureFixture[str],
                                          argv: list[str], message: str) -> None:
    _db, cfg = cli_db
    assert main(["search", *argv, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("veille: error: ") and message in err and err.count("\n") == 1


def test_cli_search_limit_is_a_positive_number(cli_db: tuple[Database, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's usage line, as `veille stories --limit 0`
        main(["search", "x", "--limit", "0", "--config", str(cli_db[1])])
    assert exited.value.code == 2
    assert "--limit: '0' is not a positive whole number" in capsys.readouterr().err


# ---------------------------------------------------------------- a re-crawl changes the words

SENTENCES = [
    "La Direction générale de la Sûreté nationale a annoncé mardi l'arrestation à Tanger "
    "d'un ressortissant étranger recherché par la justice de son pays.",
    "L'homme, âgé de trente-huit ans, faisait l'objet d'une notice rouge diffusée par "
    "Interpol pour trafic international de stupéfiants.",
    "Il a été interpellé près du port par les éléments de la police judiciaire de la "
    "ville, en coordination avec les services de renseignement.",
    "Les enquêteurs ont saisi plusieurs téléphones, des documents d'identité et une "
    "somme d'argent dont l'origine reste à établir.",
    "Le suspect a été placé en garde à vue sous la supervision du parquet compétent, "
    "en attendant la suite de la procédure.",
    "Selon un communiqué, cette opération s'inscrit dans le cadre de la coopération "
    "policière internationale menée par les services marocains.",
    "Les autorités judiciaires étudieront dans les prochains jours la demande "
    "présentée par les autorités de son pays d'origine.",
    "La police rappelle que plusieurs arrestations de ce type ont eu lieu depuis le "
    "début de l'année dans différentes villes du Royaume.",
]
OLD_WORDS = "Le dossier a été transmis au juge de permanence, indique la gendarmerie."
NEW_WORDS = "Le dossier a été transmis à la chambre criminelle, qui ordonne l'extradition."


def _page(base_title: str, published: str, closing: str) -> str:
    body = "".join(f"<p>{s}</p>\n" for s in [*SENTENCES, closing])
    return (f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{base_title}</title>'
            f'<meta property="og:title" content="{base_title}">'
            f'<meta property="og:type" content="article">'
            f'<meta property="article:published_time" content="{published}"></head>'
            f"<body><article><h1>{base_title}</h1><time datetime=\"{published}\">{published}</time>"
            f"\n{body}</article></body></html>")


def _feed(items: list[tuple[str, str, str]]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{{{{BASE}}}}{path}</link>"
        f"<guid>{{{{BASE}}}}{path}</guid><pubDate>{date}</pubDate></item>"
        for path, title, date in items)
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Tangerinfo</title><link>{{{{BASE}}}}/</link>{entries}</channel></rss>")


FIRST = ("/tanger-arrestation,1.html", "Tanger : un fugitif arrêté", "Tue, 11 Feb 2025 10:00:00 GMT")
UPDATE = ("/tanger-arrestation-maj,2.html", "Tanger : un fugitif arrêté", "Tue, 11 Feb 2025 18:00:00 GMT")


def _outlet_folder(root: Path) -> Path:
    folder = root / "tangerinfo"
    folder.mkdir(parents=True)
    (folder / "outlet.yaml").write_text(yaml.safe_dump({
        "name": "tangerinfo", "url": "{{BASE}}/", "language": "fr",
        "feeds": ["{{BASE}}/feed.xml"], "sitemaps": [], "sections": [],
        "article_pattern": r"/[a-z-]+,[0-9]+\.html$"}), encoding="utf-8")
    (folder / "routes.yaml").write_text(yaml.safe_dump({
        "/robots.txt": {"file": "robots.txt", "type": "text/plain"},
        "/feed.xml": {"file": "feed.xml", "type": "application/rss+xml"},
        FIRST[0]: {"file": "first.html"}, UPDATE[0]: {"file": "update.html"}}), encoding="utf-8")
    (folder / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    (folder / "first.html").write_text(_page(FIRST[1], "2025-02-11T10:00:00+01:00", OLD_WORDS), encoding="utf-8")
    (folder / "update.html").write_text(_page(UPDATE[1], "2025-02-11T18:00:00+01:00", NEW_WORDS), encoding="utf-8")
    (folder / "feed.xml").write_text(_feed([FIRST]), encoding="utf-8")
    return folder


def _crawl(cfg: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "veille.cli", "crawl", "--config", str(cfg)],
                          env=without_env_overrides(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_recrawl_that_updates_an_article_moves_its_words(tmp_path: Path) -> None:
    """The outlet publishes an update of its article under a new URL: the crawl folds it
    into the stored article, and the crawl's own refresh re-indexes it."""
    from tests.conftest import TEST_CRAWL
    from veille.crawler.replay import ReplayServer

    folder = _outlet_folder(tmp_path / "outlets")
    url = f"sqlite:///{tmp_path / 'v.db'}"
    with ReplayServer(folder.parent) as srv:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump({
            "database": {"url": url}, "crawl": TEST_CRAWL, "outlets": srv.outlet_configs(),
            "topics": repo_topics()}, allow_unicode=True), encoding="utf-8")
        _crawl(cfg)
        db = Database(url)
        assert len(found(db, "gendarmerie permanence")) == 1  # indexed by the crawl itself
        assert found(db, "extradition") == []
        (folder / "feed.xml").write_text(_feed([UPDATE, FIRST]), encoding="utf-8")
        _crawl(cfg)
    with db.transaction() as s:
        (row,) = s.scalars(select(Article)).all()
        assert row.versions == 2 and "extradition" in row.text  # one article, updated
    (hit,) = run_search(db, "chambre criminelle extradition")
    assert [a.id for a in hit.articles] == [row.id]
    assert found(db, "gendarmerie") == [] and found(db, "permanence") == []
    db.dispose()
