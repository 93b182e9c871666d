"""The duplicate index kept in the database (storage.duplicates), through the Processor.

A copy is found by the LSH bands its original left in storage, within the index's
window (first seen INDEX_DAYS ago at most); the bands of what aged out are pruned; a
database from before the bands existed is indexed once by the first crawl that stores.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from tests.conftest import repo_topics
from tests.replay_pages import fixture_articles
from veille.pipeline.config import Config, config_from_dict
from veille.pipeline.process import Processor
from veille.pipeline.types import Article, RawPage
from veille.storage import duplicates as dup_store
from veille.storage.db import Database
from veille.storage.models import Article as ArticleRow
from veille.storage.models import ArticleBand


def _config(url: str) -> Config:
    outlets = [{"name": n, "url": f"https://{n}.example/", "language": "fr"} for n in ("bladi", "hespress")]
    return config_from_dict({"database": {"url": url}, "outlets": outlets, "topics": repo_topics()})


def _original() -> Article:
    return next(a for _, _, a in fixture_articles()
                if isinstance(a, Article) and a.published and len(a.text) > 1500)


def _raw(a: Article) -> RawPage:
    return RawPage(url=a.url, final_url=a.url, outlet=a.outlet, status=200, headers={}, body=b"",
                   fetched_at=datetime.now(UTC))


def _copy(a: Article, n: int) -> Article:
    """Another outlet's copy with a line of its own (another hash: only the bands find it)."""
    return replace(a, url=f"https://hespress.example/copy-{n}", outlet="hespress",
                   text=a.text + f"\n\nLire aussi notre dossier numéro {n}.")


def test_a_copy_is_found_by_its_originals_bands(db_url: str) -> None:
    db = Database(db_url)
    art = replace(_original(), url="https://bladi.example/a", outlet="bladi")
    first = Processor(db, _config(db_url)).store(_raw(art), art)
    assert first.kind == "new"
    with db.transaction() as s:
        assert dup_store.band_count(s, [first.article_id or 0]) > 0
    outcome = Processor(db, _config(db_url)).store(_raw(_copy(art, 1)), _copy(art, 1))  # a later crawl
    assert (outcome.kind, outcome.reason) == ("duplicate", "copy of another outlet's article")
    with db.transaction() as s:
        row = s.get(ArticleRow, outcome.article_id)
        assert row is not None and row.duplicate_of_id == first.article_id
        assert dup_store.band_count(s, [row.id]) == 0  # copies are not indexed
    db.dispose()


def test_what_aged_out_of_the_window_is_neither_found_nor_kept(db_url: str) -> None:
    db = Database(db_url)
    art = replace(_original(), url="https://bladi.example/a", outlet="bladi")
    first = Processor(db, _config(db_url)).store(_raw(art), art)
    with db.transaction() as s:  # first seen 40 days ago
        s.execute(update(ArticleRow).values(first_seen=datetime.now(UTC) - timedelta(days=40)))
    proc = Processor(db, _config(db_url))
    outcome = proc.store(_raw(_copy(art, 2)), _copy(art, 2))
    assert outcome.kind == "new"  # its original is out of the index's reach
    proc.settle()
    with db.transaction() as s:
        assert dup_store.band_count(s, [first.article_id or 0]) == 0  # pruned
        assert dup_store.band_count(s, [outcome.article_id or 0]) > 0
    db.dispose()


def test_a_database_from_before_the_bands_is_indexed_once(db_url: str) -> None:
    db = Database(db_url)
    art = replace(_original(), url="https://bladi.example/a", outlet="bladi")
    first = Processor(db, _config(db_url)).store(_raw(art), art)
    with db.transaction() as s:  # as migration 0007 leaves it: the table is empty
        s.execute(ArticleBand.__table__.delete())  # type: ignore[attr-defined]
    outcome = Processor(db, _config(db_url)).store(_raw(_copy(art, 3)), _copy(art, 3))
    assert outcome.kind == "duplicate"
    with db.transaction() as s:
        assert dup_store.band_count(s, [first.article_id or 0]) > 0
        assert set(s.scalars(select(ArticleBand.article_id))) == {first.article_id}
    db.dispose()


def test_candidates_are_looked_up_by_any_number_of_band_keys(db_url: str) -> None:
    """A page's bands (BANDS keys, the statement compiled once), fewer (two bands that
    collide) or more: each lookup finds the articles sharing a key, first seen in the window."""
    from veille.pipeline import dedup

    assert dup_store.BANDS == dedup.BANDS  # the fixed-length statement fits a page's bands
    db = Database(db_url)
    art = _original()
    first = Processor(db, _config(db_url)).store(_raw(art), art)
    assert first.article_id is not None
    since = datetime.now(UTC) - timedelta(days=1)
    with db.transaction() as s:
        keys = list(s.scalars(select(ArticleBand.band).where(ArticleBand.article_id == first.article_id)))
        assert len(keys) == dedup.BANDS
        others = [k + 1 if k + 1 not in keys else k - 1 for k in keys]  # no article's band
        found = {n: dup_store.candidates(s, ks, since) for n, ks in
                 {"page": keys, "one": keys[:1], "collide": [keys[3], *others[:20], keys[3]],
                  "more": [*others, keys[-1], *[o + 2 for o in others]], "none": others, "empty": []}.items()}
        late = dup_store.candidates(s, keys, datetime.now(UTC) + timedelta(days=1))
    minhash = dedup.signature_bytes(dedup.minhash(art.text))
    assert found == {"page": [(first.article_id, minhash)], "one": [(first.article_id, minhash)],
                     "collide": [(first.article_id, minhash)], "more": [(first.article_id, minhash)],
                     "none": [], "empty": []}
    assert late == []  # first seen before the window


def test_the_fixed_look_up_takes_as_many_keys_as_a_page_has_bands() -> None:
    """storage.duplicates runs a page's look-up with a fixed IN list of BANDS keys (more
    fall back to the expanding IN): it must be the number of bands pipeline.dedup makes."""
    from veille.pipeline.dedup import BANDS

    assert dup_store.BANDS == BANDS
