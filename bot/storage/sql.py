"""``SqlStorage``: the storage ports of :mod:`bot.core.ports` on SQLAlchemy 2 async.

It is composed of one mixin per domain, each in its own module, over the engine:

- :mod:`bot.storage.engine`: URL checks, connecting, migrations, transactions, errors;
- :mod:`bot.storage.feeds`: feeds and fetch results (``FeedStore``);
- :mod:`bot.storage.ingest`: items coming in, across feeds, with their matches and the
  cycle's fetch records (``ItemStore`` writes, ``CycleStore``);
- :mod:`bot.storage.items`: sightings, matches, a channel's view (``ItemStore`` reads);
- :mod:`bot.storage.search`: full-text search (FTS5 / tsvector; ``ItemStore.search``);
- :mod:`bot.storage.channels`: channels, schedules, own entries (``ChannelStore``);
- :mod:`bot.storage.deliveries`: the outbox (``DeliveryStore``);
- :mod:`bot.storage.retention`: pruning old rows (``storage.retention_days``);
- :mod:`bot.storage.queries`: table handles, shared query fragments, row conversions.

Which URLs (SQLite file or memory, PostgreSQL), how connections and transactions work:
see :mod:`bot.storage.engine`.

Call :meth:`SqlStorage.open` first: it runs the Alembic migrations to head (the schema is
never created from the models directly, so upgrades keep users' data).

Every datetime going in must be timezone-aware (a naive one is a bug: ``ValueError``);
every datetime coming out is aware UTC.
"""

from __future__ import annotations

from bot.core.ports import Storage
from bot.storage.channels import ChannelsMixin
from bot.storage.deliveries import DeliveriesMixin
from bot.storage.engine import MIGRATIONS_DIR
from bot.storage.feeds import FeedsMixin
from bot.storage.ingest import IngestMixin
from bot.storage.items import ItemsMixin
from bot.storage.retention import RetentionMixin
from bot.storage.search import SearchMixin


class SqlStorage(
    FeedsMixin,
    IngestMixin,
    ItemsMixin,
    SearchMixin,
    ChannelsMixin,
    DeliveriesMixin,
    RetentionMixin,
):
    """The Storage Protocol on SQLAlchemy 2 async (SQLite or PostgreSQL)."""


def _conforms(storage: SqlStorage) -> Storage:
    """Type-checks that SqlStorage implements the Storage Protocol."""
    return storage


__all__ = ["MIGRATIONS_DIR", "SqlStorage"]
