"""Each workspace's installation in our database: a Bolt ``AsyncInstallationStore``.

With ``SLACK_CLIENT_ID``, ``SLACK_CLIENT_SECRET`` and ``BRIEFBOT_SECRET_KEY`` set, Bolt
serves Slack's OAuth v2 flow (``/slack/install``, ``/slack/oauth_redirect``) and saves
every installation here; every request then runs with the bot token of the workspace it
came from (Bolt's ``authorize`` asks :meth:`SqlInstallationStore.async_find_bot`).

At rest: one row per workspace (or Enterprise Grid org) in ``slack_installations``; the
installation itself (bot token, refresh token, scopes...) is JSON encrypted with Fernet
(AES-128-CBC + HMAC-SHA256), keyed from ``BRIEFBOT_SECRET_KEY``: either a Fernet key
(``Fernet.generate_key()``) or any passphrase of at least 32 characters (stretched with
HKDF-SHA256). Only the team and enterprise ids are stored in clear, to find the row.

The OAuth ``state`` is issued and checked by :class:`MemoryStateStore` (one process;
states expire after 10 minutes), together with Bolt's browser cookie check.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import Table, delete, select

from bot.errors import ConfigError
from bot.storage.sql import SqlStorage
from bot.storage.tables import SlackInstallationRow

log = logging.getLogger(__name__)

ENV_SECRET_KEY = "BRIEFBOT_SECRET_KEY"  # noqa: S105 - the variable's name
MIN_PASSPHRASE = 32
_table = cast(Table, SlackInstallationRow.__table__)

_FIELDS = (
    "app_id",
    "enterprise_id",
    "enterprise_name",
    "enterprise_url",
    "team_id",
    "team_name",
    "bot_token",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_refresh_token",
    "bot_token_expires_at",
    "user_id",
    "user_token",
    "user_scopes",
    "user_refresh_token",
    "user_token_expires_at",
    "incoming_webhook_url",
    "incoming_webhook_channel",
    "incoming_webhook_channel_id",
    "incoming_webhook_configuration_url",
    "is_enterprise_install",
    "token_type",
    "installed_at",
    "custom_values",
)


def fernet_for(secret: str) -> Fernet:
    """The cipher for ``BRIEFBOT_SECRET_KEY``: a Fernet key as it is, else a passphrase
    of at least 32 characters stretched with HKDF-SHA256. ConfigError otherwise."""
    secret = secret.strip()
    try:
        raw = base64.urlsafe_b64decode(secret.encode())
        if len(raw) == 32 and len(secret) == 44:
            return Fernet(secret.encode())
    except (binascii.Error, ValueError):
        pass
    if len(secret) < MIN_PASSPHRASE:
        raise ConfigError(
            f"too short: use at least {MIN_PASSPHRASE} random characters, or a key from "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
            ".decode())'",
            key=ENV_SECRET_KEY,
        )
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"briefbot", info=b"slack installations"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _to_json(installation: Installation) -> dict[str, Any]:
    return {name: getattr(installation, name, None) for name in _FIELDS}


def _from_json(data: dict[str, Any]) -> Installation:
    return Installation(**{k: v for k, v in data.items() if k in _FIELDS})


class SqlInstallationStore(AsyncInstallationStore):
    """Installations in the ``slack_installations`` table, encrypted (module docstring).
    One installation per workspace: a reinstall replaces it."""

    def __init__(self, storage: SqlStorage, secret_key: str) -> None:
        self.storage = storage
        self.fernet = fernet_for(secret_key)
        self._logger = log

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @staticmethod
    def _ids(
        enterprise_id: str | None, team_id: str | None, is_enterprise: bool
    ) -> tuple[str, str]:
        return enterprise_id or "", "" if is_enterprise else (team_id or "")

    async def async_save(self, installation: Installation) -> None:
        ent, team = self._ids(
            installation.enterprise_id, installation.team_id, installation.is_enterprise_install
        )
        blob = self.fernet.encrypt(json.dumps(_to_json(installation)).encode()).decode()
        where = (_table.c.enterprise_id == ent) & (_table.c.team_id == team)
        async with self.storage._tx() as conn:
            await conn.execute(delete(_table).where(where))
            await conn.execute(
                _table.insert().values(
                    enterprise_id=ent,
                    team_id=team,
                    is_enterprise_install=bool(installation.is_enterprise_install),
                    installed_at=datetime.fromtimestamp(installation.installed_at, UTC),
                    data=blob,
                )
            )
        log.info("Slack installation saved for team %s", team or ent)

    async def async_save_bot(self, bot: Bot) -> None:
        # bots are saved with their installation (async_save); nothing else calls this
        return None

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise: bool | None
    ) -> Installation | None:
        ent, team = self._ids(enterprise_id, team_id, bool(is_enterprise))
        stmt = select(_table.c.data).where(
            (_table.c.enterprise_id == ent) & (_table.c.team_id == team)
        )
        async with self.storage._tx() as conn:
            blob = (await conn.execute(stmt)).scalar_one_or_none()
        if blob is None:
            return None
        try:
            data = json.loads(self.fernet.decrypt(blob.encode()))
        except (InvalidToken, ValueError):
            log.error(  # noqa: TRY400 - a changed key, not a bug: no traceback
                "the Slack installation of team %s cannot be decrypted: was %s changed? "
                "Reinstall Briefbot in that workspace.",
                team or ent,
                ENV_SECRET_KEY,
            )
            return None
        return _from_json(data)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await self._find(enterprise_id, team_id, is_enterprise_install)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = await self._find(enterprise_id, team_id, is_enterprise_install)
        if found is None or not found.bot_token:
            return None
        return found.to_bot()

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        ent = enterprise_id or ""
        team = team_id or ""
        async with self.storage._tx() as conn:
            await conn.execute(
                delete(_table).where((_table.c.enterprise_id == ent) & (_table.c.team_id == team))
            )

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def raw_rows(self) -> list[dict[str, Any]]:
        """The stored rows as they are (for checks that nothing is in clear)."""
        async with self.storage._tx() as conn:
            return [dict(r._mapping) for r in (await conn.execute(select(_table))).all()]


class MemoryStateStore(AsyncOAuthStateStore):
    """OAuth ``state`` values issued by this process, each valid once for 10 minutes."""

    def __init__(self, expiration_seconds: int = 600) -> None:
        self.expiration_seconds = expiration_seconds
        self._issued: dict[str, float] = {}

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        now = time.monotonic()
        self._issued = {s: t for s, t in self._issued.items() if t > now}
        state = secrets.token_urlsafe(24)
        self._issued[state] = now + self.expiration_seconds
        return state

    async def async_consume(self, state: str) -> bool:
        expires = self._issued.pop(state, None)
        return expires is not None and expires > time.monotonic()
