"""articles.features: each article's story features, for re-clustering without re-reading text

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Rows stored before this revision keep NULL; the story pass (pipeline.settle) computes
their features from title and text the first time it needs them and stores them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("features", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("features")
