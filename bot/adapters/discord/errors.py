"""The one place where errors become Discord replies (the command tree's ``on_error``).

Expected errors are :class:`~bot.errors.BriefbotError`: their text is the message, shown
privately. (The core already turns the errors of a use case into an error reply; what
reaches this handler is raised around it: a DM, an unreadable attachment.) discord.py's
own errors about a command (a stale command the tree does not know, an option value it
could not convert) get a clear sentence too. Anything else is a bug: logged with its
traceback, and the user sees a short apology, never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bot.core.service import MANAGE_DENIED
from bot.errors import BriefbotError

log = logging.getLogger(__name__)

APOLOGY = (
    "Sorry, something went wrong on Briefbot's side. It has been logged; please try "
    "again in a minute, and check /status if it keeps happening."
)
STALE = (
    "This command is out of date (Briefbot was updated). Discord refreshes its command "
    "list within minutes; an admin can run `briefbot discord sync` to do it now."
)


def user_message(error: BaseException) -> str | None:
    """The message for an expected error, or None for a bug."""
    original: BaseException = error
    if isinstance(error, app_commands.CommandInvokeError):
        original = error.original
    if isinstance(original, BriefbotError):
        return str(original) or type(original).__name__
    if isinstance(error, app_commands.TransformerError):
        return f"{error.value!r} is not a valid value for this option."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "Briefbot's commands work in a server's text channel, not in direct messages."
    if isinstance(error, app_commands.MissingPermissions):
        return MANAGE_DENIED
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.CheckFailure):
        return "You cannot use this command here."
    if isinstance(error, app_commands.CommandSignatureMismatch | app_commands.CommandNotFound):
        return STALE
    return None


async def handle_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Answer ``interaction`` with the error's message (privately); log bugs."""
    from bot.adapters.discord.interactions import Responder

    text = user_message(error)
    name = interaction.command.qualified_name if interaction.command else "?"
    if text is None:
        original = getattr(error, "original", error)
        log.error(
            "/%s failed (guild %s, channel %s, user %s)",
            name,
            interaction.guild_id,
            interaction.channel_id,
            interaction.user.id,
            exc_info=(type(original), original, original.__traceback__),
        )
        text = APOLOGY
    else:
        log.info("/%s refused: %s", name, text)
    try:
        await Responder(interaction).error("⚠️ " + text)
    except discord.HTTPException as err:  # the interaction expired, or Discord is down
        log.warning("could not tell the user about an error in /%s: %s", name, err)
