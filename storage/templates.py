"""Queries of each outlet's template evidence (pipeline.template, pipeline.learn).

One row per (outlet, line fingerprint) with how many of the outlet's pages carried it;
`outlets.template_pages` counts the pages recorded. Written in the transaction that stores
the page's article, so the evidence never counts a page that was rolled back. Bounded:
lines not seen for PRUNE_DAYS go, and an outlet keeps at most MAX_LINES rows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from veille.storage.db import bind_value, fixed_in, run_compiled
from veille.storage.models import Article, Outlet, TemplateLine

PRUNE_DAYS = 60
MAX_LINES = 20_000  # per outlet: the most carried lines are kept
_CHUNK = 500  # fingerprints per IN (...) list
TITLE_DAYS = 60  # headlines of the outlet's articles first seen this recently...
MAX_TITLES = 500  # ...at most this many, newest first


@dataclass(frozen=True)
class Evidence:
    """An outlet's stored evidence: pages counted, (fingerprint, pages, since) rows, titles."""

    pages: int
    lines: list[tuple[str, int, int]]
    titles: list[str]


def load_evidence(session: Session, outlet: str, now: datetime, min_pages: int = 1) -> Evidence:
    """What the outlet's stored pages say about its template (empty for a new outlet):
    the lines carried by `min_pages` pages or more (`ix_template_lines_outlet_pages`;
    a crawl asks for the template's, and looks the others up as its pages carry them)."""
    row = session.execute(select(Outlet.id, Outlet.template_pages).where(Outlet.name == outlet)).first()
    if row is None:
        return Evidence(0, [], [])
    outlet_id, pages = row
    lines = [(fp, n, since) for fp, n, since in session.execute(
        select(TemplateLine.fingerprint, TemplateLine.pages, TemplateLine.since)
        .where(TemplateLine.outlet_id == outlet_id, TemplateLine.pages >= min_pages))]
    titles = list(session.scalars(
        select(Article.title).where(Article.outlet_id == outlet_id,
                                    Article.first_seen >= now - timedelta(days=TITLE_DAYS))
        .order_by(Article.first_seen.desc()).limit(MAX_TITLES)))
    return Evidence(pages, lines, titles)


def line_counts(session: Session, outlet: str, fingerprints: Iterable[str]) -> list[tuple[str, int, int]]:
    """(fingerprint, pages, since) of those of the outlet's lines that are stored, by the
    unique (outlet_id, fingerprint): the rare lines a crawl's pages carried (a crawl asks
    after most pages it stores, for a few lines: a fixed IN list, padded with its last
    line, compiled once and run at the driver level; more lines in chunks of _CHUNK)."""
    out: list[tuple[str, int, int]] = []
    fps = sorted(set(fingerprints))
    conn = session.connection()
    if 0 < len(fps) <= _FEW:
        params = fixed_in(_FEW_NAMES, fps)
        params["outlet"] = outlet
        rows: Iterable[Any] = run_compiled(conn, _FEW_LINE_COUNTS, params)
        return [(fp, n, since) for fp, n, since in rows]
    for i in range(0, len(fps), _CHUNK):
        out.extend((fp, n, since) for fp, n, since in conn.execute(
            _LINE_COUNTS, {"outlet": outlet, "fps": fps[i : i + _CHUNK]}))
    return out


def record_lines(session: Session, outlet_id: int, fingerprints: Iterable[str], now: datetime) -> None:
    """Count one more page of the outlet, carrying these lines (each once). The outlet's
    count goes up first, in the statement that reads it (and locks its row on PostgreSQL,
    so writers count pages one at a time): a line new here is `since` the pages before."""
    fps = sorted(set(fingerprints))
    conn = session.connection()
    counted = run_compiled(conn, _COUNT_PAGE, {"outlet": outlet_id}).scalar()
    if fps:
        since = counted - 1 if counted is not None else 0
        seen = bind_value(conn, _LINES.c.last_seen, now)
        run_compiled(conn, _upsert(conn.dialect.name),
                     [{"outlet": outlet_id, "fp": fp, "since": since, "seen": seen} for fp in fps])


# Built once on the tables (Core): a crawl runs them for every page it stores, at the
# driver level (storage.db.run_compiled) but for the expanding IN.
_LINES, _OUTLETS = cast(Table, TemplateLine.__table__), cast(Table, Outlet.__table__)
_FEW = 16  # lines a page's read-back usually stays under
_FEW_NAMES = tuple(f"fp{i}" for i in range(_FEW))


def _line_counts(fingerprints: Any) -> Any:
    """The read-back of `line_counts`, with `fingerprints` as its IN list."""
    return (select(_LINES.c.fingerprint, _LINES.c.pages, _LINES.c.since)
            .join(_OUTLETS, _OUTLETS.c.id == _LINES.c.outlet_id)
            .where(_OUTLETS.c.name == bindparam("outlet"), _LINES.c.fingerprint.in_(fingerprints)))


_LINE_COUNTS = _line_counts(bindparam("fps", expanding=True))
_FEW_LINE_COUNTS = _line_counts([bindparam(n) for n in _FEW_NAMES])
_COUNT_PAGE = (update(_OUTLETS).where(_OUTLETS.c.id == bindparam("outlet"))
               .values(template_pages=_OUTLETS.c.template_pages + 1).returning(_OUTLETS.c.template_pages))


@functools.cache
def _upsert(dialect: str) -> Any:
    """One statement for every page, run over its lines (executemany): a VALUES list as
    long as each page's lines was a new statement to compile on every page."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_LINES).values(outlet_id=bindparam("outlet"), fingerprint=bindparam("fp"), pages=1,
                                 since=bindparam("since"), last_seen=bindparam("seen")).inline()
    return stmt.on_conflict_do_update(
        index_elements=["outlet_id", "fingerprint"],
        set_={"pages": _LINES.c.pages + 1, "last_seen": stmt.excluded.last_seen})


def prune_lines(session: Session, outlet: str, now: datetime) -> int:
    """Forget lines the outlet stopped carrying, and its rarest beyond MAX_LINES; rows deleted."""
    outlet_id = session.scalar(select(Outlet.id).where(Outlet.name == outlet))
    if outlet_id is None:
        return 0
    gone = _deleted(session.execute(delete(TemplateLine).where(
        TemplateLine.outlet_id == outlet_id,
        TemplateLine.last_seen < now - timedelta(days=PRUNE_DAYS))))
    count = session.scalar(select(func.count()).select_from(TemplateLine)
                           .where(TemplateLine.outlet_id == outlet_id)) or 0
    if count > MAX_LINES:
        rare = (select(TemplateLine.id).where(TemplateLine.outlet_id == outlet_id)
                .order_by(TemplateLine.pages.desc(), TemplateLine.last_seen.desc())
                .offset(MAX_LINES))
        gone += _deleted(session.execute(delete(TemplateLine).where(TemplateLine.id.in_(rare))))
    return gone


def _deleted(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
