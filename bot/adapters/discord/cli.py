"""``briefbot discord sync`` and ``briefbot discord invite``.

``sync`` registers the slash commands with Discord now (globally, or in a test guild,
where changes show at once), whatever the stored hash says; ``briefbot run`` syncs by
itself only when the commands changed. ``invite`` prints the URL that adds the bot to a
server with the scopes and permissions it needs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import discord
from discord import app_commands
from typing_extensions import override

from bot.adapters.discord.bot import api_base, use_api_base
from bot.adapters.discord.commands import (
    STATE_FILE,
    Handler,
    SyncState,
    build_tree,
    sync_commands,
)
from bot.app import load_config
from bot.config import secret
from bot.core.commands import Autocomplete, CommandSpec
from bot.errors import ConfigError

#: View Channel, Send Messages, Embed Links, Attach Files, Read Message History
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
SCOPES = ("bot", "applications.commands")

SET_UP_HELP = (
    "briefbot discord {action}: DISCORD_TOKEN is not set. Set it to your bot's token "
    "(Discord Developer Portal → your application → Bot → Reset Token), e.g.\n"
    "  export DISCORD_TOKEN=...\n"
    "{extra}"
)


def invite_url(application_id: int) -> str:
    """``https://discord.com/oauth2/authorize?client_id=…&scope=bot+applications.commands
    &permissions=…``"""
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=SCOPES)


def add_arguments(parser: argparse.ArgumentParser, _name: str) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sync = sub.add_parser(
        "sync",
        help="register the slash commands with Discord now",
        description="Register the slash commands with Discord now: in the test guild "
        "(discord.test_guild, or --guild) if one is set, where they show at once, else "
        "globally.",
    )
    sync.add_argument(
        "--guild",
        type=int,
        metavar="ID",
        help="sync to this server only (default: discord.test_guild)",
    )
    sync.add_argument(
        "--global",
        dest="everywhere",
        action="store_true",
        help="sync globally even if a test guild is configured",
    )
    invite = sub.add_parser(
        "invite",
        help="print the URL that adds the bot to a server",
        description="Print the OAuth2 URL that adds the bot to a server, with the scopes "
        "bot and applications.commands and the permissions it needs.",
    )
    invite.add_argument(
        "--app-id",
        type=int,
        metavar="ID",
        help="the application id (default: asked from Discord with the token)",
    )


class _NoHandler(Handler):
    """The tree built for syncing never runs a command."""

    @override
    async def run(
        self, interaction: discord.Interaction[Any], spec: CommandSpec, args: dict[str, Any]
    ) -> None:
        raise RuntimeError("not running")

    @override
    async def autocomplete(
        self, interaction: discord.Interaction[Any], what: Autocomplete, current: str
    ) -> list[app_commands.Choice[str]]:
        return []


async def main(args: argparse.Namespace) -> int:
    action = getattr(args, "action", None)
    if action not in ("sync", "invite"):
        print(
            "usage: briefbot discord {sync,invite} (see briefbot discord --help)", file=sys.stderr
        )
        return 2
    if action == "invite" and args.app_id:
        print(invite_url(args.app_id))
        return 0
    token = secret("DISCORD_TOKEN")
    if not token:
        extra = (
            "Or give the application id: briefbot discord invite --app-id ID\n"
            if (action == "invite")
            else ""
        )
        print(SET_UP_HELP.format(action=action, extra=extra), file=sys.stderr, end="")
        return 2
    config = load_config(args.config)
    settings = config.settings
    use_api_base(api_base(settings.discord))
    client = discord.Client(intents=discord.Intents.none(), allowed_mentions=None)
    try:
        try:
            await client.login(token)
        except discord.LoginFailure:
            raise ConfigError("Discord refused the token", key="DISCORD_TOKEN") from None
        if client.application_id is None:  # pragma: no cover - login sets it
            raise ConfigError("Discord did not say which application this token is for")
        if action == "invite":
            print(invite_url(client.application_id))
            return 0
        guild_id = None if args.everywhere else (args.guild or settings.discord.test_guild)
        tree = build_tree(client, _NoHandler())
        state = SyncState(settings.storage.resolved_data_dir() / STATE_FILE)
        try:
            synced = await sync_commands(tree, guild_id=guild_id, state=state, force=True)
        except discord.HTTPException as err:
            where = f"in server {guild_id}" if guild_id else "globally"
            print(
                f"briefbot discord sync: Discord refused the commands {where}: "
                f"{err.status} {err.text}",
                file=sys.stderr,
            )
            if err.status == 403 and guild_id:
                print(
                    "  Is the bot in that server, invited with the applications.commands "
                    "scope? (briefbot discord invite)",
                    file=sys.stderr,
                )
            return 1
        names = sorted(c.name for c in synced or [])
        where = (
            f"in server {guild_id} (shown at once)"
            if guild_id
            else ("globally (every server the bot is in)")
        )
        print(f"Synced {len(names)} slash commands {where}: /{', /'.join(names)}")
        return 0
    finally:
        await client.close()
