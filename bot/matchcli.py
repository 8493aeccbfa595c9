"""``briefbot match`` and ``briefbot eval``: the matcher on files, for tuning a watchlist.

``briefbot match --items FILE.jsonl`` (objects with id, title, summary) or ``--feed
PATH_OR_URL`` prints one JSON object a line::

    {"id": "...", "matches": ["entry-id", ...], "why": {"entry-id": ["alias", "title"]}}

``briefbot eval --items LABELLED.jsonl`` scores the watchlist on labelled items (each
with ``labels``: the entry ids it should match): micro precision / recall / F1 over
(item, entry) pairs, a per-entry table and the worst misses with their reasons.

Both take ``--watchlist FILE``, merged over the default watchlist (after the
``watchlist.toml`` of ``--config DIR``, when given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.config import config_dir
from bot.core.matching import Matcher, compile_watchlist
from bot.core.models import Match
from bot.core.watchlist import Watchlist
from bot.core.watchlist_resolve import merge_watchlists
from bot.errors import InputError, ParseError
from bot.watchlist_files import default_watchlist, load_watchlist

MAX_INPUT_BYTES = 200_000_000


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "match":
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument(
            "--items",
            metavar="FILE.jsonl",
            help="JSON lines, each an object with id, title and summary ('-' for stdin)",
        )
        src.add_argument(
            "--feed", metavar="PATH_OR_URL", help="an RSS/Atom/JSON feed file or http(s) URL"
        )
        parser.add_argument(
            "--explain",
            action="store_true",
            help="add the rejected candidates (excluded, missing context...) as 'rejected'",
        )
    else:
        parser.add_argument(
            "--items",
            metavar="FILE.jsonl",
            required=True,
            help="JSON lines with id, title, summary and labels (entry ids)",
        )
        parser.add_argument(
            "--worst",
            metavar="N",
            type=int,
            default=10,
            help="how many false negatives and false positives to list (default 10)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--ignore-unknown-labels",
            action="store_true",
            help="score labels the watchlist has no entry for as absent (default: refuse them)",
        )
    parser.add_argument(
        "--watchlist",
        metavar="FILE",
        help="a watchlist.toml merged over the default (and over --config's)",
    )


# -- inputs ---------------------------------------------------------------------------


def effective_watchlist(args: argparse.Namespace) -> Watchlist:
    wl = default_watchlist()
    cfg = config_dir(getattr(args, "config", None))
    if cfg is not None and (cfg / "watchlist.toml").is_file():
        wl = merge_watchlists(wl, load_watchlist(cfg / "watchlist.toml"))
    extra = getattr(args, "watchlist", None)
    if extra:
        path = Path(extra)
        if not path.is_file():
            raise InputError(f"{extra}: watchlist file not found")
        wl = merge_watchlists(wl, load_watchlist(path))
    return wl


def _read_bytes(path_text: str) -> bytes:
    if path_text == "-":
        return sys.stdin.buffer.read()
    path = Path(path_text)
    try:
        if path.is_dir():
            raise InputError(f"{path_text}: is a directory, not a file")
        with path.open("rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path_text}: file not found") from None
    except OSError as err:
        raise InputError(f"{path_text}: cannot read: {err.strerror or err}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{path_text}: larger than {MAX_INPUT_BYTES // 1_000_000} MB")
    return data


def _text_field(obj: dict[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise InputError(f"{where}: missing field {key!r}")
    value = obj[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{where}: field {key!r} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class InputItem:
    #: as given: a number stays a number in the output
    id: str | int
    title: str
    summary: str
    labels: tuple[str, ...] | None = None


def read_items(path_text: str, *, labelled: bool = False) -> list[InputItem]:
    """Items from a JSON-lines file. Raises InputError naming the line of a problem."""
    data = _read_bytes(path_text)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path_text}: not UTF-8 text (byte {err.start})") from None
    items: list[InputItem] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path_text}, line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{where}: invalid JSON: {err.msg} (column {err.colno})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        item_id = obj.get("id")
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or item_id == "":
            raise InputError(f"{where}: missing field 'id' (a string or an integer)")
        labels: tuple[str, ...] | None = None
        if labelled:
            raw = obj.get("labels")
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise InputError(f"{where}: 'labels' must be a list of entry ids")
            labels = tuple(raw)
        items.append(
            InputItem(
                id=item_id,
                title=_text_field(obj, "title", where),
                summary=_text_field(obj, "summary", where),
                labels=labels,
            )
        )
    if not items:
        raise InputError(f"{path_text}: no items (expected one JSON object a line)")
    return items


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


async def _fetch(url: str, args: argparse.Namespace) -> tuple[bytes, dict[str, str], str]:
    from bot.config import load_settings
    from bot.feeds.fetch import Fetcher

    settings = load_settings(config_dir(getattr(args, "config", None)))
    async with Fetcher(settings.http, settings.poll) as fetcher:
        result = await fetcher.fetch(url)
    if result.error or result.body is None:
        # bad input for this command (exit 2), whatever the network said
        raise InputError(f"{url}: {result.error or 'no content'}")
    return result.body, dict(result.headers), result.final_url


def read_feed(source: str, args: argparse.Namespace) -> list[InputItem]:
    """The entries of a feed file or URL as items (id: the entry's guid or link)."""
    from bot.feeds.parse import parse_feed_bytes

    headers: dict[str, str] = {}
    if _is_url(source):
        body, headers, final_url = asyncio.run(_fetch(source, args))
        url = source
        base = final_url
    else:
        body = _read_bytes(source)
        url = Path(source).resolve().as_uri() if source != "-" else "file:///dev/stdin"
        base = url
    try:
        parsed = parse_feed_bytes(body, url=url, headers=headers, base_url=base)
    except ParseError as err:
        raise InputError(f"{source}: {err}") from None
    return [
        InputItem(id=it.guid or it.link or "", title=it.title, summary=it.summary)
        for it in parsed.items
    ]


# -- match ------------------------------------------------------------------------------


def _why(matches: list[Match]) -> dict[str, list[str]]:
    return {m.entry_id: [m.alias, m.field.value] for m in matches}


def match_main(args: argparse.Namespace) -> int:
    """``briefbot match``."""
    matcher = compile_watchlist(effective_watchlist(args))
    items = read_items(args.items) if args.items else read_feed(args.feed, args)
    out = sys.stdout
    for item in items:
        record: dict[str, Any] = {"id": item.id}
        if getattr(args, "explain", False):
            ex = matcher.explain(item.title, item.summary)
            matches = list(ex.matches)
            record["matches"] = [m.entry_id for m in matches]
            record["why"] = _why(matches)
            matched = set(record["matches"])
            record["rejected"] = [
                {"entry": c.entry_id, "alias": c.alias, "field": c.field.value, "reason": c.reason}
                for c in ex.rejected
                if c.entry_id not in matched
            ]
        else:
            matches = matcher.match(item.title, item.summary)
            record["matches"] = [m.entry_id for m in matches]
            record["why"] = _why(matches)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    return 0


# -- eval -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


@dataclass(frozen=True, slots=True)
class Miss:
    kind: str  # "fn" | "fp"
    item_id: str | int
    entry_id: str
    title: str
    why: str


@dataclass(slots=True)
class EvalResult:
    items: int
    total: _Counts
    per_entry: dict[str, _Counts]
    misses: list[Miss]
    unknown_labels: dict[str, int]

    def as_dict(self, worst: int) -> dict[str, Any]:
        return {
            "items": self.items,
            **self.total.as_dict(),
            "per_entry": {k: v.as_dict() for k, v in sorted(self.per_entry.items())},
            "false_negatives": [
                {"id": m.item_id, "entry": m.entry_id, "title": m.title, "why": m.why}
                for m in self.misses
                if m.kind == "fn"
            ][:worst],
            "false_positives": [
                {"id": m.item_id, "entry": m.entry_id, "title": m.title, "why": m.why}
                for m in self.misses
                if m.kind == "fp"
            ][:worst],
            "unknown_labels": self.unknown_labels,
        }


def evaluate(matcher: Matcher, items: list[InputItem]) -> EvalResult:
    """Micro precision/recall over (item, entry id) pairs."""
    ids = set(matcher.watchlist.ids)
    total = _Counts()
    per_entry = {i: _Counts() for i in ids}
    misses: list[Miss] = []
    unknown: dict[str, int] = {}
    for item in items:
        ex = matcher.explain(item.title, item.summary)
        got = {m.entry_id: m for m in ex.matches}
        gold = set(item.labels or ())
        for label in gold - ids:
            unknown[label] = unknown.get(label, 0) + 1
        gold &= ids
        for entry_id in sorted(gold | set(got)):
            counts = per_entry[entry_id]
            if entry_id in gold and entry_id in got:
                total.tp += 1
                counts.tp += 1
            elif entry_id in got:
                total.fp += 1
                counts.fp += 1
                m = got[entry_id]
                misses.append(
                    Miss(
                        "fp",
                        item.id,
                        entry_id,
                        item.title,
                        f"matched {m.alias!r} in the {m.field.value}",
                    )
                )
            else:
                total.fn += 1
                counts.fn += 1
                reasons = [
                    f"{c.alias!r}: {c.reason}" for c in ex.rejected if c.entry_id == entry_id
                ]
                misses.append(
                    Miss(
                        "fn",
                        item.id,
                        entry_id,
                        item.title,
                        "; ".join(dict.fromkeys(reasons)) or "no alias or rule word found",
                    )
                )
    return EvalResult(len(items), total, per_entry, rank_misses(misses, per_entry), unknown)


def rank_misses(misses: list[Miss], per_entry: dict[str, _Counts]) -> list[Miss]:
    """Worst first: misses of the entries that miss most (false negatives plus false
    positives), false negatives before false positives, then in input order. So the
    first lines of the report point at the rules most worth fixing."""
    order = {id(m): i for i, m in enumerate(misses)}

    def key(m: Miss) -> tuple[int, int, str, int]:
        c = per_entry[m.entry_id]
        return (-(c.fn + c.fp), 0 if m.kind == "fn" else 1, m.entry_id, order[id(m)])

    return sorted(misses, key=key)


def _print_report(result: EvalResult, worst: int, out: TextIO) -> None:
    t = result.total
    out.write(
        f"items: {result.items}   pairs: tp {t.tp}  fp {t.fp}  fn {t.fn}\n"
        f"precision {t.precision:.3f}   recall {t.recall:.3f}   F1 {t.f1:.3f}\n\n"
    )
    out.write(f"{'entry':<22} {'tp':>4} {'fp':>4} {'fn':>4} {'prec':>6} {'recall':>6}\n")
    for entry_id, c in sorted(result.per_entry.items()):
        if c.tp + c.fp + c.fn == 0:
            continue
        out.write(
            f"{entry_id:<22} {c.tp:>4} {c.fp:>4} {c.fn:>4} {c.precision:>6.2f} {c.recall:>6.2f}\n"
        )
    for kind, heading in (("fn", "False negatives (missed)"), ("fp", "False positives")):
        rows = [m for m in result.misses if m.kind == kind]
        if not rows or worst <= 0:
            continue
        out.write(
            f"\n{heading}: {len(rows)}"
            + (f" (the {worst} worst: entries that miss most first)" if len(rows) > worst else "")
            + "\n"
        )
        for m in rows[:worst]:
            out.write(f"  {m.item_id}  {m.entry_id}: {m.title}\n      why: {m.why}\n")
    if result.unknown_labels:
        names = ", ".join(f"{k} ({v})" for k, v in sorted(result.unknown_labels.items()))
        out.write(f"\nLabels not in the watchlist (ignored): {names}\n")


def refuse_unknown_labels(items: list[InputItem], ids: set[str]) -> None:
    """An :class:`InputError` (one line) naming the labels the watchlist has no entry
    for: a typo or a disabled entry would otherwise score as silently missing."""
    unknown: dict[str, list[str]] = {}
    for item in items:
        for label in item.labels or ():
            if label not in ids:
                unknown.setdefault(label, []).append(str(item.id))
    if not unknown:
        return
    parts = []
    for label, where in sorted(unknown.items()):
        n = len(where)
        parts.append(f"{label!r} ({n} item{'s' if n != 1 else ''}, first {where[0]!r})")
    shown = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
    raise InputError(
        f"labels not in the watchlist: {shown}. Fix the labels, or pass "
        "--ignore-unknown-labels to score them as absent"
    )


def eval_main(args: argparse.Namespace) -> int:
    """``briefbot eval``."""
    if args.worst < 0:
        raise InputError("--worst must be 0 or more")
    matcher = compile_watchlist(effective_watchlist(args))
    items = read_items(args.items, labelled=True)
    if not getattr(args, "ignore_unknown_labels", False):
        refuse_unknown_labels(items, set(matcher.watchlist.ids))
    result = evaluate(matcher, items)
    if args.json:
        sys.stdout.write(
            json.dumps(result.as_dict(args.worst), ensure_ascii=False, indent=2) + "\n"
        )
    else:
        _print_report(result, args.worst, sys.stdout)
    return 0
