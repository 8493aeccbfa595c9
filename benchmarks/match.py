#!/usr/bin/env python3
"""Benchmark the watchlist matcher against an Aho-Corasick reference.

Usage: python benchmarks/match.py [--items N] [--extra K] [--seed S] [--repeat R]
       [--naive] [--json]

Everything runs in this process, offline, on N synthetic items (title + summary, about
520 characters, a third Chinese, HTML in summaries) built from the default watchlist's
phrases mixed with filler. Figures are ratios to a reference measured in the same run, so
they compare across machines. For the default watchlist and for the default plus K
generated ``/track``-like phrases (default 1,000), it measures items/s of:

- **feed text** (HTML, entities: what a feed gives):
  - *normalise*: ``plain`` + ``match_form`` on title and summary, the floor of any
    matcher that takes feed text;
  - *reference*: the same normalisation, then one pyahocorasick scan per field over
    every phrase the watchlist mentions, each hit checked for its word boundaries
    (Latin script; none for CJK), no rules: the cost of finding the phrases, no more;
  - *matcher*: ``Matcher.match``, the full evaluation (case rules, exclusions,
    context, rules);
- **plain text** (already through ``plain``, as stored): the reference (``match_form``
  + the scan) and ``Matcher.match_plain``. Normalising no longer hides the matcher's
  own cost here: this ratio is the stricter one.

The target: the matcher at >= 0.5x the reference, both ways. Times are CPU time of
this process (best of R runs), so other work on the machine disturbs them less.

Also: compile time (uncached ``Matcher(...)``) and the memory the compiled matcher
holds (tracemalloc), and with ``--naive`` the old baseline, one regex per phrase.
``--json`` prints every figure as one JSON object instead of the table.

``--check REV`` measures nothing: it compares the matches and explanations of this
tree's matcher (``match``, ``match_plain``, ``explain``: matches, candidates, lines) on
the same items and watchlists with those of git revision REV's ``bot/`` (run in a
subprocess), and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import ahocorasick
import regex

from bot.core.matching import Matcher
from bot.core.text import CJK as _CJK
from bot.core.text import CJK_CLASS, match_form, normalize, plain
from bot.core.watchlist import Alias, Entry, Watchlist
from bot.core.watchlist_resolve import merge_watchlists
from bot.core.watchlist_user import make_user_entry
from bot.errors import InputError
from bot.watchlist_files import default_watchlist


def _words(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


EN_FILLER = _words(
    "the a of to in and on for with by at from as that this said says officials report "
    "government minister talks economy market trade policy week year people security "
    "plan new former leader spokesperson statement visit agreement sanctions growth "
    "inflation election court rates energy supply chain foreign defence ministry "
    "analysts warned expected could would should after before during while since "
    "however meanwhile according sources familiar matter told reporters on Tuesday "
    "Monday Wednesday Thursday Friday morning evening capital region border island "
    "bank central data exports imports tariff chips technology companies investors "
    "shares fell rose percent billion million dollars yuan euro talks ended early"
)
ZH_FILLER = _words(
    "据报道 官员 表示 政府 经济 市场 贸易 政策 本周 今年 人民 安全 计划 新的 前任 领导人 "
    "发言人 声明 访问 协议 制裁 增长 通胀 选举 法院 利率 能源 供应链 外交 国防部 分析人士 "
    "警告 预计 周二 周一 周三 上午 晚间 首都 地区 边境 岛屿 银行 数据 出口 进口 关税 芯片 "
    "科技 公司 投资者 股价 下跌 上涨 百分之 亿元 会谈 结束 记者 消息人士 透露"
)
FIRST_NAMES = _words(
    "Alex Maria Chen Priya Omar Elena Tomas Aiko Kwame Sofia Ivan Lucia Rahul Nadia "
    "Pieter Ingrid Mateo Amara Yusuf Hana Oskar Leila Dmitri Camila Jonas Fatima"
)
TOPICS = _words(
    "rare earth export controls|semiconductor subsidies|grain corridor|carbon border tax|"
    "undersea cables|lithium mining|drone exports|pension reform|bond yields|port strike|"
    "fishing rights|vaccine patents|satellite launches|cyber espionage|water treaty",
    "|",
)


# -- vocabulary and items ------------------------------------------------------------------


def _walk_alias(a: Alias) -> Iterable[str]:
    yield a.text
    for x in a.exclude:
        yield from _walk_alias(x)
    for group in a.context:
        for c in group:
            yield from _walk_alias(c)


def _walk_entry(e: Entry) -> Iterable[str]:
    for a in e.aliases:
        yield from _walk_alias(a)
    for x in e.exclude:
        yield from _walk_alias(x)
    for group in e.context:
        for c in group:
            yield from _walk_alias(c)
    for r in e.rules:
        for group in (*r.all, *r.context):
            for c in group:
                yield from _walk_alias(c)


def phrases(wl: Watchlist) -> list[str]:
    """Every phrase the watchlist mentions (aliases, exclusions, context, rule words)."""
    return list(dict.fromkeys(t for e in wl.entries for t in _walk_entry(e)))


def _sentence(rng: random.Random, vocab: Sequence[str], hit_rate: float, zh: bool) -> str:
    filler = ZH_FILLER if zh else EN_FILLER
    words = [rng.choice(filler) for _ in range(rng.randint(8, 18))]
    while rng.random() < hit_rate:
        words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
        hit_rate /= 2
    text = ("" if zh else " ").join(words)
    return text + ("。" if zh else ".")


def _htmlise(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    if len(words) > 4:
        i = rng.randrange(len(words) - 2)
        words[i] = f'<a href="https://news.example/{rng.randrange(10**6)}">{words[i]}</a>'
        j = rng.randrange(len(words))
        words[j] = f"<b>{words[j]}</b>"
    out = " ".join(words).replace(" and ", " &amp; ", 1).replace(" said", " &#8220;said&#8221;", 1)
    return f"<p>{out}</p>"


def make_items(n: int, vocab: Sequence[str], seed: int) -> list[tuple[str, str]]:
    """``n`` (title, summary) pairs: a third Chinese, HTML in summaries, roughly half
    mentioning one or more watchlist phrases."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        zh = rng.random() < 0.33
        title = _sentence(rng, vocab, 0.35, zh).rstrip(".。")
        summary = " ".join(
            _htmlise(rng, _sentence(rng, vocab, 0.15, zh)) for _ in range(rng.randint(2, 6))
        )
        items.append((title, summary))
    return items


SYLLABLES = _words("ka ro vin del mar ten sol bri an ok el ra mu zen tor li ha gan ber wick")
ZH_NAME_CHARS = "王李张刘陈杨赵黄周吴徐孙建国明华晓燕志强思远立新文博家宁海涛雅琴振丽娜"


def _surname(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def big_watchlist(base: Watchlist, extra: int, seed: int) -> Watchlist:
    """``base`` plus generated user entries (as ``/track`` makes them) adding at least
    ``extra`` phrases: people with an English name, its initial form and a Chinese name,
    and topics."""
    rng = random.Random(seed)
    have = 0
    entries: list[Entry] = []
    ids = set(base.ids)
    while have < extra:
        try:
            if len(entries) % 4 == 3:
                name = f"{rng.choice(TOPICS)} {_surname(rng).lower()}"
                entry = make_user_entry("topic", name, [], existing_ids=ids)
            else:
                first, last = rng.choice(FIRST_NAMES), _surname(rng)
                zh = "".join(rng.choice(ZH_NAME_CHARS) for _ in range(3))
                entry = make_user_entry(
                    "actor", f"{first} {last}", [zh, f"{first[0]}. {last}"], existing_ids=ids
                )
        except InputError:
            continue  # an id already taken: draw another name
        ids.add(entry.id)
        entries.append(entry)
        have += len(list(_walk_entry(entry)))
    return merge_watchlists(base, Watchlist(entries=tuple(entries), source="bench"))


# -- the reference: Aho-Corasick + word boundaries ---------------------------------------

_WORD_CHAR = regex.compile(f"[^\\W_{CJK_CLASS}]")


@lru_cache(maxsize=4096)
def _is_word_char(ch: str) -> bool:
    return _WORD_CHAR.match(ch) is not None


def _norm(text: str) -> str:
    return match_form(plain(text))


class AhoReference:
    """Every phrase in match form, lower-cased, in one pyahocorasick automaton; a hit
    counts when it does not continue a word on either side (Latin-script ends only)."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.automaton = ahocorasick.Automaton()
        for t in terms:
            key = match_form(normalize(t)).lower()
            if key:
                self.automaton.add_word(
                    key, (key, len(key), _is_word_char(key[0]), _is_word_char(key[-1]))
                )
        self.automaton.make_automaton()

    def scan(self, text: str, found: set[str]) -> None:
        if not text:
            return
        n = len(text)
        low = text.lower()
        if len(low) != n:
            low = text  # (a few characters lower to two; rare, keep positions)
        for end, (key, length, bound_start, bound_end) in self.automaton.iter(low):
            start = end - length + 1
            if bound_start and start > 0 and _is_word_char(text[start - 1]):
                continue
            if bound_end and end + 1 < n and _is_word_char(text[end + 1]):
                continue
            found.add(key)

    def match(self, title: str, summary: str) -> set[str]:
        """Feed text (HTML...): normalised first, as the matcher does."""
        found: set[str] = set()
        self.scan(_norm(title), found)
        self.scan(_norm(summary), found)
        return found

    def match_plain(self, title: str, summary: str) -> set[str]:
        """Text already through ``plain`` (as ``Matcher.match_plain`` takes it)."""
        found: set[str] = set()
        self.scan(match_form(title), found)
        self.scan(match_form(summary), found)
        return found


# -- the naive baseline (--naive) ----------------------------------------------------------

_WORD = r"[^\W_]"


def naive_compile(terms: Sequence[str]) -> list[re.Pattern[str]]:
    out = []
    for t in terms:
        if t[0] in "@$":
            continue
        form = re.escape(match_form(normalize(t)))
        if _CJK.search(t):
            out.append(re.compile(form))
        else:
            out.append(re.compile(f"(?<!{_WORD}){form}(?!{_WORD})", re.IGNORECASE))
    return out


class NaiveMatcher:
    """Normalise like the matcher, then search each phrase's regex in turn."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.regexes = naive_compile(terms)

    def match(self, title: str, summary: str) -> list[int]:
        t, s = _norm(title), _norm(summary)
        return [i for i, rx in enumerate(self.regexes) if rx.search(t) or rx.search(s)]


# -- measuring -------------------------------------------------------------------------------


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs, in seconds of this process's CPU time (the least
    disturbed by other work on the machine)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def throughput(
    match: Callable[[str, str], object], items: Sequence[tuple[str, str]], repeat: int
) -> float:
    return rates({"x": match}, items, repeat)["x"]


def rates(
    fns: dict[str, Callable[[str, str], object]],
    items: Sequence[tuple[str, str]],
    repeat: int,
) -> dict[str, float]:
    """items/s of each function, the best of ``repeat`` rounds; within a round the
    functions run in turn, so a disturbance of the machine hits them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():  # warm-up (caches, allocator), not timed
        for t, s in items[:200]:
            fn(t, s)
    for _ in range(repeat):
        for name, fn in fns.items():

            def run(fn: Callable[[str, str], object] = fn) -> None:
                for t, s in items:
                    fn(t, s)

            best[name] = min(best[name], best_of(1, run))
    return {name: len(items) / t for name, t in best.items()}


def memory(build: Callable[[], object]) -> int:
    """Bytes still held by the built object."""
    gc.collect()
    tracemalloc.start()
    try:
        obj = build()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del obj
    return current


def measure(
    wl: Watchlist, items: Sequence[tuple[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    """Every figure for one watchlist; rates in items/s, ratios against the reference."""
    terms = phrases(wl)
    plain_items = [(plain(t), plain(s)) for t, s in items]
    reference = AhoReference(terms)
    matcher = Matcher(wl)

    def normalise_only(title: str, summary: str) -> None:
        _norm(title), _norm(summary)

    # (before Matcher.match_plain existed: match, which normalises the plain text again)
    match_plain = getattr(matcher, "match_plain", matcher.match)
    feed = rates(
        {"norm": normalise_only, "ref": reference.match, "matcher": matcher.match},
        items,
        args.repeat,
    )
    on_plain = rates(
        {"ref": reference.match_plain, "matcher": match_plain}, plain_items, args.repeat
    )
    norm_rate, ref_rate, rate = feed["norm"], feed["ref"], feed["matcher"]
    ref_plain_rate, plain_rate = on_plain["ref"], on_plain["matcher"]
    matched = sum(1 for t, s in items if matcher.match(t, s))
    compile_s = best_of(args.repeat, lambda: Matcher(wl))
    out: dict[str, Any] = {
        "entries": len(wl),
        "phrases": len(terms),
        "normalise_items_per_s": round(norm_rate),
        "reference_items_per_s": round(ref_rate),
        "matcher_items_per_s": round(rate),
        "matcher_vs_reference": round(rate / ref_rate, 3),
        "normalise_vs_reference": round(norm_rate / ref_rate, 3),
        "plain_reference_items_per_s": round(ref_plain_rate),
        "plain_matcher_items_per_s": round(plain_rate),
        "plain_matcher_vs_reference": round(plain_rate / ref_plain_rate, 3),
        "items_matched": matched,
        "compile_ms": round(compile_s * 1e3, 1),
        "memory_kib": round(memory(lambda: Matcher(wl)) / 1024),
    }
    if args.naive:
        sample = items[: args.naive_items]
        out["naive_items_per_s"] = round(throughput(NaiveMatcher(terms).match, sample, 1))
    return out


# -- --check: the same decisions as another revision's matcher --------------------------

ROOT = Path(__file__).resolve().parent.parent


def decisions(watchlists: dict[str, Watchlist], items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Per watchlist: what identifies it, and per item the matches of ``match`` and
    ``match_plain``, and ``explain``'s matches, candidates and lines (JSON-ready)."""
    import bot

    out: dict[str, Any] = {"bot": str(Path(bot.__file__).parent)}
    for name, wl in watchlists.items():
        m = Matcher(wl)
        match_plain = getattr(m, "match_plain", m.match)
        rows = []
        for t, s in items:
            why = m.explain(t, s)
            rows.append(
                [
                    [[x.entry_id, x.alias, x.field.value] for x in m.match(t, s)],
                    [[x.entry_id, x.alias, x.field.value] for x in match_plain(plain(t), plain(s))],
                    [[x.entry_id, x.alias, x.field.value] for x in why.matches],
                    [
                        [c.entry_id, c.alias, c.field.value, c.accepted, c.reason, c.snippet]
                        for c in why.candidates
                    ],
                    why.lines(),
                ]
            )
        content = json.dumps([[e.id, [a.text for a in e.aliases]] for e in wl.entries])
        out[name] = {"watchlist": hashlib.sha256(content.encode()).hexdigest(), "rows": rows}
    return out


def check(rev: str, argv: list[str], ours: dict[str, Any]) -> int:
    """Compare ``ours`` (:func:`decisions`) with revision ``rev``'s: its ``bot/`` from
    ``git archive``, this script run on it with ``--dump``."""
    with tempfile.TemporaryDirectory() as tmp:
        command = ["git", "archive", "--format=tar", rev, "bot"]
        got = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
        if got.returncode != 0:
            why = got.stderr.decode(errors="replace").strip().splitlines()
            print(f"--check {rev}: git archive failed: {why[-1] if why else '?'}", file=sys.stderr)
            return 2
        with tarfile.open(fileobj=io.BytesIO(got.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        dump = Path(tmp) / "decisions.json"
        env = {**os.environ, "PYTHONPATH": tmp}
        dumping = [sys.executable, __file__, *argv, "--dump", str(dump)]
        run = subprocess.run(dumping, env=env, check=False)
        if run.returncode != 0:
            print(f"--check {rev}: this script failed on {rev}'s bot/ (above)", file=sys.stderr)
            return 2
        theirs = json.loads(dump.read_text(encoding="utf-8"))
        if not theirs["bot"].startswith(tmp):
            print(f"the subprocess imported {theirs['bot']}, not {rev}'s bot/", file=sys.stderr)
            return 2
    differ = 0
    for name, got in ours.items():
        if name == "bot":
            continue
        other = theirs[name]
        if other["watchlist"] != got["watchlist"]:
            print(f"{name}: the watchlists differ ({rev} builds another): not compared")
            differ += 1
            continue
        pairs = zip(got["rows"], other["rows"], strict=True)
        rows = [i for i, (a, b) in enumerate(pairs) if a != b]
        matched = sum(1 for r in got["rows"] if r[0])
        candidates = sum(len(r[3]) for r in got["rows"])
        print(
            f"{name}: {len(got['rows'])} items ({matched} matched, {candidates} candidates "
            f"explained): {len(rows)} differ from {rev}"
        )
        for i in rows[:3]:
            print(f"  item {i}:\n    here: {got['rows'][i]}\n    {rev}: {other['rows'][i]}")
        differ += len(rows)
    return 1 if differ else 0


def print_table(name: str, r: dict[str, Any]) -> None:
    print(f"{name}: {r['entries']} entries, {r['phrases']} phrases")
    ref, pref = r["reference_items_per_s"], r["plain_reference_items_per_s"]
    rows = [
        ("feed text: normalise only", r["normalise_items_per_s"], ref),
        ("feed text: reference", ref, ref),
        ("feed text: Matcher.match", r["matcher_items_per_s"], ref),
        ("plain text: reference", pref, pref),
        ("plain text: Matcher.match_plain", r["plain_matcher_items_per_s"], pref),
    ]
    if "naive_items_per_s" in r:
        rows.append(("feed text: naive regex per phrase", r["naive_items_per_s"], ref))
    for label, rate, base in rows:
        print(f"  {label:<34} {rate:>9,} items/s  {rate / base:5.2f}x reference")
    print(
        f"  {r['items_matched']} items matched; compile {r['compile_ms']} ms; "
        f"holds {r['memory_kib']:,} KiB"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--items", type=int, default=3000, help="synthetic items (default 3000)")
    ap.add_argument(
        "--extra", type=int, default=1000, help="generated phrases added (default 1000)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    ap.add_argument("--naive", action="store_true", help="also the regex-per-phrase baseline")
    ap.add_argument("--naive-items", type=int, default=150, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="one JSON object")
    ap.add_argument(
        "--check",
        metavar="REV",
        help="compare matches and explanations with git revision REV's matcher instead",
    )
    ap.add_argument("--dump", help=argparse.SUPPRESS)  # (--check's subprocess)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    wl = default_watchlist()
    vocab = [t for t in phrases(wl) if t[0] not in "@$"]
    items = make_items(args.items, vocab, args.seed)
    big = big_watchlist(wl, args.extra, args.seed)
    if args.check or args.dump:
        watchlists = {"default": wl, f"plus_{args.extra}": big}
        if args.dump:
            Path(args.dump).write_text(json.dumps(decisions(watchlists, items)), encoding="utf-8")
            return 0
        same = ["--items", str(args.items), "--extra", str(args.extra), "--seed", str(args.seed)]
        return check(args.check, same, decisions(watchlists, items))
    for t, s in items:  # warm-up: the first pass over the items is slower, not timed
        _norm(t), _norm(s)
    chars = sum(len(t) + len(s) for t, s in items)
    result = {
        "items": len(items),
        "chars_per_item": round(chars / len(items)),
        "default": measure(wl, items, args),
        f"plus_{args.extra}": measure(big, items, args),
        "seconds": 0.0,
    }
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{len(items)} items ({result['chars_per_item']} chars each on average, HTML "
        f"included); best of {args.repeat} runs"
    )
    print_table("default watchlist", result["default"])
    print_table(f"default + {args.extra} phrases", result[f"plus_{args.extra}"])
    print(f"({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
