"""``briefbot demo`` end to end in a temporary data directory (offline: the sample
feeds are served on loopback). The first run is a real ``python -m bot demo`` process;
the runs after it go through the same command in the test process (tests/clirun.py)
and must print what a process prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import fresh_env, run_cli

from bot.demo.run import NEXT

POLLED = re.compile(r"^Polled (\d+) sample feeds on loopback .*: (\d+) new items, (\d+) already")


def run_demo(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFBOT_")}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
        check=False,
    )


def stories(out: str) -> list[str]:
    """The story lines of the printed digest, in order."""
    return [line for line in out.splitlines() if line.startswith("• ")]


def test_demo_prints_the_channels_digest_on_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    lines = out.splitlines()
    assert len(lines) <= 80, out
    assert lines[-1] == NEXT
    assert first.stderr == ""  # jieba and the rest stay quiet
    m = POLLED.match(lines[0])
    assert m is not None, out
    feeds, new, already = map(int, m.groups())
    assert (feeds, already) == (7, 3)  # the aggregator re-links three stories
    assert new >= 35
    assert (tmp_path / "demo.db").is_file()
    assert "Demo digest ·" in out

    shown = stories(out)
    assert 20 <= len(shown) <= 30
    titles = [line.split(" — ")[0] for line in shown]
    assert len(titles) == len(set(titles))  # each story once
    # ranked: the summit (still reported at the end) first, above its preview a month
    # earlier, which had more entries
    assert titles[0] == (
        "• Biden and Xi meet outside San Francisco, agree to reopen military hotline"
    )
    preview = titles.index(
        "• Wang Yi expected in Washington as both sides prepare for a Xi-Biden summit"
    )
    assert preview > 0
    # the Chinese report of the summit is the same story, headed in English
    assert "Harbor Wire, 东岸时报 East Shore Times" in shown[0]
    assert not any(t.startswith("• 习近平同拜登") for t in titles)
    # near misses never show up
    for near_miss in ("Xi'an", "Pius XI", "Hunter Biden", "balloon festival", "Han Duck-soo"):
        assert near_miss not in out
    # tracking links from the aggregator never show up as stories of their own, and the
    # aggregator is credited as an outlet of the stories it carried
    assert "utm_source=newsroomdigest" not in out
    chips = next(line for line in shown if "Commerce widens export controls" in line)
    assert "Capital Ledger, 东岸时报 East Shore Times +1" in chips

    # a second run starts from an empty database again and prints the same digest
    fresh_env(monkeypatch, tmp_path)
    second = run_cli(["demo", "--data-dir", str(tmp_path)], capsys)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == lines

    # --keep: the items are stored already; the digest is printed all the same
    kept = run_cli(["demo", "--data-dir", str(tmp_path), "--keep"], capsys)
    assert kept.returncode == 0, kept.stderr
    m2 = POLLED.match(kept.stdout.splitlines()[0])
    assert m2 is not None
    assert (int(m2.group(2)), int(m2.group(3))) == (0, new + already)
    assert kept.stdout.splitlines()[1:] == lines[1:]
