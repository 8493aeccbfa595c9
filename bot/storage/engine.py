"""The engine under :class:`~bot.storage.sql.SqlStorage` (the base of its mixins):
URL checks, connecting, migrating to the newest schema, one transaction per call,
and database errors mapped to Briefbot's.

URLs
- ``sqlite+aiosqlite:///path/to/briefbot.db`` (the default deployment): parent
  directories are created; each connection gets WAL, foreign keys and a busy timeout,
  and every transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers
  (another process) queue instead of failing half-way. Within one process, SQLite access
  is serialised by an asyncio lock.
- ``sqlite+aiosqlite:///:memory:`` (tests): a single shared connection (StaticPool), so
  every call sees the same database; it lives until :meth:`SqlStorage.close`.
- ``postgresql+asyncpg://user:pass@host/db``: the same code; only upserts (``ON
  CONFLICT``) and full-text search are dialect-switched.

Call :meth:`SqlStorage.open` first: it runs the Alembic migrations to head (the schema is
never created from the models directly, so upgrades keep users' data).

Every datetime going in must be timezone-aware (a naive one is a bug: ``ValueError``);
every datetime coming out is aware UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from bot.config import check_database_url, hide_password
from bot.errors import ConfigError, StorageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def as_utc(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: storage needs aware datetimes")
    return value.astimezone(UTC)


def as_utc_opt(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _is_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or database.startswith("file::memory:")


class StorageBase:
    """Connection, transactions and schema; the domain mixins add the queries."""

    def __init__(self, url: str, *, echo: bool = False, busy_timeout: float = 15.0) -> None:
        """Raises :class:`ConfigError` when the URL is unusable (not a URL, another
        database or driver, a driver not installed, a SQLite directory that cannot be
        created). Nothing connects yet: see :meth:`open`. ``busy_timeout``: how many
        seconds a SQLite statement waits for another process's lock before failing."""
        try:
            parsed = check_database_url(url)
        except ValueError as err:
            raise ConfigError(str(err), key="storage.database_url") from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        self._lock: asyncio.Lock | None = None
        #: the engine reads go through (None: the write engine, ``_engine``)
        self._reader: AsyncEngine | None = None
        memory = False
        if self.dialect == "sqlite":
            self._lock = asyncio.Lock()
            memory = _is_memory(parsed.database)
            if memory:
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            else:
                assert parsed.database is not None
                path = Path(parsed.database).expanduser()
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise ConfigError(
                        f"cannot create the database directory {path.parent} "
                        f"({err.strerror or err}): choose a directory you can write to "
                        "(storage.data_dir or storage.database_url; --data-dir for the demo)"
                    ) from None
                parsed = parsed.set(database=str(path))
        self.url = parsed
        try:
            self._engine: AsyncEngine = create_async_engine(parsed, **kwargs)
        except ImportError as err:
            extra = " (pip install 'briefbot[postgres]')" if self.dialect == "postgresql" else ""
            raise ConfigError(
                f"the database driver for {self.display_url} is not installed: "
                f"{err.name or err}{extra}"
            ) from None
        except SQLAlchemyError as err:
            raise ConfigError(f"cannot use the database {self.display_url}: {err}") from None
        if self.dialect == "sqlite":
            _configure_sqlite(self._engine, wal=not memory, busy_timeout=busy_timeout)
            if not memory:
                # readers of their own: a file database in WAL mode lets them read
                # beside the writer (an in-memory database is one shared connection)
                self._reader = create_async_engine(parsed, **kwargs)
                _configure_sqlite(self._reader, wal=True, busy_timeout=busy_timeout, read_only=True)

    @property
    def display_url(self) -> str:
        """The database URL with its password hidden, to print or log."""
        return hide_password(self.url.render_as_string(hide_password=False))

    async def open(self) -> None:
        """Create or upgrade the schema to the newest migration. Raises
        :class:`StorageError` naming the database (password hidden) and what to do when
        it cannot be reached or read."""
        try:
            async with self._tx() as conn:
                # Alembic (and Mako, which it imports) costs a second of start-up: it is
                # loaded only when the schema is not at the newest migration already
                if await conn.run_sync(_current_revision) != _head_revision():
                    await conn.run_sync(_upgrade_to_head)
        except StorageError as err:
            await _dispose_quietly(self._engine)
            cause = err.__cause__
            if isinstance(cause, SQLAlchemyError | OSError):
                raise StorageError(self._open_failure(cause)) from cause
            raise  # already says what to do (e.g. a schema from a newer Briefbot)
        except Exception as err:
            await _dispose_quietly(self._engine)
            if isinstance(err, SQLAlchemyError | OSError) or _is_driver_error(err):
                raise StorageError(self._open_failure(err)) from err
            raise

    async def close(self) -> None:
        try:
            if self._reader is not None:
                await self._reader.dispose()
        finally:
            await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction (committed on success, rolled back on error)."""
        with _mapped_errors():
            if self._lock is not None:
                async with self._lock, self._engine.begin() as conn:
                    yield conn
            else:
                async with self._engine.begin() as conn:
                    yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """One read-only transaction: a consistent snapshot of the last committed state.
        On a SQLite file it does not wait for the process's writes (its own connection,
        WAL); elsewhere it is :meth:`_tx`. Writing through it fails."""
        if self._reader is None:
            async with self._tx() as conn:
                yield conn
            return
        with _mapped_errors():
            async with self._reader.begin() as conn:
                yield conn

    def _open_failure(self, err: BaseException) -> str:
        """What went wrong opening the database, and what to do."""
        text = str(getattr(err, "orig", None) or err).strip()
        detail = (text.splitlines() or [type(err).__name__])[0]
        if self.dialect == "sqlite":
            where = f"the database file {self.url.database}"
            if "not a database" in detail or "malformed" in detail:
                return (
                    f"Cannot read {where}: it is not a valid SQLite database ({detail}). "
                    "Restore it from a backup, or move it aside so that Briefbot creates "
                    "a new one."
                )
            if "locked" in detail:
                return (
                    f"Cannot open {where}: it is locked by another process ({detail}). "
                    "Is another Briefbot using it? Stop that one, or choose another "
                    "database (storage.data_dir)."
                )
            return (
                f"Cannot open {where} ({detail}): check that the file and its directory "
                "are writable, or choose another (storage.data_dir)."
            )
        where = f"the database {self.display_url}"
        if isinstance(err, OSError):
            return (
                f"Cannot connect to {where} ({detail}): is the PostgreSQL server running, "
                "and are the host and port in storage.database_url right?"
            )
        return (
            f"Cannot open {where} ({detail}): check the server, the user, the password and "
            "the database name in storage.database_url."
        )

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that supports ``on_conflict_do_nothing`` on this dialect."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


# -- helpers -------------------------------------------------------------------------


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """The database failing (locked, disk full, connection lost, a corrupt file) as a
    :class:`StorageError`; a constraint the caller handles, or a bug, as it is."""
    try:
        yield
    except (IntegrityError, ProgrammingError, DataError, NotSupportedError):
        raise
    except (OperationalError, InterfaceError, DatabaseError) as err:
        raise StorageError(f"The database failed: {err.orig or err}") from err
    except OSError as err:  # the connection to the server failed
        raise StorageError(f"The database failed: {err.strerror or err}") from err


def _configure_sqlite(
    engine: AsyncEngine, *, wal: bool, busy_timeout: float, read_only: bool = False
) -> None:
    """Every connection: foreign keys, the busy timeout, WAL; transactions that take the
    write lock at once (``BEGIN IMMEDIATE``), or, ``read_only``, that cannot write and
    take no lock (a deferred ``BEGIN``)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, start transactions (see _on_begin)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        elif wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    @event.listens_for(engine.sync_engine, "do_connect")
    def _on_do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # the dialect's own connect, but through _connect_aiosqlite (same arguments)
        return dialect.dbapi.connect(*cargs, async_creator_fn=_connect_aiosqlite, **cparams)


#: how long a failed connect waits for aiosqlite's worker thread to stop
_WORKER_STOP_WAIT = 5.0


async def _connect_aiosqlite(*args: Any, **kwargs: Any) -> Any:
    """``aiosqlite.connect``, except that when connecting fails (a directory, a path that
    cannot be created) it waits for the connection's worker thread to stop. aiosqlite
    stops the thread without waiting, and the thread reports its last result to the
    event loop: if the loop closed first (a program or test that gives up on the
    error), the thread dies of "Event loop is closed"."""
    import aiosqlite

    conn = aiosqlite.connect(*args, **kwargs)
    conn._thread.daemon = True  # as SQLAlchemy's dialect does
    try:
        return await conn
    except BaseException:
        await asyncio.to_thread(conn._thread.join, _WORKER_STOP_WAIT)
        raise


async def _dispose_quietly(engine: AsyncEngine) -> None:
    # already failing: the first error is the one to report
    with contextlib.suppress(Exception):
        await engine.dispose()


def _is_driver_error(err: BaseException) -> bool:
    """An exception of the database driver that SQLAlchemy passed through unwrapped
    (asyncpg raises its own errors while connecting: a wrong password or database)."""
    return type(err).__module__.split(".")[0] in ("asyncpg", "aiosqlite", "sqlite3")


_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(None|[\"']([^\"']+)[\"'])", re.M)


def _head_revision() -> str | None:
    """The newest migration's revision id, read from the migration files without
    Alembic; None unless there is exactly one head (Alembic then decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = {m[0]: m[2] for m in _REVISION.findall(path.read_text(encoding="utf-8"))}
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current_revision(connection: Connection) -> str | None:
    """The database's schema revision (None: a new database, or not exactly one)."""
    try:
        with connection.begin_nested():
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None  # no alembic_version table yet
    return str(rows[0][0]) if len(rows) == 1 else None


def _upgrade_to_head(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.util.exc import CommandError

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    try:
        command.upgrade(cfg, "head")
    except CommandError as err:
        raise StorageError(
            f"Cannot upgrade the database schema ({err}). Was it created by a newer "
            "Briefbot? Upgrade Briefbot or point it at another database."
        ) from err
