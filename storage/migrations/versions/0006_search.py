"""search: the full-text index of articles (archive search)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

`search_docs` keeps each article's folded title and text (pipeline.search_text) with the
article's `versions` and `updated_at` when it was folded; on SQLite an external-content
FTS5 table `search_fts` indexes it (triggers keep the two in step), on PostgreSQL the
folded text is a `tsvector` ('simple' configuration: the folding is done already) under
a GIN index. `ix_articles_updated_at` lets the indexer find what changed since its last
pass without reading every article.

The index is created empty. Folding lives in pipeline/, which storage (and so a
migration) must not import, so existing databases are back-filled by the first refresh
(`veille.search.refresh_index`): at the end of the next crawl, or at the start of the
next `veille search`. Until then a search finds nothing old.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "folded, content='search_docs', content_rowid='article_id')",
    "CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN "
    "INSERT INTO search_fts(rowid, folded) VALUES (new.article_id, new.folded); END",
    "CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, folded) "
    "VALUES ('delete', old.article_id, old.folded); END",
    "CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, folded) "
    "VALUES ('delete', old.article_id, old.folded); "
    "INSERT INTO search_fts(rowid, folded) VALUES (new.article_id, new.folded); END",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_index("ix_articles_updated_at", "articles", ["updated_at"])
    op.create_table(
        "search_docs",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("folded", postgresql.TSVECTOR() if postgres else sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id"),
    )
    op.create_index("ix_search_docs_updated_at", "search_docs", ["updated_at"])
    if postgres:
        op.create_index("ix_search_docs_folded", "search_docs", ["folded"], postgresql_using="gin")
    else:
        for statement in _SQLITE_FTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("search_docs_au", "search_docs_ad", "search_docs_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_docs")  # its indexes go with it
    op.drop_index("ix_articles_updated_at", table_name="articles")
