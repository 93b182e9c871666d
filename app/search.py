"""Archive search: `veille search`, the web view's search box, and keeping the index fresh.

The index (storage.search) holds every article's title and text folded as the classifier
folds them (pipeline.search_text). `refresh_index` brings it up to date incrementally;
it runs after every crawl (`index_after_crawl`) and at the start of `veille search`. The web
view only reads: it calls `run_search`, which never writes.

The first refresh of an archive stored before the index existed (schema 0006) folds every
article: minutes at 100k articles. It says so, with the count, before it starts; `veille
search --reindex` (`reindex_command`) does it on its own, so the next crawl does not.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from veille.pipeline.search_text import document_text, query_text
from veille.storage import search as search_store
from veille.storage.db import Database, StorageError, describe
from veille.storage.search import IndexDoc, StoryHit
from veille.storage.views import list_stories

log = logging.getLogger(__name__)

BATCH = 500  # articles folded and written per transaction
# How far before the newest indexed `updated_at` a refresh looks again: an article's
# `updated_at` is stamped before its transaction commits, and distributed workers'
# clocks differ, so a write can land "in the past"; what is already indexed at its
# version is skipped, so looking back costs one index range read.
OVERLAP = timedelta(hours=1)


class SearchError(Exception):
    """A query with nothing to search for, worded for the user."""


def refresh_index(db: Database, *, batch: int = BATCH) -> int:
    """Index the articles stored or changed since the last refresh; return how many.

    Reads the articles updated since the index's newest `updated_at` (less `OVERLAP`;
    all of them the first time, after migration 0006) whose version the index does not
    hold, oldest update first. One transaction per batch, so a long back-fill never
    holds the database, and one that is killed resumes where it stopped: what it
    indexed is exactly what was updated before its newest `updated_at`.
    """
    with db.transaction() as s:
        mark = search_store.index_watermark(s)
        backlog = search_store.article_count(s) if mark is None else 0
    if backlog > batch:  # a back-fill: say how big before it starts
        log.info("search index: indexing %d articles stored before it existed, once "
                 "(`veille search --reindex` does it outside a crawl)", backlog, extra={"to_index": backlog})
    since = mark - OVERLAP if mark is not None else None
    done = 0
    while True:
        with db.transaction() as s:
            rows = search_store.articles_to_index(s, since=since, limit=batch)
            search_store.write_search_docs(s, [
                IndexDoc(r.id, r.versions, r.updated_at, document_text(r.title, r.text))
                for r in rows])
        done += len(rows)
        if len(rows) < batch:
            break
        since = rows[-1].updated_at
    if done:
        log.info("search index: %d articles indexed", done, extra={"indexed": done})
    return done


def index_after_crawl(url: str) -> None:
    """After a crawl (`veille crawl`, a distributed worker, `veille demo`): index what it
    stored. A failure is logged, never fails the crawl: the next refresh catches up."""
    try:
        db = Database(url)
    except StorageError as exc:
        log.warning("search index not refreshed: %s", exc)
        return
    try:
        _refresh_or_warn(db)
    finally:
        db.dispose()


def _refresh_or_warn(db: Database) -> None:
    """Refresh; a database that refuses the write (a read-only role or file) is searched
    as its index stands, with a warning."""
    try:
        refresh_index(db)
    except SQLAlchemyError as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        log.warning("search index not refreshed: %s", lines[0] if lines else type(exc).__name__)


def reindex_command(db: Database, console: Console | None = None) -> int:
    """`veille search --reindex`: bring the index up to date now (after an upgrade, the
    back-fill a crawl would otherwise do at its end); returns the articles indexed.
    Unlike a search, a database that refuses the write fails (StorageError)."""
    try:
        done = refresh_index(db)
    except SQLAlchemyError as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StorageError(f"{describe(db.url)}: search index not refreshed: "
                           f"{lines[0] if lines else type(exc).__name__}") from None
    (console or Console(stderr=True)).print(
        f"search index: {done} article(s) indexed" if done else "search index: up to date")
    return done


def run_search(db: Database, query: str, *, topic: str | None = None,
               since: datetime | None = None, limit: int = 50) -> list[StoryHit]:
    """Search the archive; read-only (the web view calls it).

    Args:
        db: the database.
        query: as a user types it: words (all must match), "quoted phrases"; folded like
            the classifier (case, accents, Arabic letter variants and clitics).
        topic: only stories flagged for this topic.
        since: only stories published (else first seen) since then.
        limit: at most this many stories.

    Returns:
        `storage.search.StoryHit`s, newest first: `id`, `title`, `published` (at the
        offset its page stated, or None), `first_seen`, `rank` (higher is better;
        comparable within one search only) and `articles`, the matching articles best
        first, each an `ArticleHit`: `id`, `url`, `outlet`, `title`, `language`,
        `published`, `rank`. Empty when the query has nothing searchable in it.
    """
    folded = query_text(query)
    if not folded:
        return []
    with db.transaction() as s:
        return search_store.search_stories(
            s, folded, topics=[topic] if topic else None, since=since, limit=limit)


def search_command(db: Database, query: str, *, topic: str | None, since: datetime | None,
                   limit: int, as_json: bool, console: Console | None = None) -> None:
    """`veille search`: refresh the index, search, print a table or JSON."""
    if not query_text(query):
        raise SearchError(f"{query!r} has no words to search for")
    _refresh_or_warn(db)
    hits = run_search(db, query, topic=topic, since=since, limit=limit)
    if as_json:
        print(json.dumps(search_json(db, hits), ensure_ascii=False, indent=2))
        return
    print_hits(hits, query, console or Console())


def search_json(db: Database, hits: list[StoryHit]) -> list[dict[str, Any]]:
    """Each story as `veille stories --json` has it, plus `rank` and `matches` (the
    matching articles, with their ids)."""
    with db.transaction() as s:
        views = {v.id: v for v in list_stories(s, story_ids=[h.id for h in hits])}
    return [{**views[h.id].as_json(), "rank": h.rank,
             "matches": [a.as_json() for a in h.articles]}
            for h in hits if h.id in views]


def print_hits(hits: list[StoryHit], query: str, console: Console) -> None:
    if not hits:
        console.print(escape(f"No story matches {query!r}."))
        return
    table = Table(title=escape(f"{len(hits)} stories matching {query!r}"), show_lines=True)
    table.add_column("id", justify="right")
    table.add_column("published")
    table.add_column("story")
    table.add_column("matching articles")
    for h in hits:
        when = (h.published or h.first_seen).strftime("%Y-%m-%d")
        found = "\n".join(f"{escape(a.outlet)} ({a.language or '?'}): {escape(a.title)}\n"
                          f"[dim]{escape(a.url)}[/]" for a in h.articles)
        table.add_row(str(h.id), when, escape(h.title), found)
    console.print(table)
