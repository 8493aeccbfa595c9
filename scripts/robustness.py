#!/usr/bin/env python3
"""Run the feed parser over a corpus of feeds and report crashes.

Usage: python scripts/robustness.py [DIR ...]   (default: ../shared/corpora/feedparser-tests)

Every file is read as bytes and handed to ``bot.feeds.parse.parse_feed_bytes``. The
parser may accept a file or raise ParseError; anything else is a crash. Prints the
counts of ok / ParseError / crash with the crash list; exits 1 on any crash.

With ``--cli`` each file instead goes through the whole ``briefbot match --feed FILE``
command in-process (read, parse, match, print JSON lines): exit 0 is a result, exit 2 a
clear error, anything else (an exception escaping the command) is a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

from bot.__main__ import main as briefbot_main
from bot.errors import ParseError
from bot.feeds.parse import parse_feed_bytes

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared/corpora/feedparser-tests"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path, default=[DEFAULT_CORPUS])
    ap.add_argument("-v", "--verbose", action="store_true", help="list ParseError messages")
    ap.add_argument("--cli", action="store_true", help="run `briefbot match --feed` per file")
    args = ap.parse_args(argv)

    files = sorted(p for d in args.dirs for p in d.rglob("*") if p.is_file())
    if not files:
        print(f"no files under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    counts: Counter[str] = Counter()
    crashes: list[tuple[Path, str]] = []
    reasons: Counter[str] = Counter()
    items = 0
    slowest = (0.0, Path())
    start = time.perf_counter()
    for path in files:
        body = path.read_bytes()
        t0 = time.perf_counter()
        if args.cli:
            _run_cli(path, counts, reasons, crashes)
            took = time.perf_counter() - t0
            slowest = max(slowest, (took, path))
            continue
        try:
            parsed = parse_feed_bytes(body, url=f"http://feeds.test/{path.name}")
        except ParseError as err:
            counts["ParseError"] += 1
            reasons[str(err)[:80]] += 1
        except Exception:  # the whole point: list anything that is not a ParseError
            counts["crash"] += 1
            crashes.append((path, traceback.format_exc(limit=3)))
        else:
            counts["ok"] += 1
            items += len(parsed.items)
        took = time.perf_counter() - t0
        if took > slowest[0]:
            slowest = (took, path)
    elapsed = time.perf_counter() - start
    print(
        f"{len(files)} files in {elapsed:.1f}s: ok {counts['ok']} ({items} items), "
        f"ParseError {counts['ParseError']}, crash {counts['crash']}"
    )
    print(f"slowest: {slowest[1]} ({slowest[0] * 1000:.0f} ms)")
    if args.verbose:
        for reason, n in reasons.most_common():
            print(f"  {n:5d}  {reason}")
    for path, tb in crashes:
        print(f"CRASH {path}\n{tb}")
    return 1 if crashes else 0


def _run_cli(
    path: Path, counts: Counter[str], reasons: Counter[str], crashes: list[tuple[Path, str]]
) -> None:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = briefbot_main(["match", "--feed", str(path)])
    except BaseException:
        counts["crash"] += 1
        crashes.append((path, traceback.format_exc(limit=5)))
        return
    if code == 0:
        counts["ok"] += 1
    elif (
        code == 2 and err.getvalue().startswith("briefbot: ") and "Traceback" not in err.getvalue()
    ):
        counts["ParseError"] += 1
        reasons[err.getvalue().strip()[:80]] += 1
    else:
        counts["crash"] += 1
        crashes.append((path, f"exit {code}: {err.getvalue()[:500]}"))


if __name__ == "__main__":
    sys.exit(main())
