"""Alembic environment: runs on the connection storage.db hands over (no ini file)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from veille.storage.db import include_name
from veille.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` CLI use: sqlalchemy.url from -x url=...
        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///veille.db")
        with create_engine(url).begin() as conn:
            _migrate(conn)
        return
    _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
