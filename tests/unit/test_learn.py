"""pipeline/learn: an outlet's template evidence, grown page by page in the crawl process.

What it is for: a short line becomes template once MIN_PAGES of the outlet's pages carried
it (and enough of those seen since it first appeared), the snapshot handed to extraction
never changes under a worker, and evidence read back from storage continues exactly where
the process that stored it stopped. hypothesis drives the thresholds over random page
sequences; storage is a SQLite file in tmp_path.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from veille.pipeline import learn
from veille.pipeline.learn import MAX_TITLES, Evidence
from veille.pipeline.template import (
    MIN_PAGES,
    MIN_SHARE,
    MIN_TITLE,
    Template,
    fingerprint,
    line_key,
    strip,
)
from veille.storage import templates as st_templates
from veille.storage.db import Database
from veille.storage.models import Outlet

LINES = [f"Ligne de gabarit numéro {i}" for i in range(5)]
BODY = ("Un paragraphe d’article assez long pour ne jamais être pris pour une ligne de gabarit, "
        "puisqu’il dépasse la longueur qu’une ligne de site peut avoir, et de loin : il raconte "
        "l’événement du jour avec ses détails, ses lieux, ses noms et ses chiffres précis.")

pages_st = st.lists(st.frozensets(st.sampled_from(range(len(LINES)))), max_size=40)


def fps(page: frozenset[int]) -> set[str]:
    return {fingerprint(line_key(LINES[i])) for i in page}


def expected(pages: list[frozenset[int]], before: int = 0) -> dict[str, tuple[int, int]]:
    """Per line: (pages carrying it, pages of the outlet seen before its first one)."""
    out: dict[str, tuple[int, int]] = {}
    for n, page in enumerate(pages):
        for fp in fps(page):
            carried, since = out.get(fp, (0, before + n))
            out[fp] = (carried + 1, since)
    return out


@given(pages_st)
def test_a_line_enters_the_template_on_its_min_pages_th_page(pages: list[frozenset[int]]) -> None:
    ev = Evidence("o")
    for page in pages:
        ev.learn(fps(page), "")
    snap = ev.snapshot()
    assert snap.pages == len(pages)
    assert dict(snap.lines) == {fp: v for fp, v in expected(pages).items() if v[0] >= MIN_PAGES}


@given(pages_st, st.integers(min_value=0, max_value=40))
def test_evidence_read_back_continues_where_it_stopped(pages: list[frozenset[int]], cut: int) -> None:
    """What storage keeps (pages, and every line's count and `since`) is all the process
    needs: a crawl resumed from it ends with the same template as one that never stopped."""
    whole = Evidence("o")
    for page in pages:
        whole.learn(fps(page), "")
    first = Evidence("o")
    for page in pages[:cut]:
        first.learn(fps(page), "")
    stored = [(fp, n, since) for fp, (n, since) in first.counts.items()]
    resumed = Evidence("o", first.pages, stored)
    for page in pages[cut:]:
        resumed.learn(fps(page), "")
    assert resumed.snapshot() == whole.snapshot()


@given(pages_st)
def test_strip_drops_a_line_once_the_evidence_makes_it_template(pages: list[frozenset[int]]) -> None:
    """The thresholds end to end: a page carrying every line loses those carried by at
    least MIN_PAGES earlier pages and MIN_SHARE of the pages seen since they appeared."""
    ev = Evidence("o")
    for page in pages:
        ev.learn(fps(page), "")
    text, dropped = strip("Titre", "\n".join([BODY, *LINES]), ev.snapshot())
    counts = expected(pages)
    template = set()
    for line in LINES:
        carried, since = counts.get(fingerprint(line_key(line)), (0, 0))
        if carried >= MIN_PAGES and carried >= MIN_SHARE * max(len(pages) - since, carried):
            template.add(line)
    assert {d.line for d in dropped} == template
    assert BODY in text and all((line in text) == (line not in template) for line in LINES)


def test_a_snapshot_handed_out_never_changes_and_is_rebuilt_only_after_learning() -> None:
    ev = Evidence("o", pages=5, lines=[(fingerprint(line_key(LINES[0])), MIN_PAGES - 1, 0)])
    before = ev.snapshot()
    assert ev.snapshot() is before  # no change, no rebuild
    ev.learn(fps(frozenset({0})), "Un titre assez long pour être reconnu")
    after = ev.snapshot()
    assert after is not before
    assert before.lines == {} and before.titles == frozenset() and before.pages == 5
    assert after.lines == {fingerprint(line_key(LINES[0])): (MIN_PAGES, 0)} and after.pages == 6
    assert after.titles == {line_key("Un titre assez long pour être reconnu")}


def test_titles_too_short_to_recognise_an_article_by_are_not_kept() -> None:
    short, long_ = "Éditorial", "Tanger Med bat son record mensuel de conteneurs"
    assert len(line_key(short)) < MIN_TITLE <= len(line_key(long_))
    ev = Evidence("o", titles=[short, long_, long_.upper()])
    assert ev.snapshot().titles == {line_key(long_)}  # folded: one key for both spellings


def test_titles_kept_in_memory_are_bounded() -> None:
    ev = Evidence("o", titles=(f"Le titre d’un article numéro {i}" for i in range(MAX_TITLES + 50)))
    assert len(ev.titles) == MAX_TITLES
    ev.learn([], "Un titre de plus, arrivé après tous les autres")
    assert len(ev.titles) == MAX_TITLES


# --------------------------------------------------------------------------- from storage


def _db(tmp_path: Path, now: datetime) -> Database:
    """An outlet whose pages carried LINES[0] on 3 pages long ago and LINES[1] on 3 pages now."""
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    with db.transaction() as s:
        s.add(outlet := Outlet(name="o", url="https://o.example/"))
        s.flush()
        old = now - timedelta(days=st_templates.PRUNE_DAYS + 1)
        for _ in range(MIN_PAGES):
            st_templates.record_lines(s, outlet.id, fps(frozenset({0})), old)
        for _ in range(MIN_PAGES):
            st_templates.record_lines(s, outlet.id, fps(frozenset({1})), now)
    return db


def test_load_prunes_lines_the_outlet_stopped_carrying(tmp_path: Path) -> None:
    now = datetime(2025, 11, 1, tzinfo=UTC)
    db = _db(tmp_path, now)
    ev = learn.load(db, "o", now)
    assert ev.pages == 2 * MIN_PAGES
    assert ev.snapshot().lines == {fingerprint(line_key(LINES[1])): (MIN_PAGES, MIN_PAGES)}
    with db.transaction() as s:  # and the pruned rows are gone from storage, too
        assert len(st_templates.load_evidence(s, "o", now).lines) == 1
    db.dispose()


def test_template_of_reads_without_pruning_and_knows_nothing_without_a_database(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    db = _db(tmp_path, now)
    stored = learn.template_of(db, "o")
    assert set(stored.lines) == fps(frozenset({0, 1}))  # a read for debugging changes nothing
    assert learn.template_of(db, "unknown") == Template("unknown")
    assert learn.template_of(None, "o") == Template("o")
    db.dispose()


@settings(max_examples=30, deadline=None)
@given(pages_st, st.integers(min_value=0, max_value=40))
def test_a_crawl_loads_only_the_template_and_learns_what_loading_every_line_learnt(
        pages: list[frozenset[int]], cut: int) -> None:
    """A crawl resumes from storage holding only the lines already template, reads back
    the others as its pages carry them, and has the same snapshot after every page as
    evidence that was never stored at all."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'v.db'}")
        with db.transaction() as s:
            s.add(outlet := Outlet(name="o", url="https://o.example/"))
            s.flush()
            oid = outlet.id
            for page in pages[:cut]:  # an earlier crawl's pages
                st_templates.record_lines(s, oid, fps(page), now)
        crawl = learn.load(db, "o", now)
        assert all(n >= MIN_PAGES for n, _ in crawl.counts.values())  # no rare line loaded
        never_stored = Evidence("o")
        for page in pages[:cut]:
            never_stored.learn(fps(page), "")
        for page in pages[cut:]:
            with db.transaction() as s:  # the page's transaction records its lines...
                st_templates.record_lines(s, oid, fps(page), now)
            crawl.learn(fps(page), "")  # ...then the crawl learns them
            never_stored.learn(fps(page), "")
            assert crawl.snapshot() == never_stored.snapshot()
        db.dispose()
