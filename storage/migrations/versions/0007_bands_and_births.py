"""article_bands, stories.born, an index of copies: what a routine crawl looks up instead of scanning

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

`article_bands` keeps the LSH bands of originals' MinHash signatures (the duplicate
index, storage.duplicates): a crawl reads the candidates of its own pages instead of
every signature of the last 30 days. Computing bands is pipeline's (pipeline.dedup),
which a migration must not import: the table is created empty and filled once by the
first crawl that stores an article (Processor, from the originals of the index's window).

`stories.born`, the publication of a story's first original, lets the story pass read
the stories born in its context window by an index (storage.story_pass). Back-filled
here from the articles. `ix_articles_duplicate_of_id`: copies follow their original
when the pass moves it (storage.story_pass.move_articles) by an index, not a scan;
`ix_articles_outlet_first_seen`: an outlet's latest titles (storage.templates) without
sorting all of its archive.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "article_bands",
        sa.Column("band", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("band", "article_id"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_article_bands_article_id", "article_bands", ["article_id"])
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("born", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE stories SET born = (SELECT MIN(a.published) FROM articles a "
        "WHERE a.story_id = stories.id AND a.duplicate_of_id IS NULL)"
    )
    op.create_index("ix_stories_born", "stories", ["born"])
    copies = sa.text("duplicate_of_id IS NOT NULL")  # partial: every original is NULL
    op.create_index("ix_articles_duplicate_of_id", "articles", ["duplicate_of_id"],
                    sqlite_where=copies, postgresql_where=copies)
    op.create_index("ix_articles_outlet_first_seen", "articles", ["outlet_id", "first_seen"])


def downgrade() -> None:
    op.drop_index("ix_articles_outlet_first_seen", table_name="articles")
    op.drop_index("ix_articles_duplicate_of_id", table_name="articles")
    op.drop_index("ix_stories_born", table_name="stories")
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_column("born")
    op.drop_index("ix_article_bands_article_id", table_name="article_bands")
    op.drop_table("article_bands")
