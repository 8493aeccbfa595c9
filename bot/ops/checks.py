"""``check-config``'s live checks: the data directory exists (it is created) and is
writable, and the database opens: the SQLite file (created if missing) reads as a
database, or the PostgreSQL server answers ``SELECT 1`` as the configured user.

Each failure is one line saying what and what to do. Nothing is migrated (a database
from an older Briefbot is upgraded by ``run``, not by a check), and the checks stay
light: the standard library's sqlite3, or asyncpg, never the storage engine."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from bot.config import Settings, check_database_url, hide_password

#: how long connecting to the database may take
CONNECT_TIMEOUT = 10.0

_SQLITE_HINT = "check that the file and its directory are writable (storage.data_dir)"
_PG_HINT = (
    "is the server running, and are the host, port, user, password and database name "
    "in storage.database_url right?"
)


def check_data_dir(path: Path) -> str | None:
    """None if ``path`` exists (created if missing) and is writable, else the problem."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return (
            f"cannot create the data directory {path} ({err.strerror or err}): choose a "
            "directory you can write to (storage.data_dir)"
        )
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        return (
            f"cannot write to the data directory {path} ({err.strerror or err}): fix its "
            "permissions or choose another (storage.data_dir)"
        )
    return None


def _first_line(err: BaseException) -> str:
    text = (getattr(err, "strerror", None) or str(err) or type(err).__name__).strip()
    return (text.splitlines() or [type(err).__name__])[0]


def _check_sqlite(database: str, shown: str, wait: float) -> str | None:
    """Open (create) the SQLite file and read its header; the problem, if any."""
    path = Path(database).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return (
            f"cannot create the database directory {path.parent} ({_first_line(err)}): "
            "choose a directory you can write to (storage.data_dir)"
        )
    try:
        conn = sqlite3.connect(path, timeout=wait)
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # reads the file's header
        finally:
            conn.close()
    except sqlite3.Error as err:
        return f"cannot open the database {shown} ({_first_line(err)}): {_SQLITE_HINT}"
    return None


async def check_database(url: str, *, wait: float = CONNECT_TIMEOUT) -> str | None:
    """None if the database at ``url`` opens, else the problem (one line)."""
    try:
        parsed = check_database_url(url)
    except ValueError as err:
        return str(err)
    shown = hide_password(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            return None
        return await asyncio.to_thread(_check_sqlite, database, shown, wait)
    try:
        import asyncpg  # type: ignore[import-untyped]  # no stubs; only connect and fetchval are used
    except ImportError:
        return (
            f"the database driver for {shown} is not installed: asyncpg "
            "(pip install 'briefbot[postgres]')"
        )
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        async with asyncio.timeout(wait):
            conn = await asyncpg.connect(dsn)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
    except TimeoutError:
        return f"cannot open the database {shown}: no answer within {wait:g} s ({_PG_HINT})"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as err:
        return f"cannot open the database {shown} ({_first_line(err)}): {_PG_HINT}"
    return None


async def live_checks(settings: Settings) -> list[str]:
    """Every problem found, one line each (empty: all good)."""
    problems: list[str] = []
    data_dir = settings.storage.resolved_data_dir()
    problem = check_data_dir(data_dir)
    if problem:
        problems.append(problem)
    uses_data_dir = not settings.storage.database_url.get_secret_value()
    if not (uses_data_dir and problem):  # the SQLite file in a missing dir: said already
        problem = await check_database(settings.storage.resolved_url())
        if problem:
            problems.append(problem)
    return problems


__all__ = ["check_data_dir", "check_database", "live_checks"]
