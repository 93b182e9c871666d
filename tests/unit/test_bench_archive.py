"""bench/archive.py builds a consistent archive through the storage models, small and fast."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.archive import BuildStats, build, make_pool
from veille.pipeline.dedup import band_keys, signature_from_bytes
from veille.pipeline.process import INDEX_DAYS
from veille.storage import duplicates
from veille.storage.db import Database

END = datetime(2025, 6, 1, 12, tzinfo=UTC)
SPAN = timedelta(days=40)  # longer than the duplicate index's window


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildStats]:
    tmp = tmp_path_factory.mktemp("archive")
    pool = make_pool(80, seed=3, cache=tmp / "pool.pickle")
    db = tmp / "a.db"
    stats = build(f"sqlite:///{db}", 600, pool=pool, end=END, span=SPAN)
    return db, stats


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_counts_match_what_build_reports(archive: tuple[Path, BuildStats]) -> None:
    db, stats = archive
    assert stats.articles == 600 == _rows(db, "select count(*) from articles")[0][0]
    assert stats.stories == _rows(db, "select count(*) from stories")[0][0]
    assert stats.originals + stats.copies == 600 and stats.copies > 0 and stats.updated > 0
    assert stats.pages == _rows(db, "select count(*) from pages")[0][0]
    kinds = dict(_rows(db, "select kind, count(*) from pages group by kind"))
    assert kinds["article"] == 600 and kinds["duplicate"] == stats.new_url_updates and kinds["skipped"] > 0
    assert stats.crawl_runs == _rows(db, "select count(*) from crawl_runs where kind = 'crawl'")[0][0] == 40 * 48 - 1
    assert stats.outlet_runs == 6 * stats.crawl_runs
    assert 0 < stats.topic_matches < 600
    assert stats.digests > 0 and stats.digest_articles >= stats.digest_items > 0


def test_stories_copies_and_dates_hang_together(archive: tuple[Path, BuildStats]) -> None:
    db, _ = archive
    sizes = Counter(n for (n,) in _rows(db, "select count(*) from articles group by story_id"))
    assert min(sizes) >= 1 and max(sizes) <= 8 and sizes[1] > sizes[4]
    bad = _rows(db, "select c.id from articles c join articles o on o.id = c.duplicate_of_id "
                    "where c.story_id != o.story_id or o.duplicate_of_id is not null or coalesce(c.features, 'null') != 'null'")
    assert bad == []
    assert _rows(db, "select count(*) from articles where duplicate_of_id is null and coalesce(features, 'null') = 'null'")[0][0] == 0
    assert _rows(db, "select count(*) from articles where published > first_seen or first_seen > updated_at")[0][0] == 0
    first, last = _rows(db, "select min(first_seen), max(first_seen) from articles")[0]
    assert first[:19] >= "2025-04-22 12:00:00" and last[:19] <= "2025-06-01 12:00:00"  # the span before END
    # every mailed article's story was mailed in the same digest
    assert _rows(db, "select count(*) from digest_articles da left join digest_items di on "
                     "di.digest_id = da.digest_id and di.story_id = da.story_id where di.id is null")[0][0] == 0


def test_signatures_decode_and_originals_differ(archive: tuple[Path, BuildStats]) -> None:
    db, _ = archive
    rows = _rows(db, "select minhash from articles where duplicate_of_id is null")
    sigs = [signature_from_bytes(m) for (m,) in rows]
    assert all(s.num_perm == 128 and s.size > 0 for s in sigs)
    assert len({s.hashvalues.tobytes() for s in sigs}) == len(sigs)  # no two originals alike
    hashes = _rows(db, "select count(distinct content_hash), count(*) from articles where duplicate_of_id is null")[0]
    assert hashes[0] == hashes[1]


def test_duplicate_index_and_births_are_as_crawls_leave_them(archive: tuple[Path, BuildStats]) -> None:
    """The originals of the index's window carry the pipeline's band keys, nothing else
    does, and every story is born when its first original was published: a crawl after
    the build has nothing to back-fill."""
    db, stats = archive
    since = (END - timedelta(days=INDEX_DAYS)).strftime("%Y-%m-%d %H:%M:%S")
    window = dict(_rows(db, "select id, minhash from articles where duplicate_of_id is null "
                            f"and first_seen >= '{since}'"))
    assert 0 < len(window) < stats.originals  # the archive reaches back past the window
    stored: dict[int, set[int]] = {}
    for band, article in _rows(db, "select band, article_id from article_bands"):
        stored.setdefault(article, set()).add(band)
    assert stored == {i: set(band_keys(signature_from_bytes(m))) for i, m in window.items()}
    assert stats.bands == sum(len(b) for b in stored.values())
    database = Database(f"sqlite:///{db}")
    try:
        with database.transaction() as s:
            assert duplicates.unindexed(s, END - timedelta(days=INDEX_DAYS)) == []
    finally:
        database.dispose()
    wrong = _rows(db, "select s.id from stories s where s.born is null or s.born != (select min(a.published) "
                      "from articles a where a.story_id = s.id and a.duplicate_of_id is null)")
    assert wrong == []


def test_specs_name_history_apart_from_size() -> None:
    from bench.archive import Spec, parse_specs

    assert parse_specs("10000, 1000000@10y,100000@2") == (Spec(10_000), Spec(1_000_000, 10), Spec(100_000, 2))
    assert Spec(100_000, 10).label == "100000-10y" and Spec(100_000).label == "100000"
    assert Spec(5, 3).span == timedelta(days=3 * 365)


def _result(n: int, years: int, crawl: float) -> Any:
    from bench.archive import SizeResult

    return SizeResult(n, "sqlite", {}, values={"crawl_wall": crawl, "settle": crawl / 10}, years=years)


def test_a_longer_history_is_compared_with_the_same_daily_volume() -> None:
    from bench.archive import entries_from, figures_from, merge_entries
    from bench.report import archive_markdown

    entries = entries_from([_result(10_000, 1, 4.0), _result(100_000, 1, 6.0), _result(100_000, 10, 4.4)])
    long = next(e for e in entries if e["years"] == 10)
    assert long["per_day"] == round(100_000 / 3650, 1)
    assert long["crawl_wall_ratio"] == 1.1  # against the 10k archive of one year, as every entry
    assert long["history_baseline_articles"] == 10_000 and long["crawl_wall_history_ratio"] == 1.1
    short = next(e for e in entries if e["articles"] == 100_000 and e["years"] == 1)
    assert "history_baseline_articles" not in short and short["crawl_wall_ratio"] == 1.5
    names = [f.name for f in figures_from(entries)]
    assert "sqlite 100,000 over 10 years: crawl wall, against the same daily volume over 1 year" in names
    merged = merge_entries(entries, [e for e in entries if e["years"] == 1])
    assert sorted((e["articles"], e["years"]) for e in merged) == [(10_000, 1), (100_000, 1), (100_000, 10)]
    table = archive_markdown({"archive": entries})
    row = next(line for line in table.splitlines() if "over 10 years" in line)
    assert "against 10,000 over 1 year" in row and "4.40 s (×1.10 of 4.00 s)" in row


def test_a_long_history_reaches_its_end(tmp_path: Path) -> None:
    """The last weeks of a ten-year archive hold their share of articles (the routine
    crawl's story pass reads them): stories are placed by the articles made, so the
    drift of drawn story sizes does not leave the end empty."""
    pool = make_pool(80, seed=3, cache=tmp_path / "pool.pickle")
    db = tmp_path / "long.db"
    n, span = 3000, timedelta(days=3650)
    build(f"sqlite:///{db}", n, pool=pool, end=END, span=span)
    last_year = _rows(db, f"select count(*) from articles where published >= '{END - timedelta(days=365):%Y-%m-%d}'")
    last_month = _rows(db, f"select count(*) from articles where published >= '{END - timedelta(days=30):%Y-%m-%d}'")
    assert 0.08 * n <= last_year[0][0] <= 0.12 * n
    assert last_month[0][0] >= 0.5 * n * 30 / 3650
