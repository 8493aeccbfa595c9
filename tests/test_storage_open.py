"""Opening a database: one clear message for every way it can fail, nothing lost."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from storage_support import PG_URL

from bot.errors import ConfigError, StorageError
from bot.storage.sql import SqlStorage

# -- errors opening a database: one clear message, nothing lost --------------------------


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as err:
        SqlStorage(f"sqlite+aiosqlite:///{blocker / 'data' / 'briefbot.db'}")
    message = str(err.value)
    assert f"cannot create the database directory {blocker / 'data'}" in message
    assert "storage.data_dir" in message
    assert err.value.exit_code == 2


async def test_corrupt_sqlite_file_is_a_storage_error_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "briefbot.db"
    junk = b"this is not SQLite\n" * 300
    path.write_bytes(junk)
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(StorageError) as err:
        await storage.open()
    message = str(err.value)
    assert f"Cannot read the database file {path}" in message
    assert "not a valid SQLite database" in message
    assert "move it aside" in message
    assert "\n" not in message
    await storage.close()
    assert path.read_bytes() == junk  # nothing overwritten


async def test_database_path_that_is_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "briefbot.db"
    path.mkdir()
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(StorageError, match=r"Cannot open the database file .*briefbot\.db"):
        await storage.open()
    await storage.close()


async def test_unreachable_postgresql_server() -> None:
    port = _closed_port()
    storage = SqlStorage(f"postgresql+asyncpg://briefbot:s3cret@127.0.0.1:{port}/briefbot")
    with pytest.raises(StorageError) as err:
        await storage.open()
    message = str(err.value)
    assert f"postgresql+asyncpg://briefbot:***@127.0.0.1:{port}/briefbot" in message
    assert "s3cret" not in message
    assert "is the PostgreSQL server running" in message
    await storage.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://briefbot:s3cret@127.0.0.1/briefbot", "add +asyncpg"),
        ("nonsense", "is not a database URL"),
        ("mysql://briefbot:s3cret@127.0.0.1/briefbot", "unsupported database 'mysql'"),
        ("sqlite:///briefbot.db", "add +aiosqlite"),
    ],
)
def test_unusable_database_url_is_a_config_error(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        SqlStorage(url)
    assert str(err.value).startswith("storage.database_url: ")
    assert expected in str(err.value)
    assert "s3cret" not in str(err.value)


def test_missing_driver_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if not installed
    with pytest.raises(ConfigError) as err:
        SqlStorage("postgresql+asyncpg://briefbot:s3cret@127.0.0.1/briefbot")
    assert "driver for postgresql+asyncpg://briefbot:***@127.0.0.1/briefbot is not installed" in (
        str(err.value)
    )
    assert "briefbot[postgres]" in str(err.value)


if PG_URL:

    async def test_postgres_unknown_database_is_a_storage_error() -> None:
        url = make_url(PG_URL).set(database=f"briefbot_missing_{uuid.uuid4().hex[:8]}")
        storage = SqlStorage(url.render_as_string(hide_password=False))
        with pytest.raises(StorageError, match="does not exist"):
            await storage.open()
        await storage.close()


async def test_a_database_locked_by_another_process_says_so(tmp_path: Path) -> None:
    path = tmp_path / "briefbot.db"
    first = SqlStorage(f"sqlite+aiosqlite:///{path}")
    await first.open()
    await first.close()
    holder = sqlite3.connect(path, isolation_level=None)  # another process, as far as
    holder.execute("BEGIN EXCLUSIVE")  # SQLite's file locks go
    try:
        storage = SqlStorage(f"sqlite+aiosqlite:///{path}", busy_timeout=0.2)
        with pytest.raises(StorageError) as err:
            await storage.open()
        await storage.close()
    finally:
        holder.rollback()
        holder.close()
    message = str(err.value)
    assert f"Cannot open the database file {path}" in message
    assert "locked by another process" in message
    assert "writable" not in message
    assert "\n" not in message
    # nothing lost: once the lock is gone, the same file opens
    again = SqlStorage(f"sqlite+aiosqlite:///{path}")
    await again.open()
    await again.close()


def _sqlite_workers() -> set[threading.Thread]:
    """aiosqlite's worker threads (one per connection) that are still running."""
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


async def test_a_failed_open_leaves_no_sqlite_worker_thread_behind(tmp_path: Path) -> None:
    """Else the thread outlives the event loop and dies of "Event loop is closed"."""
    path = tmp_path / "briefbot.db"
    path.mkdir()
    before = _sqlite_workers()
    for _ in range(10):
        storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
        with pytest.raises(StorageError, match="Cannot open the database file"):
            await storage.open()
        await storage.close()
        assert _sqlite_workers() <= before
