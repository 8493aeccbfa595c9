"""``briefbot match`` and ``briefbot eval`` through the real command dispatcher."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import FeedServer, rss

from bot.__main__ import main

ITEMS = [
    {"id": "a", "title": "Biden to meet Xi at APEC", "summary": "Hunter Biden was not there."},
    {"id": 7, "title": "Hot-air balloon fiesta", "summary": None},
    {"id": "c", "title": "习近平会见布林肯", "summary": "<p>双方讨论了台湾问题。</p>"},
]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


# -- match ------------------------------------------------------------------------------


def test_match_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    code, out, err = run(["match", "--items", str(path)], capsys)
    assert code == 0, err
    rows = lines(out)
    assert [r["id"] for r in rows] == ["a", 7, "c"]  # a numeric id stays a number
    assert rows[0]["matches"] == ["apec", "joe-biden", "xi-biden-summit", "xi-jinping"]
    assert rows[0]["why"]["joe-biden"] == ["Biden", "title"]  # type: ignore[index]
    assert rows[0]["why"]["xi-biden-summit"] == ["Xi + Biden + meet", "title"]  # type: ignore[index]
    assert rows[1] == {"id": 7, "matches": [], "why": {}}
    assert rows[2]["matches"] == ["antony-blinken", "taiwan", "xi-jinping"]
    assert rows[2]["why"]["taiwan"] == ["台湾", "summary"]  # type: ignore[index]


def test_match_keeps_id_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"id": 12, "title": "Taiwan votes", "summary": ""},
        {"id": "12", "title": "Taiwan votes", "summary": ""},
        {"id": 10**20, "title": "x", "summary": ""},
    ]
    path = write_jsonl(tmp_path / "items.jsonl", rows)
    code, out, _ = run(["match", "--items", str(path)], capsys)
    assert code == 0
    ids = [r["id"] for r in lines(out)]
    assert ids == [12, "12", 10**20]
    assert [type(i) for i in ids] == [int, str, int]
    for bad in (True, 1.5, None, ""):
        path = write_jsonl(tmp_path / "bad.jsonl", [{"id": bad, "title": "t", "summary": ""}])
        code, _, err = run(["match", "--items", str(path)], capsys)
        assert code == 2
        assert "line 1: missing field 'id'" in err


def test_match_explain_lists_rejections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(
        tmp_path / "items.jsonl", [{"id": "x", "title": "Hunter Biden in court", "summary": ""}]
    )
    code, out, _ = run(["match", "--items", str(path), "--explain"], capsys)
    assert code == 0
    (row,) = lines(out)
    assert row["matches"] == []
    assert {
        "entry": "joe-biden",
        "alias": "Biden",
        "field": "title",
        "reason": "excluded by 'Hunter Biden'",
    } in row["rejected"]  # type: ignore[operator]


def test_match_with_user_watchlist_and_config_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "watchlist.toml").write_text(
        'disable = ["joe-biden"]\n[[entry]]\nid = "fiesta"\nkind = "topic"\nname = "Fiesta"\n'
        'aliases = ["balloon fiesta"]\n',
        encoding="utf-8",
    )
    extra = tmp_path / "extra.toml"
    extra.write_text(
        '[[entry]]\nid = "meetings"\nkind = "topic"\nname = "Meetings"\naliases = ["$meeting"]\n',
        encoding="utf-8",
    )
    path = write_jsonl(tmp_path / "items.jsonl", ITEMS[:2])
    code, out, err = run(
        ["--config", str(cfg), "match", "--items", str(path), "--watchlist", str(extra)], capsys
    )
    assert code == 0, err
    rows = lines(out)
    assert "joe-biden" not in rows[0]["matches"]  # type: ignore[operator]
    assert "meetings" in rows[0]["matches"]  # type: ignore[operator]
    assert rows[1]["matches"] == ["fiesta"]


RSS = rss(
    [
        {"title": "Wang Yi meets Sullivan", "link": "https://wire.example/1",
         "description": "The national security adviser hosted China&#8217;s top diplomat."},
        {"title": "Weather", "link": "https://wire.example/2", "description": "Rain."},
    ]
)  # fmt: skip


def test_match_feed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    code, out, err = run(["match", "--feed", str(path)], capsys)
    assert code == 0, err
    rows = lines(out)
    assert [r["id"] for r in rows] == ["https://wire.example/1", "https://wire.example/2"]
    assert rows[0]["matches"] == ["jake-sullivan", "wang-yi"]
    assert rows[1]["matches"] == []


async def test_match_feed_url(capsys: pytest.CaptureFixture[str]) -> None:
    async with FeedServer() as server:
        url = server.feed("/feed.xml", RSS)
        missing = server.url("/missing.xml")
        code = await asyncio.to_thread(main, ["match", "--feed", url])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert lines(out)[0]["matches"] == ["jake-sullivan", "wang-yi"]
        code = await asyncio.to_thread(main, ["match", "--feed", missing])
        out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("briefbot: ")
    assert missing in err
    assert "Traceback" not in err


# -- bad input: one clear line, exit 2 -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ('{"id": "a", "title": "t", "summary": "s"}\n{"id": "b", "title": \n',
         "line 2: invalid JSON"),
        ('{"id": "a", "summary": "s"}\n', "line 1: missing field 'title'"),
        ('{"title": "t", "summary": "s"}\n', "line 1: missing field 'id'"),
        ('{"id": "a", "title": 5, "summary": "s"}\n', "field 'title' must be a string"),
        ('["not", "an", "object"]\n', "expected a JSON object"),
        ("\n\n", "no items"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)  # fmt: skip
def test_match_bad_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "items.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(["match", "--items", str(path)], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("briefbot: "), err
    assert message in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!doctype html><html><body>Hello</body></html>", "not a feed"),
        (b"", "empty document"),
        (b"just some words", "not a feed"),
    ],
)
def test_match_bad_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: bytes, message: str
) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(body)
    code, _, err = run(["match", "--feed", str(path)], capsys)
    assert code == 2
    assert err.startswith(f"briefbot: {path}: "), err
    assert message in err, err


def test_match_bad_watchlist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    wl = tmp_path / "wl.toml"
    wl.write_text('[[entry]]\nid = "x"\nkind = "topic"\nname = "X"\naliases = [3]\n', "utf-8")
    code, _, err = run(["match", "--items", str(items), "--watchlist", str(wl)], capsys)
    assert code == 2
    assert str(wl) in err
    assert "entry[1].aliases[1]" in err
    code, _, err = run(
        ["match", "--items", str(items), "--watchlist", str(tmp_path / "none.toml")], capsys
    )
    assert code == 2
    assert "watchlist file not found" in err


# -- eval -------------------------------------------------------------------------------

LABELLED = [
    {"id": "1", "title": "Biden meets Xi", "summary": "", "labels":
     ["joe-biden", "xi-jinping", "xi-biden-summit"]},
    {"id": "2", "title": "Hunter Biden in court", "summary": "", "labels": []},
    {"id": "3", "title": "Business climate sours", "summary": "", "labels": ["climate"]},
    {"id": "4", "title": "Taiwan votes", "summary": "", "labels": ["taiwan", "not-an-entry"]},
]  # fmt: skip


def test_eval_human_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "gold.jsonl", LABELLED)
    code, out, err = run(["eval", "--items", str(path), "--ignore-unknown-labels"], capsys)
    assert code == 0, err
    assert "items: 4" in out
    assert "precision 1.000   recall 0.800" in out
    assert "False negatives (missed): 1" in out
    assert "3  climate: Business climate sours" in out
    assert "excluded by 'business climate'" in out
    assert "not-an-entry (1)" in out


def test_eval_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "gold.jsonl", LABELLED)
    code, out, _ = run(
        ["eval", "--items", str(path), "--json", "--worst", "0", "--ignore-unknown-labels"],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert (data["tp"], data["fp"], data["fn"]) == (4, 0, 1)
    assert data["precision"] == 1.0
    assert data["recall"] == 0.8
    assert data["per_entry"]["climate"] == {
        "tp": 0, "fp": 0, "fn": 1, "precision": 1.0, "recall": 0.0, "f1": 0.0
    }  # fmt: skip
    assert data["false_negatives"] == []


def test_eval_counts_false_positives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": "1", "title": "Iran and Iraq", "summary": "", "labels": []}]
    path = write_jsonl(tmp_path / "gold.jsonl", rows)
    code, out, _ = run(["eval", "--items", str(path), "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert data["fp"] == 1
    assert data["false_positives"][0]["why"] == "matched 'Iran' in the title"


# Misses in input order: one of "taiwan" first, then three of "iran" (the entry that
# misses most), then a false positive of "iran".
RANKED = [
    {"id": 1, "title": "Island election results", "summary": "", "labels": ["taiwan"]},
    {"id": 2, "title": "Oil tanker seized", "summary": "", "labels": ["iran"]},
    {"id": 3, "title": "Nuclear talks stall", "summary": "", "labels": ["iran"]},
    {"id": 4, "title": "Persian Gulf protests", "summary": "", "labels": ["iran"]},
    {"id": 5, "title": "Iran rial falls", "summary": "", "labels": []},
    {"id": 6, "title": "Taiwan Strait transit", "summary": "", "labels": []},
]


def test_eval_lists_the_worst_misses_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "gold.jsonl", RANKED)
    code, out, _ = run(["eval", "--items", str(path), "--json", "--worst", "2"], capsys)
    assert code == 0
    data = json.loads(out)
    assert (data["per_entry"]["iran"]["fn"], data["per_entry"]["iran"]["fp"]) == (3, 1)
    assert (data["per_entry"]["taiwan"]["fn"], data["per_entry"]["taiwan"]["fp"]) == (1, 1)
    # iran misses 4 times, taiwan twice: iran's misses come first, not item 1's
    assert [(m["id"], m["entry"]) for m in data["false_negatives"]] == [(2, "iran"), (3, "iran")]
    assert [(m["id"], m["entry"]) for m in data["false_positives"]] == [
        (5, "iran"),
        (6, "taiwan"),
    ]

    code, out, _ = run(["eval", "--items", str(path), "--worst", "2"], capsys)
    assert code == 0
    fn_section = out.split("False negatives (missed): 4")[1].split("False positives")[0]
    assert "the 2 worst" in fn_section
    assert "2  iran: Oil tanker seized" in fn_section
    assert "3  iran: Nuclear talks stall" in fn_section
    assert "Island election results" not in fn_section


def test_rank_misses_puts_false_negatives_first_within_an_entry() -> None:
    from bot.core.matching import compile_watchlist
    from bot.matchcli import InputItem, evaluate
    from bot.watchlist_files import default_watchlist

    items = [
        InputItem(id="fp", title="Iran rial falls", summary="", labels=()),
        InputItem(id="fn", title="Persian Gulf protests", summary="", labels=("iran",)),
        InputItem(id="other", title="Island election", summary="", labels=("taiwan",)),
    ]
    result = evaluate(compile_watchlist(default_watchlist()), items)
    assert [(m.kind, m.item_id) for m in result.misses] == [
        ("fn", "fn"),
        ("fp", "fp"),
        ("fn", "other"),
    ]


def test_eval_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "gold.jsonl", [{"id": "1", "title": "t", "summary": "s"}])
    code, _, err = run(["eval", "--items", str(path)], capsys)
    assert code == 2
    assert "line 1: 'labels' must be a list" in err
    code, _, err = run(["eval", "--items", str(path), "--worst", "-1"], capsys)
    assert code == 2
    assert "--worst" in err


def test_console_script_exit_status(tmp_path: Path) -> None:
    """The installed ``briefbot`` script, as a real process (the one test that runs it):
    its exit status and its one-line error."""
    script = Path(sys.executable).with_name("briefbot")
    assert script.is_file(), f"{script}: install the project (pip install -e .)"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n", encoding="utf-8")
    proc = subprocess.run(
        [str(script), "match", "--items", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"briefbot: {bad}, line 1: invalid JSON: " + (
        "Expecting property name enclosed in double quotes (column 2)"
    )


def test_eval_refuses_labels_the_watchlist_does_not_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        *LABELLED,
        {"id": "5", "title": "Taiwan again", "summary": "", "labels": ["not-an-entry"]},
    ]
    path = write_jsonl(tmp_path / "gold.jsonl", rows)
    code, out, err = run(["eval", "--items", str(path)], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(
        "briefbot: labels not in the watchlist: 'not-an-entry' (2 items, first '4')"
    ), err
    assert "--ignore-unknown-labels" in err
    assert len(err.strip().splitlines()) == 1
    # a label of an entry the user's watchlist disables is unknown too
    wl = tmp_path / "wl.toml"
    wl.write_text('disable = ["climate"]\n', encoding="utf-8")
    ok = write_jsonl(tmp_path / "ok.jsonl", LABELLED[:3])
    code, _, err = run(["eval", "--items", str(ok), "--watchlist", str(wl)], capsys)
    assert code == 2
    assert "'climate' (1 item, first '3')" in err
