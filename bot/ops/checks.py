"""``check-config``'s live checks: the data directory exists (it is created) and is
writable, and the database opens (SQLite file or PostgreSQL server, ``SELECT 1``).

Each failure is one line saying what and what to do; nothing is migrated (a database
from an older Briefbot is upgraded by ``run``, not by a check)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bot.config import Settings, hide_password
from bot.errors import BriefbotError

#: how long connecting to the database may take
CONNECT_TIMEOUT = 10.0


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


async def check_database(url: str, *, wait: float = CONNECT_TIMEOUT) -> str | None:
    """None if the database at ``url`` answers ``SELECT 1``, else the problem."""
    from sqlalchemy import text

    from bot.storage.sql import SqlStorage

    shown = hide_password(url)
    try:
        storage = SqlStorage(url)
    except BriefbotError as err:
        return str(err)
    try:
        async with asyncio.timeout(wait), storage.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"cannot open the database {shown}: no answer within {wait:g} s"
    except Exception as err:
        detail = str(getattr(err, "orig", None) or err).strip()
        detail = (detail.splitlines() or [type(err).__name__])[0]
        if isinstance(err, OSError) and err.strerror:
            detail = err.strerror
        hint = (
            "check that the file and its directory are writable (storage.data_dir)"
            if storage.dialect == "sqlite"
            else "is the server running, and are the host, port, user, password and "
            "database name in storage.database_url right?"
        )
        return f"cannot open the database {shown} ({detail}): {hint}"
    finally:
        await storage.close()
    return None


async def live_checks(settings: Settings) -> list[str]:
    """Every problem found, one line each (empty: all good)."""
    problems: list[str] = []
    data_dir = settings.storage.resolved_data_dir()
    problem = check_data_dir(data_dir)
    if problem:
        problems.append(problem)
    url = settings.storage.resolved_url()
    uses_data_dir = not settings.storage.database_url
    if not (uses_data_dir and problem):  # the SQLite file in a missing dir: said already
        problem = await check_database(url)
        if problem:
            problems.append(problem)
    return problems


__all__ = ["check_data_dir", "check_database", "live_checks"]
