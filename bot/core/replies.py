"""What a command answers and who is asking: platform-neutral models for adapters.

A :class:`Reply` is text lines, an optional :class:`~bot.core.digest.Digest` (rendered by
the adapter with its own renderer), an optional file attachment, and whether only the
caller sees it (errors and configuration replies are ephemeral; briefings are visible).

``lines`` are plain text (no markup) and may quote user or feed text (entry names,
aliases, feed titles, search hits): an adapter that posts Markdown passes each line
through ``bot.core.safety.inert`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import BriefbotError

if TYPE_CHECKING:
    from bot.core.digest import Digest


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """Who is calling from where. ``can_manage``: the platform says the user may change
    the channel's configuration (Discord: Manage Server)."""

    platform: str  # "console", "discord", "slack"
    channel_id: str  # the platform's channel id
    guild_id: str | None = None
    channel_name: str | None = None
    user: str | None = None  # display name, for logs and attributions
    can_manage: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Reply:
    lines: tuple[str, ...] = ()
    digest: Digest | None = None
    #: only the caller sees it (Discord ephemeral); briefings are visible to the channel
    ephemeral: bool = True
    attachment: Attachment | None = None
    #: the command failed (bad input, permission, not found...); ``lines`` say why
    error: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @classmethod
    def message(cls, *lines: str, ephemeral: bool = True) -> Reply:
        return cls(lines=tuple(lines), ephemeral=ephemeral)

    @classmethod
    def failure(cls, err: BriefbotError) -> Reply:
        text = str(err) or type(err).__name__
        return cls(lines=tuple(text.splitlines()) or (text,), error=True)
