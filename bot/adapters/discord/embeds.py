"""Digests, briefs and instant alerts as Discord embeds; command replies as message text.

Everything here is pure (no network): a :class:`~bot.core.digest.Digest` becomes a list of
:class:`Outgoing` messages that respect Discord's limits, in order:

- an embed: title 256, description 4096, 25 fields, field name 256 / value 1024,
  footer 2048, author 256; a message: at most 10 embeds and 6000 characters in all of
  them, content 2000. We stay a little under each limit.
- a digest or brief is a header embed (title, period as Discord timestamps, counts,
  failing feeds) followed by one embed per watchlist entry (coloured by the entry's kind:
  actors blue, topics green, a story-mode list grey). An entry with more stories than
  fit is continued in the next embed ("(cont.)"); embeds are packed into as few messages
  as the limits allow and each message's last embed says "part i/n".
- an instant alert is one embed per story: the title links to the story, the author
  line names the tracked entries, the time is the embed's timestamp.

Feed text is untrusted: every title, outlet, summary and entry name goes through
:func:`bot.core.safety.inert` (mentions, auto-links and Markdown neutralised); the only
links are the stories' own URLs, through :func:`bot.core.safety.safe_url`. Mentions never
ping anyway (``allowed_mentions`` is none on every send), but the text also stays inert
when quoted or copied.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import discord

from bot.core.digest import Digest, DigestGroup, StoryLine
from bot.core.models import EntryKind
from bot.core.render import (
    counts_text,
    failed_line,
    format_outlets,
    plural,
    why_text,
)
from bot.core.replies import Attachment, Reply
from bot.core.safety import inert, safe_url
from bot.core.text import truncate

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
MESSAGE_EMBEDS_MAX = 10
CONTENT_MAX = 2000

#: what we allow ourselves (a margin under each limit)
DESCRIPTION_BUDGET = 3800
MESSAGE_BUDGET = 5800
CONTENT_BUDGET = 1900
STORY_MAX = 600  # one story line in a digest embed
LINK_MAX = 500  # a longer story URL is not linked (it would eat the budget)
PART_FOOTER_RESERVE = 120

COLOUR_HEADER = 0x5865F2
COLOUR_WARNING = 0xF0B232
COLOUR_BY_KIND: dict[EntryKind | None, int] = {
    EntryKind.ACTOR: 0x3B82F6,
    EntryKind.TOPIC: 0x10B981,
    None: 0x6B7280,
}

NO_MENTIONS = discord.AllowedMentions.none()


@dataclass
class Outgoing:
    """One Discord message to send."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    attachment: Attachment | None = None

    def file(self) -> discord.File | None:
        if self.attachment is None:
            return None
        return discord.File(io.BytesIO(self.attachment.data), filename=self.attachment.filename)


def timestamp(when: datetime, style: str = "f") -> str:
    """A Discord timestamp: shown in each reader's own time zone and locale."""
    return f"<t:{int(when.timestamp())}:{style}>"


def colour_for(kind: EntryKind | None) -> int:
    return COLOUR_BY_KIND.get(kind, COLOUR_BY_KIND[None])


def _cut(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters with an ellipsis, never leaving a lone escaping
    backslash or half a Discord timestamp at the end."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    stripped = cut.rstrip("\\")
    if (len(cut) - len(stripped)) % 2:
        cut = cut[:-1]
    open_ts = cut.rfind("<t:")
    if open_ts >= 0 and ">" not in cut[open_ts:]:
        cut = cut[:open_ts]
    return cut + "…"


# ---------------------------------------------------------------------------------------
# digests and briefs


def story_line(line: StoryLine, *, limit: int = STORY_MAX, tags: bool = True) -> str:
    """``• [Title](url) — Reuters, SCMP +2 · <t:…:R> · 🏷 Wang Yi`` within ``limit``."""
    url = safe_url(line.link)
    if url is not None and len(url) > LINK_MAX:
        url = None
    meta = f" — {inert(format_outlets(line.outlets))} · {timestamp(line.time, 'R')}"
    tag_text = ""
    if tags and line.tags:
        tag_text = " · 🏷 " + ", ".join(inert(truncate(t.name, 40)) for t in line.tags[:4])
        if len(line.tags) > 4:
            tag_text += f" +{len(line.tags) - 4}"
    fixed = len("• ") + len(meta) + len(tag_text) + (len(url) + 4 if url else 0)
    room = max(20, limit - fixed)
    title = inert(truncate(line.title, room))
    while len(title) > room > 12:  # escaping made it longer
        room -= max(1, len(title) - room)
        title = inert(truncate(line.title, room))
    head = f"[{title}]({url})" if url else title
    return _cut(f"• {head}{meta}{tag_text}", limit)


def _header_embed(digest: Digest) -> discord.Embed:
    lines = [f"{timestamp(digest.period_start)} – {timestamp(digest.period_end)}"]
    if digest.is_empty:
        lines.append(f"No new matching stories since {timestamp(digest.period_start)}.")
    else:
        lines.append(counts_text(digest))
    if digest.failed_feeds:
        lines.append(failed_line(digest, markdown=True, width=1000))
    colour = COLOUR_WARNING if digest.failed_feeds else COLOUR_HEADER
    return discord.Embed(
        title=_cut(inert(digest.title), TITLE_MAX),
        description=_cut("\n".join(lines), DESCRIPTION_BUDGET),
        colour=colour,
    )


def _group_embeds(group: DigestGroup) -> list[discord.Embed]:
    label = inert(truncate(group.label, 100)) if group.label else None
    colour = colour_for(group.kind)
    embeds: list[discord.Embed] = []
    lines: list[str] = []
    size = 0
    for story in group.stories:
        text = story_line(story)
        if lines and size + 1 + len(text) > DESCRIPTION_BUDGET:
            embeds.append(_group_embed(label, lines, colour, cont=bool(embeds)))
            lines, size = [], 0
        lines.append(text)
        size += len(text) + (1 if size else 0)
    if lines:
        embeds.append(_group_embed(label, lines, colour, cont=bool(embeds)))
    return embeds


def _group_embed(label: str | None, lines: list[str], colour: int, *, cont: bool) -> discord.Embed:
    title = None
    if label:
        title = f"{label} (cont.)" if cont else label
    return discord.Embed(title=title, description="\n".join(lines), colour=colour)


def alert_embed(line: StoryLine, group: DigestGroup, digest: Digest) -> discord.Embed:
    """One story of an instant alert."""
    names = group.label or ", ".join(w.name for w in line.why[:2]) or digest.title
    url = safe_url(line.link)
    embed = discord.Embed(
        title=_cut(inert(line.title), TITLE_MAX),
        url=url,
        colour=colour_for(group.kind),
        timestamp=line.time,
    )
    embed.set_author(name=_cut("🔔 " + truncate(names, 200), AUTHOR_MAX))
    parts = []
    if line.summary:
        parts.append(inert(line.summary))
    parts.append(f"{inert(format_outlets(line.outlets, 4))} · {timestamp(line.time, 'R')}")
    embed.description = _cut("\n".join(parts), 1500)
    if line.why:
        embed.add_field(name="Matched", value=_cut(inert(why_text(line)), FIELD_VALUE_MAX))
    if line.tags:
        tags = ", ".join(inert(t.name) for t in line.tags)
        embed.add_field(name="Also tagged", value=_cut(tags, FIELD_VALUE_MAX))
    return embed


def digest_embeds(digest: Digest) -> list[discord.Embed]:
    """Every embed of the digest, in order (not yet packed into messages)."""
    if digest.kind == "alert":
        return [alert_embed(line, g, digest) for g in digest.groups for line in g.stories]
    embeds = [_header_embed(digest)]
    for group in digest.groups:
        embeds.extend(_group_embeds(group))
    return embeds


def pack(embeds: Sequence[discord.Embed]) -> list[list[discord.Embed]]:
    """Embeds into messages: at most 10 per message and MESSAGE_BUDGET characters."""
    messages: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    size = 0
    for embed in embeds:
        n = len(embed)
        if current and (
            len(current) >= MESSAGE_EMBEDS_MAX or size + n > MESSAGE_BUDGET - PART_FOOTER_RESERVE
        ):
            messages.append(current)
            current, size = [], 0
        current.append(embed)
        size += n
    if current:
        messages.append(current)
    return messages


def _footer_note(digest: Digest) -> str | None:
    if not digest.truncated or digest.kind == "alert":
        return None
    limit = f" (limit {digest.max_stories})" if digest.max_stories else ""
    more = plural(digest.truncated, "more story", "more stories")
    return f"…and {more} not shown{limit}."


def digest_messages(digest: Digest) -> list[Outgoing]:
    """The digest (or brief, or alert) as messages within Discord's limits, in order."""
    groups = pack(digest_embeds(digest))
    n = len(groups)
    note = _footer_note(digest)
    out: list[Outgoing] = []
    for i, embeds in enumerate(groups, 1):
        footer: list[str] = []
        if i == n and note:
            footer.append(note)
        if n > 1:
            footer.append(f"part {i}/{n}")
        if footer:
            embeds[-1].set_footer(text=_cut(" · ".join(footer), FOOTER_MAX))
        out.append(Outgoing(embeds=embeds))
    return out


# ---------------------------------------------------------------------------------------
# command replies (text)

_URL = re.compile(r"https?://[^\s<>\"`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]'\""


def safe_text(line: str) -> str:
    """A line of reply text made inert (mentions, Markdown, auto-links), except the plain
    http(s) URLs in it, which stay clickable as ``<url>`` (shown in full, no preview)."""
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(line):
        raw = m.group(0)
        while raw and raw[-1] in _TRAILING:
            if raw[-1] == ")" and raw.count("(") >= raw.count(")"):
                break  # a balanced parenthesis belongs to the URL
            raw = raw[:-1]
        url = safe_url(raw)
        if url is None:
            continue
        out.append(inert(line[pos : m.start()]))
        out.append(f"<{url}>")
        pos = m.start() + len(raw)
    out.append(inert(line[pos:]))
    return "".join(out)


def text_chunks(lines: Iterable[str], *, budget: int = CONTENT_BUDGET) -> list[str]:
    """Reply lines, made safe, packed into messages of at most ``budget`` characters."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for raw in lines:
        text = _cut(safe_text(raw), budget)
        if current and size + 1 + len(text) > budget:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(text)
        size += len(text) + (1 if size else 0)
    if current:
        chunks.append("\n".join(current))
    return [c for c in chunks if c.strip()]


ERROR_PREFIX = "⚠️ "


def reply_messages(reply: Reply) -> list[Outgoing]:
    """A command's reply as messages: its text, then the digest's embeds (the first
    embeds ride with the last text message), the attachment on the first message."""
    lines = list(reply.lines)
    if reply.error and lines:
        lines[0] = ERROR_PREFIX + lines[0] if not lines[0].startswith("⚠") else lines[0]
    out = [Outgoing(content=c) for c in text_chunks(lines)]
    if reply.digest is not None:
        parts = digest_messages(reply.digest)
        if out and parts:
            out[-1].embeds = parts[0].embeds
            parts = parts[1:]
        out.extend(parts)
    if reply.attachment is not None:
        if out:
            out[0].attachment = reply.attachment
        else:
            out.append(Outgoing(content=None, attachment=reply.attachment))
    if not out:
        out.append(Outgoing(content="Done."))
    return out


__all__ = [
    "NO_MENTIONS",
    "Outgoing",
    "alert_embed",
    "digest_embeds",
    "digest_messages",
    "pack",
    "reply_messages",
    "safe_text",
    "story_line",
    "text_chunks",
    "timestamp",
]
