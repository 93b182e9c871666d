"""Indexes for what the reading commands and a crawl's per-outlet reads ask of recent rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

- `ix_template_lines_outlet_pages`: a crawl loads an outlet's template lines (those on
  MIN_PAGES pages or more) instead of every line counted, rare ones included (up to
  20,000 per outlet); `ix_template_lines_outlet_last_seen`: the pruning of lines not
  seen lately reads only those (storage.templates).
- `ix_digest_items_digest_id`: the stories of the list's recent digests (developing
  stories, storage.digests.unmailed_articles) from the digests, not from every article;
  `ix_digests_key_status_sent`: the list's last sent digest without sorting its history.
- `ix_crawl_runs_started_at`: `veille status`'s last runs of any kind, newest first.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_template_lines_outlet_pages", "template_lines", ["outlet_id", "pages"])
    op.create_index("ix_template_lines_outlet_last_seen", "template_lines", ["outlet_id", "last_seen"])
    op.create_index("ix_digest_items_digest_id", "digest_items", ["digest_id"])
    op.create_index("ix_digests_key_status_sent", "digests", ["recipients_key", "status", "sent_at"])
    op.create_index("ix_crawl_runs_started_at", "crawl_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_crawl_runs_started_at", table_name="crawl_runs")
    op.drop_index("ix_digests_key_status_sent", table_name="digests")
    op.drop_index("ix_digest_items_digest_id", table_name="digest_items")
    op.drop_index("ix_template_lines_outlet_last_seen", table_name="template_lines")
    op.drop_index("ix_template_lines_outlet_pages", table_name="template_lines")
