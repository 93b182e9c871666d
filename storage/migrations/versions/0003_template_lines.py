"""template_lines and outlets.template_pages: each outlet's template, learnt from its pages

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Existing outlets start with no evidence (template_pages 0): the generic rules apply to
their next pages until their own pages have told their template (pipeline.template).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outlets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_pages", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "template_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("since", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["outlet_id"], ["outlets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("outlet_id", "fingerprint"),
    )


def downgrade() -> None:
    op.drop_table("template_lines")
    with op.batch_alter_table("outlets", schema=None) as batch_op:
        batch_op.drop_column("template_pages")
