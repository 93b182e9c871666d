"""Engine, schema upgrades and sessions: the one place that opens the database.

SQLite is the default (WAL so readers never block the crawler, a busy timeout so two
processes wait for each other instead of failing); PostgreSQL goes through psycopg 3
with the same models. The schema is created or upgraded by Alembic on first use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_MS = 30_000


class StorageError(Exception):
    """A database problem worded for the user (which database, what went wrong)."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (SQLAlchemy's default is psycopg2)."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


# query parameters that carry a password (libpq's `?password=`, redis-py's `?password=`)
_SECRET_PARAMS = frozenset({"password", "passwd", "pass", "pwd", "sslpassword"})
# fallback for a URL make_url cannot parse: everything between `scheme://user:` and the
# last `@` (a raw `@` or `/` in a password), or before the last `@` without a scheme
_USERINFO = re.compile(r"^(?:([\w+.-]+://[^:@/]*:)|([\w+.-]+://)?).*@")


def describe(url: str) -> str:
    """The URL without its password, for messages and logs (database or Redis URL).

    Never raises: a URL SQLAlchemy cannot parse is masked by hand rather than printed,
    since the error that names it would otherwise print the password.
    """
    try:
        u = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return _mask_userinfo(url)
    if u.drivername.startswith("sqlite"):  # a file path: no password, and `@` is a path character
        return u.render_as_string(hide_password=True)
    if url.count("@") > 1:  # make_url splits `user:p@ss@host` at the first `@`
        return _mask_userinfo(url)
    if any(k.lower() in _SECRET_PARAMS for k in u.query):
        u = u.set(query={k: "***" if k.lower() in _SECRET_PARAMS else v for k, v in u.query.items()})
    return u.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _mask_userinfo(url: str) -> str:
    head, sep, tail = url.partition("?")
    masked = _USERINFO.sub(lambda m: (m.group(1) or m.group(2) or "") + "***@", head, count=1)
    return masked + (sep + "…" if sep else "")  # an unparsed query may hold a password too


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_DRIVER_SQL: dict[tuple[ClauseElement, str], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}


def run_compiled(conn: Connection, stmt: ClauseElement,
                 params: dict[str, Any] | list[dict[str, Any]]) -> CursorResult[Any]:
    """Run a statement built once on the tables, compiled once per dialect, at the driver
    level: for the few statements a crawl sends for every page, where SQLAlchemy's work per
    execution (keying, processing each parameter and row) cost more than the statement.
    Only for statements whose parameters and columns need no type conversion (integers,
    strings, bytes; a caller converts anything else once, see `bind_value`), an INSERT
    made `inline()` (no RETURNING of its key added); a list of parameter sets runs as one
    executemany."""
    key = (stmt, conn.dialect.name)
    if key not in _DRIVER_SQL:
        compiled = cast(SQLCompiler, stmt.compile(dialect=conn.dialect))
        sql = str(compiled)
        order = tuple(compiled.positiontup or ()) if conn.dialect.positional else None
        constants = {name: b.value for name, b in compiled.binds.items()  # e.g. the 1 of `pages + 1`
                     if not b.required and (name in order if order is not None else f"%({name})s" in sql)}
        _DRIVER_SQL[key] = (sql, order, constants)
    sql, order, constants = _DRIVER_SQL[key]
    sets = [{**constants, **p} for p in params] if isinstance(params, list) else [{**constants, **params}]
    if order is not None:
        rows: list[Any] = [tuple(p[n] for n in order) for p in sets]
    else:
        rows = sets
    return conn.exec_driver_sql(sql, rows if isinstance(params, list) else rows[0])


def fixed_in(names: tuple[str, ...], values: list[Any]) -> dict[str, Any]:
    """Parameters of a fixed-length IN list (`names`, one bind each) for 1..len(names)
    values, padded with the last one: one compiled statement serves every count up to it
    (`run_compiled` cannot expand an IN list)."""
    return dict(zip(names, values + values[-1:] * (len(names) - len(values)), strict=True))


def bind_value(conn: Connection, column: Any, value: Any) -> Any:
    """`value` as the driver takes it for `column` (its type's conversion, e.g. an aware
    datetime to SQLite's text), for `run_compiled`."""
    key = (column, conn.dialect.name)
    if key not in _BIND:
        _BIND[key] = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    process = _BIND[key]
    return process(value) if process is not None else value


_BIND: dict[tuple[Any, str], Any] = {}


def result_converter(conn: Connection, column: Any) -> Callable[[Any], Any]:
    """What turns the driver's value of `column` into its type's (e.g. SQLite's text into an
    aware datetime), for rows read with `run_compiled`."""
    key = (column, conn.dialect.name)
    if key not in _RESULT:
        process = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
        _RESULT[key] = process if process is not None else _same
    return _RESULT[key]


def _same(value: Any) -> Any:
    return value


_RESULT: dict[tuple[Any, str], Callable[[Any], Any]] = {}


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite the file's folder is created and pragmas are set."""
    try:
        url = normalise_url(url)
    except (ArgumentError, ValueError) as exc:  # a bad port, a scheme SQLAlchemy cannot parse
        raise StorageError(f"{describe(url)}: not a usable database URL ({_first_line(exc)})") from None
    u = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if u.get_backend_name() == "sqlite":
        # a URI ("file:...?uri=true") names its file itself, and a read-only one must exist
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            try:
                Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"{describe(url)}: cannot create the database folder ({exc})") from None
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"{describe(url)}: cannot open database ({_first_line(exc)})") from None
    if u.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Alembic's name filter: the search index's tables (storage.search; an FTS5 table
    and its shadow tables on SQLite) are made by migration 0006, not described by the
    models, so a comparison of the schema with the models leaves them out."""
    from veille.storage.search import is_search_table

    return not (type_ == "table" and is_search_table(name))


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (creating it on an empty database)."""
    from alembic import command

    try:
        with engine.begin() as conn:
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise StorageError(f"{describe(str(engine.url))}: {_first_line(exc)}") from None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


class Database:
    """An engine with an up-to-date schema and a session factory."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One atomic unit: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def session(self) -> Session:
        return self.sessions()

    def optimize(self) -> None:
        """Refresh the planner's statistics where they are stale, cheaply: SQLite's
        `PRAGMA optimize` (ANALYZE of the tables whose shape changed; what SQLite advises
        running now and then on a long-lived database). PostgreSQL's autovacuum already
        does both VACUUM and ANALYZE. VACUUM itself is never run here: it rewrites the
        whole file (cost of the archive, not of the work), and pages freed by pruning are
        reused by later writes."""
        if self.backend == "sqlite":
            with self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA optimize")

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()
