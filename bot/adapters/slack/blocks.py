"""Digests, alerts and replies as Block Kit messages, within Slack's limits.

Limits kept (Slack refuses a message past them): 50 blocks a message, 3,000 characters
of section text, 150 of header text, 10 context elements. A digest too long for one
message is split in order over several: a cut falls between stories only, a group's
label always comes with its first story, a group continued in the next message repeats
its label with "(cont.)", and every message has a ``text`` fallback (what
notifications and screen readers show).

A story: its linked title, its outlets and entries, and its time as a Slack date token
(``<!date^1699945200^{date_short_pretty} {time}|Tue 14 Nov 09:15>``), so that each
reader sees it in their own time zone (the fallback is the channel's local time).

Safety: everything from feeds (titles, outlet names, entry names, reply lines quoting
them) goes through :func:`escape` (``&``, ``<``, ``>`` as entities), so it can never
become ``<!channel>``, ``<!here>``, ``<@U…>``, ``<#C…>`` or a link; scheme and ``www.``
are broken so clients do not auto-link it either. The only link is the story's own URL
(:func:`bot.core.safety.safe_url`). Messages never set ``link_names``; the sink turns
``unfurl_links`` and ``unfurl_media`` off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.digest import Digest, DigestGroup, StoryLine
from bot.core.render import (
    counts_text,
    footer_line,
    format_outlets,
    plural,
    why_text,
)
from bot.core.replies import Reply
from bot.core.safety import neutralize_links, safe_url
from bot.core.text import truncate

MAX_BLOCKS = 50
SECTION_MAX = 3000
HEADER_MAX = 150
CONTEXT_MAX = 10
#: a message's fallback text (Slack truncates ``text`` past 40,000; notifications are short)
FALLBACK_MAX = 300
#: keep a message's total text well under Slack's 40,000-character message limit
MESSAGE_CHARS = 30_000
TITLE_MAX = 250
COMMAND = "/briefbot"

Block = dict[str, Any]


@dataclass
class SlackMessage:
    """One message: its fallback ``text`` and its blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


# -- text safety ------------------------------------------------------------------------


def escape(text: str) -> str:
    """Untrusted text for mrkdwn: ``&``, ``<``, ``>`` as entities (no mention, no link,
    no channel or user token can be written), URLs broken so they are not auto-linked."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return neutralize_links(text)


def link_url(url: str) -> str:
    """A safe URL inside ``<url|label>``: ``&`` ``<`` ``>`` ``|`` cannot end it."""
    return url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


_SLASH = re.compile(
    r"(?<![\w/<])/(?=(?:brief|digest|track|untrack|watchlist|feeds|search|test"
    r"|status|help)\b)"
)


#: the core words the manage permission as Discord's; in Slack it is admins and owners
_MANAGE = re.compile(r"(?:the )?Manage Server(?: permission)?")
SLACK_MANAGE = "a workspace admin or owner (or [slack] managers)"


def slack_commands(text: str) -> str:
    """The core names commands as Discord does (``/digest schedule``); in Slack they are
    subcommands of ``/briefbot`` (``/briefbot digest schedule``), and the manage
    permission is a workspace admin or owner."""
    return _MANAGE.sub(SLACK_MANAGE, _SLASH.sub(COMMAND + " ", text))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_MAX)}}


def header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _cut(text, HEADER_MAX) or "Briefbot", "emoji": True},
    }


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": _cut(t, SECTION_MAX)} for t in texts[:CONTEXT_MAX] if t
        ],
    }


# -- stories ------------------------------------------------------------------------------


def date_token(digest: Digest, line: StoryLine) -> str:
    """``<!date^ts^{date_short_pretty} {time}|fallback>``: each reader's own time zone."""
    ts = int(line.time.timestamp())
    fallback = escape(digest.line_time(line.time)).replace("|", "/")  # with its zone
    return f"<!date^{ts}^{{date_short_pretty}} {{time}}|{fallback}>"


def story_text(line: StoryLine, digest: Digest, *, with_why: bool = True) -> str:
    """``*<url|Title>*`` then outlets · time · items, then why it matched."""
    title = escape(truncate(line.title, TITLE_MAX))
    url = safe_url(line.link)
    head = f"*<{link_url(url)}|{title}>*" if url else f"*{title}*"
    meta = [escape(format_outlets(line.outlets)), date_token(digest, line)]
    if line.item_count > 1:
        meta.append(plural(line.item_count, "item"))
    text = f"{head}\n{' · '.join(meta)}"
    if line.tags:
        text += "\n" + escape("Also: " + ", ".join(t.name for t in line.tags[:5]))
    elif with_why and line.why:
        text += "\n_" + escape(why_text(line)) + "_"
    return _cut(text, SECTION_MAX)


def _group_label(group: DigestGroup, cont: bool = False) -> str | None:
    if group.label is None:
        return None
    return f"*{escape(truncate(group.label, 100))}*" + (" (cont.)" if cont else "")


def fallback_text(digest: Digest, part: int = 0, parts: int = 1) -> str:
    """The notification text: title, counts (or nothing new), the part number."""
    what = digest.empty_text() if digest.is_empty else counts_text(digest)
    numbered = f" ({part + 1}/{parts})" if parts > 1 else ""
    return _cut(escape(f"{digest.title}{numbered}: {what}"), FALLBACK_MAX)


def _head_blocks(digest: Digest) -> list[Block]:
    blocks = [header(f"📰 {truncate(digest.title, 100)}")]
    first = [escape(digest.period_text())]
    first.append(escape(digest.empty_text() if digest.is_empty else counts_text(digest)))
    blocks.append(context(*first))
    if digest.failed_feeds:
        feeds = digest.failed_feeds
        names = ", ".join(f"{truncate(f.name, 40)} ({truncate(f.error, 60)})" for f in feeds[:5])
        more = f" +{len(feeds) - 5} more" if len(feeds) > 5 else ""
        blocks.append(context(escape(f"⚠ {plural(len(feeds), 'feed')} failing: {names}{more}")))
    return blocks


def _size(blocks: Iterable[Block]) -> int:
    total = 0
    for b in blocks:
        if "text" in b:
            total += len(b["text"]["text"])
        for e in b.get("elements", ()):
            total += len(e.get("text", ""))
    return total


def digest_messages(digest: Digest, *, max_blocks: int = MAX_BLOCKS) -> list[SlackMessage]:
    """The digest (or brief) as one or more messages, in order (module docstring)."""
    if digest.kind == "alert":
        return alert_messages(digest)
    head = _head_blocks(digest)
    parts: list[list[Block]] = []
    cur: list[Block] = list(head)

    def room(n: int) -> bool:
        return len(cur) + n <= max_blocks

    for group in digest.groups:
        label = _group_label(group)
        for i, line in enumerate(group.stories):
            block = section(story_text(line, digest, with_why=digest.group_by == "entry"))
            need = [block]
            if i == 0 and label:
                need.insert(0, section(label))
            too_big = _size(cur) + _size(need) > MESSAGE_CHARS
            if not room(len(need)) or too_big:
                parts.append(cur)
                cur = []
                cont = _group_label(group, cont=i > 0)
                if cont:
                    need = [section(cont), block]
            cur.extend(need)
        # a divider between groups, only where the next label and story fit too
        if label is not None and group is not digest.groups[-1] and room(3):
            cur.append({"type": "divider"})
    footer = footer_line(digest)
    if footer:
        if not room(1):
            parts.append(cur)
            cur = []
        cur.append(context(escape(footer)))
    if cur:
        parts.append(cur)
    return [
        SlackMessage(text=fallback_text(digest, i, len(parts)), blocks=blocks)
        for i, blocks in enumerate(parts)
    ]


def alert_messages(digest: Digest) -> list[SlackMessage]:
    """An instant alert: one short message per story."""
    out = []
    for group in digest.groups:
        for line in group.stories:
            names = group.label or ", ".join(w.name for w in line.why[:2]) or digest.title
            label = escape(truncate(names, 100))
            blocks = [section(f"🔔 *{label}*\n" + story_text(line, digest))]
            text = _cut(escape(f"🔔 {names}: {line.title}"), FALLBACK_MAX)
            out.append(SlackMessage(text=text, blocks=blocks))
    if not out:  # an alert always carries a story; never send nothing
        out.append(SlackMessage(text=fallback_text(digest), blocks=_head_blocks(digest)))
    return out


# -- replies ----------------------------------------------------------------------------


def text_sections(lines: Sequence[str]) -> list[Block]:
    """Plain reply lines (escaped, commands as ``/briefbot …``) as sections of at most
    3,000 characters, cut between lines."""
    blocks: list[Block] = []
    buf = ""
    for raw in lines:
        line = escape(slack_commands(raw))
        if len(line) > SECTION_MAX:
            line = _cut(line, SECTION_MAX)
        candidate = f"{buf}\n{line}" if buf else line
        if len(candidate) > SECTION_MAX:
            blocks.append(section(buf))
            buf = line
        else:
            buf = candidate
    if buf:
        blocks.append(section(buf))
    return blocks


def plain_fallback(lines: Sequence[str]) -> str:
    text = " ".join(slack_commands(line) for line in lines[:3]).strip()
    return _cut(escape(text), FALLBACK_MAX) or "Briefbot"


def reply_messages(reply: Reply) -> list[SlackMessage]:
    """A command's answer: its text lines, then its digest (an attachment is uploaded
    separately, see the command handler)."""
    out: list[SlackMessage] = []
    lines = list(reply.lines)
    if reply.error and lines:
        lines[0] = "⚠️ " + lines[0]
    if lines:
        sections = text_sections(lines)
        for i in range(0, len(sections), MAX_BLOCKS):
            out.append(
                SlackMessage(text=plain_fallback(lines), blocks=sections[i : i + MAX_BLOCKS])
            )
    if reply.digest is not None:
        out.extend(digest_messages(reply.digest))
    if not out and reply.attachment is None:
        out.append(SlackMessage(text="Done.", blocks=[section("Done.")]))
    return out


def validate_blocks(blocks: Sequence[Block]) -> None:
    """Check blocks with slack_sdk's Block Kit models (raises SlackObjectFormationError
    on a block Slack would refuse) and the per-message limit."""
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block as SdkBlock

    if len(blocks) > MAX_BLOCKS:
        raise SlackObjectFormationError(f"{len(blocks)} blocks: at most {MAX_BLOCKS}")
    for raw in blocks:
        parsed = SdkBlock.parse(raw)
        if parsed is None:
            raise SlackObjectFormationError(f"not a block: {raw!r}")
        parsed.validate_json()
