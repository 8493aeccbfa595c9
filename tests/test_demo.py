"""``briefbot demo`` end to end, twice, in a temporary data directory (offline: the
sample feeds are served on loopback). The first run is a real ``python -m bot demo``
process; the runs after it go through the same command in the test process
(tests/clirun.py) and must print what a process prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import fresh_env, run_cli

SUMMARY = re.compile(r"^(\d+) new items; (\d+) already stored; (\d+) matched", re.M)


def run_demo(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFBOT_")}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=60,
        check=False,
    )


def section(out: str, heading: str) -> str:
    """The lines under an entry heading, up to the next blank line."""
    start = out.index(heading)
    end = out.find("\n\n", start)
    return out[start : end if end != -1 else len(out)]


def test_demo_runs_twice_without_reporting_items_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert f"Demo database: {tmp_path / 'demo.db'}" in out
    assert (tmp_path / "demo.db").is_file()
    m = SUMMARY.search(out)
    assert m is not None, out
    new, already, matched = map(int, m.groups())
    assert new >= 35
    assert already == 3  # the aggregator re-links three stories with tracking params
    assert 0 < matched < new

    xi = section(out, "Xi Jinping [xi-jinping]")
    assert "Biden and Xi meet" in xi
    assert "习近平同拜登" in xi  # the Chinese outlet matches by the same rules
    assert "Xi'an" not in xi
    assert "Pius XI" not in xi
    assert "Hunter Biden" not in section(out, "Joe Biden [joe-biden]")
    not_matched = section(out, "Not matched")
    for near_miss in (
        "Xi'an",
        "Pius XI",
        "Hunter Biden",
        "exports fell",
        "balloon festival",
        "Thailand",
        "Han Duck-soo",
    ):
        assert near_miss in not_matched
    # one story carried by several outlets is shown once, with its outlets
    assert re.search(r"^    [^\n·]+, [^\n·]+ · \d\d \w{3} 2023", out, re.M), out
    # tracking links from the aggregator never show up as items of their own
    assert "utm_source=newsroomdigest" not in out
    # ... but the aggregator is credited as an outlet of the stories it carried
    chips = section(out, "Gina Raimondo [gina-raimondo]")
    assert "Commerce widens export controls" in chips
    assert "    Capital Ledger, Newsroom Digest · 17 Oct 2023" in chips
    assert "capitalledger.example/tech/2023/10/17/chip-export-controls" in chips

    fresh_env(monkeypatch, tmp_path)
    second = run_cli(["demo", "--data-dir", str(tmp_path)], capsys)
    assert second.returncode == 0, second.stderr
    m2 = SUMMARY.search(second.stdout)
    assert m2 is not None, second.stdout
    assert (int(m2.group(1)), int(m2.group(2))) == (0, new + already)
    assert "Nothing new" in second.stdout
    assert "Xi Jinping [xi-jinping]" not in second.stdout

    fresh = run_cli(["demo", "--data-dir", str(tmp_path), "--fresh"], capsys)
    m3 = SUMMARY.search(fresh.stdout)
    assert m3 is not None
    assert int(m3.group(1)) == new
    # the same stories, copies and outlets whichever feed the loopback server answers
    # first (feeds store in a fixed order); only the server's port differs
    assert fresh.stdout.splitlines()[2:] == out.splitlines()[2:]
