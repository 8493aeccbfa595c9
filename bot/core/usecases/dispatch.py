"""The one map from a command name ("brief", "feeds add") to the use case handling it.

:meth:`Dispatcher.dispatch` validates the arguments against the command spec
(:mod:`bot.core.commands`), checks the manage permission, runs the handler and returns
a platform-neutral :class:`~bot.core.replies.Reply`. Every expected failure comes back
as an error Reply (ephemeral) with a message fit for the user; state is unchanged
(every handler validates before it writes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot.core.commands import get_command, validate_args
from bot.core.replies import ChannelContext, Reply
from bot.errors import BriefbotError, PermissionDenied

log = logging.getLogger(__name__)

MANAGE_DENIED = (
    "Changing this channel's setup needs the Manage Server permission. "
    "Ask someone who has it, or use /brief, /watchlist and /status to look."
)

Handler = Callable[..., Awaitable[Reply]]


class Dispatcher:
    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        #: command name -> handler (a dict: a test may swap one handler)
        self.handlers: dict[str, Handler] = dict(handlers)

    async def dispatch(self, ctx: ChannelContext, command: str, args: dict[str, Any]) -> Reply:
        """Run ``command`` ("brief", "feeds add") with ``args`` (option name -> value, as
        typed by the platform or parsed from text). Expected failures become an error
        Reply; anything else is a bug and propagates (the adapter logs it)."""
        try:
            spec = get_command(command)
            typed = validate_args(spec, args)
            if spec.manage and not ctx.can_manage:
                raise PermissionDenied(MANAGE_DENIED)
            return await self.handlers[spec.name](ctx, **typed)
        except BriefbotError as err:
            log.info(
                "/%s from %s in %s:%s: %s", command, ctx.user, ctx.platform, ctx.channel_id, err
            )
            return Reply.failure(err)
