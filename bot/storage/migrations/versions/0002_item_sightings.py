"""item sightings

``item_sightings``: a feed that carried an item already stored from another feed (a
duplicate by dedupe key), so that the item's story credits every outlet that ran it.
Additive: existing rows are untouched (duplicates dropped before this revision were not
recorded, so older stories keep the outlets they had).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "item_sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["feeds.id"],
            name=op.f("fk_item_sightings_feed_id_feeds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_item_sightings_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_sightings")),
        sa.UniqueConstraint("item_id", "feed_id", name=op.f("uq_item_sightings_item_id_feed_id")),
    )
    op.create_index(op.f("ix_item_sightings_feed_id"), "item_sightings", ["feed_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_item_sightings_feed_id"), table_name="item_sightings")
    op.drop_table("item_sightings")
