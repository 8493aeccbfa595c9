"""Text rendering of a :class:`~bot.core.digest.Digest`: the console's output and the
template the Discord and Slack renderers follow.

Safety: every piece of feed text goes through :func:`bot.core.safety.inert`, and the
only link printed is the story's own URL, through :func:`bot.core.safety.safe_url`.

Layout (Markdown; ``markdown=False`` gives the same without markup, the URL on its own
indented line)::

    **Digest** · Tue 14 Nov 08:00 – Wed 15 Nov 08:00 (Asia/Shanghai)
    3 stories · 7 items
    ⚠ 2 feeds failing: Reuters (HTTP 500), SCMP (timed out)

    **Wang Yi**
    • [Blinken meets Wang Yi in Washington](<https://…>) — Reuters, SCMP +2 · 09:15 ·
      \\[Wang Yi: "王毅" in title\\]      (one line; wrapped here)

Splitting. :func:`render_text` returns messages of at most ``budget`` characters: cuts
fall between story lines only (an over-long story line is shortened: title first, with an
ellipsis), a group header always has its first story with it, a group continued in the
next part repeats its header with "(cont.)", and parts are numbered "(1/3)".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.digest import Digest, StoryLine, Why
from bot.core.safety import inert, safe_url
from bot.core.text import truncate

BULLET = "•"
MIN_BUDGET = 200
MAX_OUTLET_NAMES = 2
MAX_WHY = 2
MAX_FAILED_NAMES = 5
LABEL_MAX = 100

# ---------------------------------------------------------------------------------------
# pieces of a line


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 story", "2 stories" (pass the plural when it is not word + "s")."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def format_outlets(outlets: Sequence[str], max_names: int = MAX_OUTLET_NAMES) -> str:
    """ "Reuters, SCMP +2": at most ``max_names`` names, then how many more."""
    names = ", ".join(outlets[:max_names])
    more = len(outlets) - max_names
    return f"{names} +{more}" if more > 0 else names


def format_why(why: Why) -> str:
    """'Wang Yi: "王毅" in title'; 'Wang Yi in title' when the alias is the name."""
    if why.alias.casefold() == why.name.casefold():
        return f"{why.name} in {why.field.value}"
    return f'{why.name}: "{why.alias}" in {why.field.value}'


def why_text(line: StoryLine, max_items: int = MAX_WHY) -> str:
    shown = "; ".join(format_why(w) for w in line.why[:max_items])
    more = len(line.why) - max_items
    return f"{shown}; +{more} more" if more > 0 else shown


def format_story(
    line: StoryLine,
    digest: Digest,
    *,
    markdown: bool = True,
    title_limit: int | None = None,
    with_why: bool = True,
    with_link: bool = True,
    bullet: str = BULLET,
) -> str:
    """One story: title (linked, in Markdown), outlets, local time, why it matched.
    In plain text the URL follows on its own indented line."""
    title = line.title if title_limit is None else truncate(line.title, title_limit)
    text_title = inert(title, markdown=markdown)
    url = safe_url(line.link) if with_link else None
    meta = " · ".join(
        (inert(format_outlets(line.outlets), markdown=markdown), digest.line_time(line.time))
    )
    reason = inert(why_text(line), markdown=markdown) if with_why and line.why else ""
    prefix = f"{bullet} " if bullet else ""
    if markdown:
        head = f"[{text_title}](<{url}>)" if url else text_title
        text = f"{prefix}{head} — {meta}"
        if reason:
            text += f" · \\[{reason}\\]"
        return text
    text = f"{prefix}{text_title} — {meta}"
    if reason:
        text += f" [{reason}]"
    if url:
        text += f"\n  {url}"
    return text


def fit_story(
    line: StoryLine, digest: Digest, limit: int, *, markdown: bool = True, bullet: str = BULLET
) -> str:
    """:func:`format_story` within ``limit`` characters: the title is shortened first
    (with an ellipsis), then the reasons, then the link go; last, a hard cut."""
    text = format_story(line, digest, markdown=markdown, bullet=bullet)
    if len(text) <= limit:
        return text
    size = len(line.title)
    while size > 12:
        size = max(12, size - (len(text) - limit) - 1)
        text = format_story(line, digest, markdown=markdown, title_limit=size, bullet=bullet)
        if len(text) <= limit:
            return text
    for why, link in ((False, True), (False, False)):
        text = format_story(
            line,
            digest,
            markdown=markdown,
            title_limit=12,
            with_why=why,
            with_link=link,
            bullet=bullet,
        )
        if len(text) <= limit:
            return text
    return _hard_cut(text, limit)


def _hard_cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    # never end on a lone escaping backslash
    stripped = cut.rstrip("\\")
    if (len(cut) - len(stripped)) % 2:
        cut = cut[:-1]
    return cut + "…"


def _bold(text: str, markdown: bool) -> str:
    return f"**{text}**" if markdown else text


def header_lines(digest: Digest, *, markdown: bool = True, width: int = 400) -> list[str]:
    """Title and period; counts (or the plain "nothing new" answer); failing feeds.
    The block (lines joined by newlines) is at most ``width`` characters."""
    title = _bold(inert(truncate(digest.title, 60), markdown=markdown), markdown)
    lines = [f"{title} · {digest.period_text()}"]
    if digest.is_empty:
        lines.append(digest.empty_text())
    else:
        lines.append(counts_text(digest))
    if digest.failed_feeds:
        room = max(40, width - _length(lines) - 1)
        lines.append(failed_line(digest, markdown=markdown, width=room))
    # a last guard for absurd titles or budgets: shorten the longest line
    while _length(lines) > width:
        i = max(range(len(lines)), key=lambda k: len(lines[k]))
        target = max(20, len(lines[i]) - (_length(lines) - width))
        if target >= len(lines[i]):
            break
        lines[i] = _hard_cut(lines[i], target)
    return lines


def counts_text(digest: Digest) -> str:
    """The counts line: ``3 stories · 5 items``, or ``10 of 25 stories · 40 items`` when cut."""
    shown = digest.shown_count
    stories = (
        plural(shown, "story", "stories")
        if not digest.truncated
        else f"{shown} of {digest.story_count} stories"
    )
    return f"{stories} · {plural(digest.item_count, 'item')}"


def failed_line(digest: Digest, *, markdown: bool = True, width: int = 400) -> str:
    """ "⚠ 2 feeds failing: Reuters (HTTP 500), SCMP (timed out)", as many names as fit."""
    feeds = digest.failed_feeds
    head = f"⚠ {plural(len(feeds), 'feed')} failing: "
    shown: list[str] = []
    for f in feeds[:MAX_FAILED_NAMES]:
        item = inert(f"{truncate(f.name, 40)} ({truncate(f.error, 60)})", markdown=markdown)
        rest = len(feeds) - len(shown) - 1
        tail = f" +{rest} more" if rest else ""
        if len(head) + len(", ".join([*shown, item])) + len(tail) > width:
            break
        shown.append(item)
    more = len(feeds) - len(shown)
    text = head + ", ".join(shown) + (f" +{more} more" if more else "")
    return _hard_cut(text, width)


def _group_header(label: str, markdown: bool) -> str:
    return _bold(inert(truncate(label, LABEL_MAX), markdown=markdown), markdown)


def footer_line(digest: Digest) -> str | None:
    if not digest.truncated:
        return None
    limit = f" (limit {digest.max_stories})" if digest.max_stories else ""
    more = plural(digest.truncated, "more story", "more stories")
    return f"…and {more} not shown{limit}."


# ---------------------------------------------------------------------------------------
# the digest, split into messages


@dataclass(slots=True)
class _Unit:
    lines: list[str]
    cont_header: str | None = None  # repeated at the top of a new part (a continued group)


def _width(n: int) -> int:
    return len(f" ({n}/{n})")


def render_text(digest: Digest, *, budget: int = 2000, markdown: bool = True) -> list[str]:
    """The digest as messages of at most ``budget`` characters (see the module docstring).
    An ``alert`` digest gives one short message per story (:func:`render_alerts`)."""
    if budget < MIN_BUDGET:
        raise ValueError(f"budget must be at least {MIN_BUDGET} characters")
    if digest.kind == "alert":
        return render_alerts(digest, budget=budget, markdown=markdown)

    reserve = _width(999) + 1  # the widest part marker, on its own line
    units: list[_Unit] = [_Unit(header_lines(digest, markdown=markdown, width=budget - reserve))]
    for group in digest.groups:
        header = _group_header(group.label, markdown) if group.label else None
        cont = f"{header} (cont.)" if header else None
        limit = budget - reserve - (len(cont) + 1 if cont else 0)
        for k, line in enumerate(group.stories):
            text = fit_story(line, digest, limit, markdown=markdown)
            if k == 0:
                lines = ["", header, text] if header else ["", text]
                units.append(_Unit(lines))
            else:
                units.append(_Unit([text], cont))
    footer = footer_line(digest)
    if footer:
        units.append(_Unit(["", footer]))

    parts = _pack(units, budget, 0)
    if len(parts) == 1:
        return ["\n".join(parts[0])]
    width = _width(9)
    while True:
        parts = _pack(units, budget, width)
        if _width(len(parts)) <= width:
            break
        width = _width(len(parts))
    n = len(parts)
    out = []
    for i, part in enumerate(parts, 1):
        if i == 1:
            marked = [part[0] + f" ({i}/{n})", *part[1:]]
        else:
            marked = [f"({i}/{n})", *part]
        out.append("\n".join(marked))
    return out


def _length(lines: Sequence[str]) -> int:
    return sum(len(x) for x in lines) + max(0, len(lines) - 1)


def _pack(units: Sequence[_Unit], budget: int, width: int) -> list[list[str]]:
    """Greedy: each unit goes whole into the current part, or opens the next one. The
    first part's marker is appended to its first line; later parts get a marker line."""
    parts: list[list[str]] = []
    cur: list[str] | None = None
    for unit in units:
        if cur is not None:
            overhead = width if not parts else width + 1
            if _length(cur + unit.lines) + overhead <= budget:
                cur.extend(unit.lines)
                continue
            parts.append(cur)
        lines = list(unit.lines)
        while lines and lines[0] == "":
            lines.pop(0)
        if parts and unit.cont_header:
            lines.insert(0, unit.cont_header)
        cur = lines
    if cur is not None:
        parts.append(cur)
    return parts


def render_alerts(digest: Digest, *, budget: int = 2000, markdown: bool = True) -> list[str]:
    """One short message per story, for instant alerts (:func:`render_alert`)."""
    return [
        render_alert(line, digest, label=group.label, budget=budget, markdown=markdown)
        for group in digest.groups
        for line in group.stories
    ]


def render_alert(
    line: StoryLine,
    digest: Digest,
    *,
    label: str | None = None,
    markdown: bool = True,
    budget: int = 2000,
) -> str:
    """One story as one message, at most ``budget`` characters:
    ``🔔 **Xi Jinping** · [Title](<url>) — Reuters · 09:15 · \\[Xi Jinping: "Xi" in title\\]``
    """
    names = label or ", ".join(w.name for w in line.why[:MAX_WHY]) or digest.title
    head = f"🔔 {_bold(inert(truncate(names, LABEL_MAX), markdown=markdown), markdown)} · "
    return head + fit_story(line, digest, budget - len(head), markdown=markdown, bullet="")
