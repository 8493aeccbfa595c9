#!/usr/bin/env python3
"""Benchmark the watchlist matcher against a naive regex-per-phrase baseline.

Usage: python scripts/bench_match.py [--items N] [--scale K] [--seed S] [--repeat R]

Everything runs in this process, offline. Figures are given as ratios to a baseline
measured in the same run, so they compare across machines:

- throughput (items/s) of ``Matcher.match`` on N synthetic items (title + summary) built
  from the default watchlist's phrases mixed with English and Chinese filler and HTML,
  against a naive matcher: the same normalisation (``plain`` + ``match_form``), then one
  compiled regex per phrase (with word boundaries for Latin script) searched in turn;
- the same with a watchlist holding K times as many phrases (the default plus generated
  ``/track`` entries), on the same items: a one-pass matcher should barely slow down,
  the naive one slows down about K times;
- compile time of each watchlist (``Matcher(...)``, uncached) against compiling the
  naive regexes (``re.purge()`` first);
- memory held by each compiled matcher (tracemalloc: retained and peak while building)
  against the naive regex list.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot.core.matching import Matcher
from bot.core.text import CJK as _CJK
from bot.core.text import match_form, normalize, plain
from bot.core.watchlist import Alias, Entry, Watchlist
from bot.core.watchlist_resolve import merge_watchlists
from bot.core.watchlist_user import make_user_entry
from bot.errors import InputError
from bot.watchlist_files import default_watchlist

_WORD = r"[^\W_]"


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


def big_watchlist(base: Watchlist, factor: int, seed: int) -> Watchlist:
    """``base`` plus generated user entries (as ``/track`` makes them): people with an
    English name, its initial form and a Chinese name, and topics, until the watchlist
    holds ``factor`` times as many phrases as ``base``."""
    rng = random.Random(seed)
    want = len(phrases(base)) * factor
    have = len(phrases(base))
    entries: list[Entry] = []
    ids = set(base.ids)
    while have < want:
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


# -- the naive baseline --------------------------------------------------------------------


def _norm(text: str) -> str:
    return match_form(plain(text))


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
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def throughput(
    match: Callable[[str, str], Sequence[object]], items: Sequence[tuple[str, str]], repeat: int
) -> tuple[float, int]:
    hits = sum(1 for t, s in items if match(t, s))

    def run() -> None:
        for t, s in items:
            match(t, s)

    return len(items) / best_of(repeat, run), hits


def memory(build: Callable[[], object]) -> tuple[int, int]:
    """(bytes still held by the built object, peak bytes while building)."""
    gc.collect()
    tracemalloc.start()
    try:
        obj = build()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del obj
    return current, peak


@dataclass
class Row:
    name: str
    value: str
    ratio: str
    note: str = ""


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} KiB"


def print_table(rows: Sequence[Row]) -> None:
    head = Row("measure", "value", "ratio")
    widths = [max(len(getattr(r, f)) for r in (head, *rows)) for f in ("name", "value", "ratio")]
    for r in (head, *rows):
        print(f"{r.name:<{widths[0]}}  {r.value:>{widths[1]}}  {r.ratio:>{widths[2]}}  {r.note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=3000, help="synthetic items (default 3000)")
    ap.add_argument(
        "--naive-items",
        type=int,
        default=150,
        help="items the (slow) naive baseline runs on (default 150; its rate is per item)",
    )
    ap.add_argument("--scale", type=int, default=10, help="phrase factor of the big watchlist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    wl = default_watchlist()
    terms = phrases(wl)
    vocab = [t for t in terms if t[0] not in "@$"]
    items = make_items(args.items, vocab, args.seed)
    sample = items[: args.naive_items]
    big = big_watchlist(wl, args.scale, args.seed)
    big_terms = phrases(big)
    chars = sum(len(t) + len(s) for t, s in items)
    print(
        f"{len(items)} items ({chars / len(items):.0f} chars each on average, HTML included; "
        f"the naive baseline runs on the first {len(sample)}); "
        f"default watchlist: {len(wl)} entries, {len(terms)} phrases; "
        f"big: {len(big)} entries, {len(big_terms)} phrases; best of {args.repeat} runs"
    )

    def compile_time(build: Callable[[], object]) -> float:
        def run() -> None:
            re.purge()
            build()

        return best_of(args.repeat, run)

    # normalisation alone: the floor both matchers share
    def normalise_only(title: str, summary: str) -> list[str]:
        _norm(title), _norm(summary)
        return []

    norm_rate, _ = throughput(normalise_only, items, args.repeat)

    naive = NaiveMatcher(terms)
    matcher = Matcher(wl)
    naive_rate, naive_hits = throughput(naive.match, sample, args.repeat)
    rate, hits = throughput(matcher.match, items, args.repeat)

    naive_big = NaiveMatcher(big_terms)
    matcher_big = Matcher(big)
    naive_big_rate, _ = throughput(naive_big.match, sample, 1)
    big_rate, big_hits = throughput(matcher_big.match, items, args.repeat)

    naive_c = compile_time(lambda: naive_compile(terms))
    comp = compile_time(lambda: Matcher(wl))
    naive_big_c = compile_time(lambda: naive_compile(big_terms))
    comp_big = compile_time(lambda: Matcher(big))

    re.purge()
    naive_mem, _ = memory(lambda: naive_compile(terms))
    mem, mem_peak = memory(lambda: Matcher(wl))
    re.purge()
    naive_big_mem, _ = memory(lambda: naive_compile(big_terms))
    big_mem, big_peak = memory(lambda: Matcher(big))

    x = f"x{args.scale}"
    rows = [
        Row("normalise only (plain+match_form)", f"{norm_rate:,.0f} items/s", "", "the floor"),
        Row(
            "naive: regex per phrase",
            f"{naive_rate:,.0f} items/s",
            "1.00",
            f"baseline; {naive_hits}/{len(sample)} items with some phrase",
        ),
        Row(
            "matcher (default watchlist)",
            f"{rate:,.0f} items/s",
            f"{rate / naive_rate:.1f}",
            f"x naive; {1e3 / rate:.3f} ms/item; {hits}/{len(items)} items matched",
        ),
        Row(
            f"naive, watchlist {x}",
            f"{naive_big_rate:,.0f} items/s",
            f"{naive_big_rate / naive_rate:.2f}",
            "x naive (default watchlist)",
        ),
        Row(
            f"matcher, watchlist {x}",
            f"{big_rate:,.0f} items/s",
            f"{big_rate / rate:.2f}",
            f"x matcher (default); {big_rate / naive_big_rate:.0f}x naive {x}; {big_hits} matched",
        ),
        Row("compile: naive regexes", f"{naive_c * 1e3:.1f} ms", "1.00", "baseline"),
        Row(
            "compile: default watchlist", f"{comp * 1e3:.1f} ms", f"{comp / naive_c:.2f}", "x naive"
        ),
        Row(
            f"compile: watchlist {x}",
            f"{comp_big * 1e3:.1f} ms",
            f"{comp_big / comp:.2f}",
            f"x default; {comp_big / naive_big_c:.2f}x naive {x}",
        ),
        Row("memory: naive regexes", _kb(naive_mem), "1.00", "baseline (retained)"),
        Row(
            "memory: matcher (default)",
            _kb(mem),
            f"{mem / naive_mem:.2f}",
            f"x naive; peak while compiling {_kb(mem_peak)}",
        ),
        Row(
            f"memory: matcher {x}",
            _kb(big_mem),
            f"{big_mem / mem:.2f}",
            f"x default; {big_mem / naive_big_mem:.2f}x naive {x}; peak {_kb(big_peak)}",
        ),
    ]
    print_table(rows)
    print(f"({time.perf_counter() - t_start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
