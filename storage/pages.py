"""Outlets, pages (what was fetched and what became of it) and feeds' validators.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from veille.storage.models import FeedState, Outlet, Page
from veille.storage.page_path import PageRecord, record_pages
from veille.storage.timestamps import utcnow


def ensure_outlet(session: Session, name: str, url: str = "", language: str | None = None) -> int:
    """Return the outlet's id, creating or refreshing its row."""
    row = session.scalar(select(Outlet).where(Outlet.name == name))
    if row is None:
        row = Outlet(name=name, url=url, language=language)
        session.add(row)
        session.flush()
    elif url and (row.url != url or row.language != language):
        row.url, row.language = url, language
    return row.id


def outlets_with_pages(session: Session, names: Iterable[str]) -> set[str]:
    """Those of these outlets that have a page stored: the others are crawled for the
    first time (one index probe per outlet)."""
    stmt = select(Outlet.name).where(Outlet.name.in_(list(names)), exists().where(Page.outlet_id == Outlet.id))
    return set(session.scalars(stmt))


def settled_urls(session: Session, urls: Iterable[str]) -> set[str]:
    """Those of `urls` already fetched and settled (article, folded duplicate or skipped)."""
    wanted = list(dict.fromkeys(urls))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        found.update(session.scalars(select(Page.url).where(Page.url.in_(chunk))))
    return found


def record_page(
    session: Session,
    url: str,
    outlet_id: int,
    kind: str,
    article_id: int | None = None,
    reason: str | None = None,
    content_hash: str | None = None,
) -> None:
    """Insert or refresh the page row of `url` (`page_path.record_pages`, one upsert)."""
    record_pages(session, [PageRecord(url, outlet_id, kind, article_id, reason, content_hash)])


def page_content_hash(session: Session, url: str) -> tuple[str | None, int | None]:
    """(hash of the text last processed at this URL, its article id), or (None, None)."""
    row = session.execute(select(Page.content_hash, Page.article_id).where(Page.url == url)).first()
    return (row[0], row[1]) if row else (None, None)


@dataclass(frozen=True)
class Validators:
    etag: str | None
    last_modified: str | None
    last_full_fetch: datetime | None


def feed_validators(session: Session, url: str) -> Validators | None:
    row = session.scalar(select(FeedState).where(FeedState.url == url))
    if row is None:
        return None
    return Validators(row.etag, row.last_modified, row.last_full_fetch)


def save_feed_validators(
    session: Session,
    url: str,
    etag: str | None,
    last_modified: str | None,
    *,
    full_fetch: bool,
) -> None:
    """Remember a feed's validators; `full_fetch` marks an unconditional 200 answer."""
    now = utcnow()
    row = session.scalar(select(FeedState).where(FeedState.url == url))
    if row is None:
        row = FeedState(url=url)
        session.add(row)
    if etag is not None or full_fetch:
        row.etag = etag
    if last_modified is not None or full_fetch:
        row.last_modified = last_modified
    row.last_fetched = now
    if full_fetch:
        row.last_full_fetch = now

