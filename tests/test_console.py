"""``briefbot console`` end to end: the whole command (tests/clirun.py), commands piped
on its stdin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from clirun import CliResult, fresh_env, run_cli

from bot.core.models import FeedSource
from bot.core.opml import export_opml

Console = Callable[..., CliResult]


@pytest.fixture
def run_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Console:
    """``briefbot console ARGS`` with ``lines`` piped on its stdin, in a clean
    environment (HOME under tmp_path: never the developer's data directory)."""
    fresh_env(monkeypatch, tmp_path)

    def run(lines: list[str], *args: str) -> CliResult:
        return run_cli(["console", *args], capsys, stdin="\n".join(lines) + "\n")

    return run


def test_demo_session_piped(tmp_path: Path, run_console: Console) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_bytes(export_opml([FeedSource("ftp://files.example/feed", "FTP thing")]))
    result = run_console(
        [
            "# a comment line is skipped",
            # the samples are served as published over the last weeks
            "/brief entry:wang-yi hours:720",
            '/track kind:actor name:"Li Qiang" aliases:"Premier Li,李强" mode:instant',
            "/watchlist",
            "/test text:Premier Li met Wang Yi",
            "/bogus",
            "/brief hours:abc",
            f"/feeds import file:{opml}",
            "/feeds import file:/no/such/file.opml",
            "/digest now",
            "/status",
            "",
        ],
        "--demo",
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in out + result.stderr
    assert out.startswith("Polled 7 sample feeds:")
    # each command is echoed, then answered, in order
    order = [
        out.index(f"> {cmd}")
        for cmd in (
            "/brief entry:wang-yi hours:720",
            "/track kind:actor",
            "/watchlist",
            "/test text:",
            "/bogus",
            "/brief hours:abc",
            "/feeds import file:",
            "/digest now",
            "/status",
        )
    ]
    assert order == sorted(order)
    assert "> # a comment" not in out
    brief = out[out.index("> /brief entry:wang-yi hours:720") : out.index("> /track")]
    assert "Brief: Wang Yi ·" in brief
    assert "Wang Yi holds talks with Blinken" in brief
    assert "Tracking Li Qiang (actor, id li-qiang): posted at once and in the digest." in out
    assert "• Li Qiang (li-qiang) [this channel's, instant]" in out
    assert "✓ Li Qiang (li-qiang): matched 'Premier Li'" in out
    assert "error: unknown command /bogus; try /help" in out
    assert "error: hours must be a whole number, not 'abc'" in out
    assert "✗ FTP thing: refused" not in out  # the reason is the scheme
    assert "✗ FTP thing: only http:// and https://" in out
    assert "error: cannot read /no/such/file.opml" in out
    # /digest now: the console channel is a sink, the digest prints, then the receipt
    digest = out[out.index("> /digest now") : out.index("> /status")]
    assert "Digest ·" in digest
    assert "Digest posted (" in digest
    assert "Last digest:" in out[out.index("> /status") :]


def test_strict_exit_status_and_read_only(tmp_path: Path, run_console: Console) -> None:
    ok = run_console(["/help"], "--strict", "--data-dir", str(tmp_path / "d"))
    assert ok.returncode == 0, ok.stderr
    assert "Commands:" in ok.stdout
    failed = run_console(
        ["/help", "/track kind:topic name:Rare earths"],
        "--strict",
        "--read-only",
        "--data-dir",
        str(tmp_path / "d"),
    )
    assert failed.returncode == 1
    assert "error: Changing this channel's setup needs the Manage Server permission" in (
        failed.stdout
    )
    assert "Traceback" not in failed.stdout + failed.stderr


def test_state_persists_between_runs_per_channel(tmp_path: Path, run_console: Console) -> None:
    data = str(tmp_path / "data")
    first = run_console(
        [
            "/track kind:topic name:Rare earths aliases:rare-earth minerals",
            "/digest schedule 07:45 Europe/Berlin weekdays",
        ],
        "--data-dir",
        data,
        "--channel",
        "desk",
    )
    assert first.returncode == 0, first.stderr
    assert "Digest scheduled at 07:45 (Europe/Berlin), on mon-fri." in first.stdout
    second = run_console(["/watchlist", "/status"], "--data-dir", data, "--channel", "desk")
    assert "• Rare earths (rare-earths) [this channel's]" in second.stdout
    assert "(07:45 Europe/Berlin, mon-fri)" in second.stdout
    other = run_console(["/watchlist"], "--data-dir", data, "--channel", "other")
    assert "rare-earths" not in other.stdout
    assert (tmp_path / "data" / "briefbot.db").is_file()


def test_bad_data_dir_is_one_line(tmp_path: Path, run_console: Console) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_console(["/help"], "--data-dir", str(blocker / "sub"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("briefbot: cannot create the data directory")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readme_walkthrough_track_then_add_feed_then_brief(run_console: Console) -> None:
    """The README's console walkthrough: a new actor has no stories until a feed that
    covers it is added; /feeds add stores and matches that feed at once."""
    port = _free_port()
    extra = f"http://127.0.0.1:{port}/feeds/lantern-review.xml"
    result = run_console(
        [
            '/track kind:actor name:"Li Qiang" aliases:"Premier Li,李强"',
            "/brief entry:li-qiang hours:720",
            f"/feeds add {extra}",
            "/brief entry:li-qiang hours:720",
            f"/feeds add {extra}",
        ],
        "--demo",
        "--demo-port",
        str(port),
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert f"Another sample feed to try /feeds add with: {extra}" in out
    before, after = out.split(f"> /feeds add {extra}", 1)[0], out.split("> /brief")[2]
    assert "No stored story from the last 7 days matches yet." in before
    assert "Added Lantern Review: 4 items" in out
    # the second brief lists the two Li Qiang stories, not the factory-orders item from
    # the same feed: the expo was reported in English and Chinese, one story headed in
    # the channel's language (English)
    assert after.count("Lantern Review ·") == 2
    assert "2 stories · 3 items" in after
    assert "Premier Li Qiang courts foreign investors at Shanghai expo" in after
    assert "李强出席第六届进博会开幕式" not in after
    assert "Factory orders" not in after
    assert "This channel already follows" in out.split(f"> /feeds add {extra}")[2]


def test_grouping_schedules_and_misspelled_options_piped(run_console: Console) -> None:
    result = run_console(
        [
            "/digest group by:story",
            "/brief hours:720",
            "/digest schedule time:08:00 days:fri-mon",
            "/status",
            '/track kind:actor name:"Li Qiang" alias:"Premier Li"',
            '/track kind:actor name:"Li Qiang" mode:instant Premier Li',
            "/watchlist",
        ],
        "--demo",
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in out + result.stderr
    assert "something went wrong" not in out
    assert "grouped by story" in out
    brief = out[out.index("> /brief") : out.index("> /digest schedule")]
    body = [line for line in brief.splitlines()[3:] if line.strip()]
    assert len(body) > 10
    # one ranked list: story lines and their links only, no entry headings
    assert all(line.startswith(("• ", "  ", "(")) for line in body), body
    assert "Digest scheduled at 08:00 (UTC), on fri,sat,sun,mon." in out
    assert "(08:00 UTC, fri,sat,sun,mon)" in out[out.index("> /status") :]
    assert "error: /track has no option 'alias' — did you mean aliases:?" in out
    assert "error: unexpected 'Premier Li' after mode:… — if it is aliases" in out
    watchlist = out[out.index("> /watchlist") :]
    assert "(li-qiang" not in watchlist  # neither mistake created an entry
    assert "this channel's" not in watchlist
