"""initial schema

All tables, plus the full-text index on items, which is dialect-specific and not part of
the models: SQLite gets an external-content FTS5 table ``items_fts`` over
``items.title_plain``/``summary_plain`` kept in sync by triggers; PostgreSQL a GIN
expression index ``ix_items_fts`` over ``to_tsvector('english', ...)`` (the same
expression ``SqlStorage.search`` queries).

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:17:20.286374
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The tsvector expression; SqlStorage.search must use exactly this text for the index.
PG_TSVECTOR = "to_tsvector('english', title_plain || ' ' || summary_plain)"

SQLITE_FTS = [
    # porter stemming over unicode61 (diacritics folded); CJK is searched with LIKE
    """CREATE VIRTUAL TABLE items_fts USING fts5(
        title_plain, summary_plain, content='items', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER items_fts_ai AFTER INSERT ON items BEGIN
        INSERT INTO items_fts(rowid, title_plain, summary_plain)
        VALUES (new.id, new.title_plain, new.summary_plain);
    END""",
    """CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, title_plain, summary_plain)
        VALUES ('delete', old.id, old.title_plain, old.summary_plain);
    END""",
    """CREATE TRIGGER items_fts_au AFTER UPDATE OF title_plain, summary_plain ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, title_plain, summary_plain)
        VALUES ('delete', old.id, old.title_plain, old.summary_plain);
        INSERT INTO items_fts(rowid, title_plain, summary_plain)
        VALUES (new.id, new.title_plain, new.summary_plain);
    END""",
]


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("guild_id", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("digest_time", sa.String(), nullable=True),
        sa.Column("digest_days", sa.String(), nullable=True),
        sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("group_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint(
            "platform", "external_id", name=op.f("uq_channels_platform_external_id")
        ),
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("lang", sa.String(), nullable=True),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(), nullable=True),
        sa.Column("last_modified", sa.String(), nullable=True),
        sa.Column("content_hash", sa.String(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("url", name=op.f("uq_feeds_url")),
    )
    op.create_table(
        "channel_disabled_entries",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_disabled_entries_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "entry_id", name=op.f("pk_channel_disabled_entries")),
    )
    op.create_table(
        "channel_entries",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_entries_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "entry_id", name=op.f("pk_channel_entries")),
    )
    op.create_table(
        "channel_feeds",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_feeds_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["feeds.id"],
            name=op.f("fk_channel_feeds_feed_id_feeds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "feed_id", name=op.f("pk_channel_feeds")),
    )
    op.create_index(op.f("ix_channel_feeds_feed_id"), "channel_feeds", ["feed_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("nonce", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_deliveries_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("channel_id", "key", name=op.f("uq_deliveries_channel_id_key")),
    )
    op.create_index(op.f("ix_deliveries_status"), "deliveries", ["status"])
    op.create_table(
        "feed_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_feed_errors_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_errors")),
    )
    op.create_index(op.f("ix_feed_errors_at"), "feed_errors", ["at"])
    op.create_index(op.f("ix_feed_errors_feed_id"), "feed_errors", ["feed_id"])
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("canonical_link", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("title_plain", sa.Text(), nullable=False),
        sa.Column("summary_plain", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("lang", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_items_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
    )
    op.create_index(op.f("ix_items_feed_id_fetched_at"), "items", ["feed_id", "fetched_at"])
    op.create_index(op.f("ix_items_fetched_at"), "items", ["fetched_at"])
    op.create_table(
        "delivery_items",
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_items_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_delivery_items_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", "item_id", name=op.f("pk_delivery_items")),
    )
    op.create_index(op.f("ix_delivery_items_item_id"), "delivery_items", ["item_id"])
    op.create_table(
        "item_keys",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_keys_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_item_keys")),
    )
    op.create_index(op.f("ix_item_keys_item_id"), "item_keys", ["item_id"])
    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_matches_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matches")),
        sa.UniqueConstraint(
            "item_id", "scope", "entry_id", name=op.f("uq_matches_item_id_scope_entry_id")
        ),
    )
    _create_fulltext()


def _create_fulltext() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_items_fts ON items USING gin (({PG_TSVECTOR}))")


def _drop_fulltext() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("items_fts_ai", "items_fts_ad", "items_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS items_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_items_fts")


def downgrade() -> None:
    _drop_fulltext()
    op.drop_table("matches")
    op.drop_index(op.f("ix_item_keys_item_id"), table_name="item_keys")
    op.drop_table("item_keys")
    op.drop_index(op.f("ix_delivery_items_item_id"), table_name="delivery_items")
    op.drop_table("delivery_items")
    op.drop_index(op.f("ix_items_fetched_at"), table_name="items")
    op.drop_index(op.f("ix_items_feed_id_fetched_at"), table_name="items")
    op.drop_table("items")
    op.drop_index(op.f("ix_feed_errors_feed_id"), table_name="feed_errors")
    op.drop_index(op.f("ix_feed_errors_at"), table_name="feed_errors")
    op.drop_table("feed_errors")
    op.drop_index(op.f("ix_deliveries_status"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_channel_feeds_feed_id"), table_name="channel_feeds")
    op.drop_table("channel_feeds")
    op.drop_table("channel_entries")
    op.drop_table("channel_disabled_entries")
    op.drop_table("feeds")
    op.drop_table("channels")
