"""articles.published_offset, stories.published_offset: the UTC offset the page stated

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10

`published` stays the instant in UTC (what every comparison and index uses); the new
column keeps, in minutes east of UTC, the offset the page stated it with, so the page's
own day and time can be shown (storage.models.stated). Rows stored before this revision
keep NULL: their offset was not kept, and they read in UTC as before.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("articles", "stories"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("published_offset", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ("stories", "articles"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("published_offset")
