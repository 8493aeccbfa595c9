"""SQLAlchemy 2 declarative models: the database schema.

The schema itself is created and upgraded by the Alembic migrations in
``bot/storage/migrations/versions``; a test asserts that these models and the migrated
schema agree (autogenerate finds no difference). Change both together: edit a model,
then add a migration (``alembic -c bot/storage/alembic.ini revision --autogenerate``).

Conventions
- Every timestamp is :class:`UTCDateTime`: aware UTC in, aware UTC out (SQLite stores
  naive UTC text, PostgreSQL ``timestamptz``).
- ``matches.scope`` is ``0`` for the default watchlist (the API's ``scope=None``) and a
  channel id for a channel's own entries. ``0`` rather than NULL so that the unique
  constraint (item_id, scope, entry_id) holds: NULLs are distinct in SQL unique keys.
- ``items.title_plain`` / ``summary_plain`` hold the plain text (``bot.core.text.plain``)
  that full-text search indexes; the raw feed text stays in ``title`` / ``summary``.
- The full-text index is not a model: SQLite gets an FTS5 table ``items_fts`` kept in
  sync by triggers, PostgreSQL a GIN expression index ``ix_items_fts`` (see the initial
  migration). :data:`FTS_OBJECTS` names them so schema comparison can skip them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from typing_extensions import override

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: database objects created by migrations outside the models (full-text search)
FTS_OBJECTS = ("items_fts", "ix_items_fts")

#: ``matches.scope`` value for default-watchlist matches
DEFAULT_SCOPE = 0


def include_object(
    _obj: Any, name: str | None, _type: str, _reflected: bool, _compare_to: Any
) -> bool:
    """Alembic ``include_object`` hook: skip the full-text search objects (the FTS5
    table and its shadow tables, the GIN index), which migrations create by hand."""
    return not (name and name.startswith(FTS_OBJECTS))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp normalised to UTC both ways.

    Naive datetimes are refused (a bug in the caller). SQLite keeps no timezone, so
    values are stored as naive UTC and given ``tzinfo=UTC`` back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @override
    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: storage needs aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    @override
    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # raw SQL paths on SQLite give text
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(when, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if when.tzinfo is None:
            return when.replace(tzinfo=UTC)
        return when.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class FeedRow(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String, unique=True)
    name: Mapped[str] = mapped_column(String)
    lang: Mapped[str | None] = mapped_column(String)
    #: "config" while the feed is in config/feeds.toml, else "chat"
    origin: Mapped[str] = mapped_column(String)
    #: polled: in config, or subscribed by at least one channel
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(String)
    last_modified: Mapped[str | None] = mapped_column(String)
    content_hash: Mapped[str | None] = mapped_column(String)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedErrorRow(Base):
    """One failed fetch (kept 30 days), for ``failures_between``."""

    __tablename__ = "feed_errors"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    error: Mapped[str] = mapped_column(Text)


class ItemRow(Base):
    __tablename__ = "items"
    __table_args__ = (Index(None, "feed_id", "fetched_at"), Index(None, "fetched_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    canonical_link: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    title_plain: Mapped[str] = mapped_column(Text)
    summary_plain: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String)
    lang: Mapped[str | None] = mapped_column(String)


class ItemKeyRow(Base):
    """Dedupe keys (guid, canonical link, title fingerprint...): one item per key,
    across all feeds."""

    __tablename__ = "item_keys"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)


class ItemSightingRow(Base):
    """Another feed that carried a stored item: a copy that was a duplicate by dedupe key
    (an aggregator, a second outlet running the same link). The item is stored once; its
    sightings credit the other outlets. One per (item, feed); never the item's own feed."""

    __tablename__ = "item_sightings"
    __table_args__ = (UniqueConstraint("item_id", "feed_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    #: the outlet's name as the copy gave it (``Item.source``)
    source: Mapped[str] = mapped_column(String)
    #: the copy's own link (an aggregator's tracking URL, a syndication page)
    link: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MatchRow(Base):
    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("item_id", "scope", "entry_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    #: 0 = default watchlist, else channels.id (see module docstring)
    scope: Mapped[int] = mapped_column(Integer, default=DEFAULT_SCOPE)
    entry_id: Mapped[str] = mapped_column(String)
    alias: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String)


class ChannelRow(Base):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String)
    external_id: Mapped[str] = mapped_column(String)
    guild_id: Mapped[str | None] = mapped_column(String)
    name: Mapped[str | None] = mapped_column(String)
    timezone: Mapped[str] = mapped_column(String)
    digest_time: Mapped[str | None] = mapped_column(String)
    digest_days: Mapped[str | None] = mapped_column(String)
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    group_by: Mapped[str] = mapped_column(String, default="entry")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelEntryRow(Base):
    """A channel's own watchlist entry."""

    __tablename__ = "channel_entries"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[str] = mapped_column(String, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    mode: Mapped[str] = mapped_column(String)


class ChannelDisabledEntryRow(Base):
    """A default-watchlist entry switched off for one channel."""

    __tablename__ = "channel_disabled_entries"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[str] = mapped_column(String, primary_key=True)


class ChannelFeedRow(Base):
    """A channel's override of the feed set: ``added`` (a chat feed, or a config feed it
    keeps even if config drops it) or ``removed`` (a config feed it does not want)."""

    __tablename__ = "channel_feeds"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    state: Mapped[str] = mapped_column(String)


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("channel_id", "key"), Index(None, "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String)
    key: Mapped[str] = mapped_column(String)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String)
    nonce: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryItemRow(Base):
    """Which items a delivery carries (answers ``alerted``)."""

    __tablename__ = "delivery_items"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SlackInstallationRow(Base):
    """A Slack workspace's installation (OAuth v2), for the Slack adapter's installation
    store. ``data`` is the installation as JSON, encrypted (Fernet) with the secret
    key: it holds the bot token. ``enterprise_id`` is "" outside Enterprise Grid (so the
    unique key holds)."""

    __tablename__ = "slack_installations"
    __table_args__ = (UniqueConstraint("enterprise_id", "team_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String)
    team_id: Mapped[str] = mapped_column(String)
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[str] = mapped_column(Text)
