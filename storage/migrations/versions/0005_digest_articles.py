"""digest_articles: which article each recipient list has been mailed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

A story mailed once can come back under "Developing" when it gains coverage; what comes
back is only the articles that list has not been mailed yet, so each article is mailed
at most once per list. Databases mailed before this revision count every article their
mailed stories held as mailed: nothing old comes back as new.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("recipients_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["digest_id"], ["digests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("article_id", "recipients_key"),
    )
    op.create_index("ix_digest_articles_story_id", "digest_articles", ["story_id"])
    op.execute(
        "INSERT INTO digest_articles (digest_id, article_id, story_id, recipients_key) "
        "SELECT MIN(di.digest_id), a.id, di.story_id, di.recipients_key "
        "FROM digest_items di JOIN articles a ON a.story_id = di.story_id "
        "GROUP BY a.id, di.story_id, di.recipients_key"
    )


def downgrade() -> None:
    op.drop_index("ix_digest_articles_story_id", table_name="digest_articles")
    op.drop_table("digest_articles")
