"""Configuration: the files in a config directory, the environment, and how every
mistake is reported (one line naming the file or variable, the key and the problem,
exit status 2, no traceback), through the real ``briefbot`` entry point."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import find_command, main
from bot.config import (
    ENV_CONFIG_DIR,
    PollSettings,
    Secrets,
    Settings,
    StorageSettings,
    config_dir,
    hide_password,
    load_secrets,
    load_settings,
)
from bot.errors import ConfigError
from bot.feeds.sources import load_feed_sources
from bot.watchlist_files import loads_watchlist

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BRIEFBOT_* from the machine running the tests; data under tmp_path."""
    import os

    for name in list(os.environ):
        if name.startswith("BRIEFBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(err: str) -> str:
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith("briefbot: ")
    return err


def make_cfg(tmp_path: Path, **files: str) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (cfg / name.replace("_", ".", 1)).write_text(text, encoding="utf-8")
    return cfg


# -- briefbot.toml --------------------------------------------------------------------


def test_unknown_key_names_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[poll]\nintervall_minutes = 5\n")
    status, out, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert out == ""
    assert_one_line_error(err)
    assert f"{cfg / 'briefbot.toml'}: poll.intervall_minutes: unknown key" in err


def test_unknown_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[pol]\ninterval_minutes = 5\n")
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert "briefbot.toml: pol: unknown key" in err


def test_bad_toml_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml='[poll]\ninterval_minutes = "5\n')
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert str(cfg / "briefbot.toml") in err
    assert "not valid TOML" in err
    assert "line 2" in err


def test_wrong_type_and_several_problems_stay_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_cfg(
        tmp_path,
        briefbot_toml='[poll]\nmax_concurrency = "lots"\nper_host = 0\n[http]\nmax_bytes = 1\n',
    )
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert "poll.max_concurrency: Input should be a valid integer" in err
    assert "(and 2 more problems: poll.per_host, http.max_bytes)" in err


def test_valid_user_file_overrides_defaults(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[poll]\ninterval_minutes = 5\n")
    settings = load_settings(cfg, environ={})
    assert settings.poll.interval_minutes == 5
    assert settings.poll.per_host == 2  # the default, untouched


# -- storage.database_url ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", "is not a database URL"),
        ("mysql://x/y", "unsupported database 'mysql'"),
        ("postgresql://u@db.internal/briefbot", "add +asyncpg"),
        ("postgres://u@db.internal/briefbot", "add +asyncpg"),
        ("postgresql+psycopg2://u@db.internal/briefbot", "postgresql+asyncpg://"),
        ("sqlite:////var/lib/briefbot.db", "add +aiosqlite"),
    ],
)
def test_check_config_refuses_bad_database_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, expected: str
) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml=f'[storage]\ndatabase_url = "{url}"\n')
    status, out, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2, out
    assert_one_line_error(err)
    assert f"{cfg / 'briefbot.toml'}: storage.database_url: " in err
    assert expected in err


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///relative.db",
        "sqlite+aiosqlite:////abs/path/briefbot.db",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://briefbot:pw@db.internal:5432/briefbot",
    ],
)
def test_supported_database_urls_are_accepted(url: str) -> None:
    assert StorageSettings(database_url=url).resolved_url() == url


def test_database_password_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = "postgresql+asyncpg://briefbot:s3cret-pw@db.internal:5432/briefbot"
    cfg = make_cfg(tmp_path, briefbot_toml=f'[storage]\ndatabase_url = "{good}"\n')
    status, out, _ = cli(["--config", str(cfg), "check-config", "--no-connect"], capsys)
    assert status == 0
    assert "postgresql+asyncpg://briefbot:***@db.internal:5432/briefbot" in out
    assert "s3cret" not in out

    bad = "mysql://briefbot:s3cret-pw@db.internal/briefbot"
    cfg2 = make_cfg(tmp_path / "two", briefbot_toml=f'[storage]\ndatabase_url = "{bad}"\n')
    status, out, err = cli(["--config", str(cfg2), "check-config"], capsys)
    assert status == 2
    assert "s3cret" not in out + err


def test_hide_password() -> None:
    assert hide_password("postgresql+asyncpg://u:pw@h:1/d") == "postgresql+asyncpg://u:***@h:1/d"
    assert hide_password("postgresql+asyncpg://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert hide_password("sqlite+aiosqlite:///:memory:") == "sqlite+aiosqlite:///:memory:"
    # not even parseable: still no password
    assert "pw" not in hide_password("weird://u:pw@h:notaport/d")


# -- the data directory -----------------------------------------------------------------


def test_default_data_dir_is_per_user_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.chdir(tmp_path)
    storage = load_settings(None, environ={}).storage
    assert storage.data_dir == ""
    assert storage.resolved_data_dir() == tmp_path / "share" / "briefbot"
    assert storage.resolved_url() == (
        f"sqlite+aiosqlite:///{tmp_path / 'share' / 'briefbot' / 'briefbot.db'}"
    )


def test_data_dir_setting_wins(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml=f'[storage]\ndata_dir = "{tmp_path / "d"}"\n')
    assert load_settings(cfg, environ={}).storage.resolved_data_dir() == tmp_path / "d"


# -- the config directory ---------------------------------------------------------------


def test_missing_config_dir_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    status, _, err = cli(["--config", str(missing), "check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert f"{missing}: config directory not found" in err


def test_config_dir_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_cfg(
        tmp_path,
        feeds_toml='replace_defaults = true\n[[feed]]\nname = "Wire"\n'
        'url = "https://wire.example/feed.xml"\n',
    )
    monkeypatch.setenv(ENV_CONFIG_DIR, str(cfg))
    assert config_dir() == cfg
    status, out, _ = cli(["check-config"], capsys)
    assert status == 0
    assert f"config OK ({cfg})" in out
    assert "feeds:     1" in out
    # --config wins over the variable
    other = make_cfg(tmp_path / "other")
    assert config_dir(other) == other

    monkeypatch.setenv(ENV_CONFIG_DIR, str(tmp_path / "gone"))
    status, _, err = cli(["check-config"], capsys)
    assert status == 2
    assert "gone: config directory not found" in err


def test_no_config_dir_uses_shipped_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_dir(None, environ={}) is None
    status, out, _ = cli(["check-config"], capsys)
    assert status == 0
    assert "config OK (shipped defaults)" in out
    assert "watchlist: 31 entries" in out


def test_example_config_dir_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    """The repository's config/ (the README's example) passes check-config."""
    status, out, err = cli(["--config", str(REPO / "config"), "check-config"], capsys)
    assert status == 0, err
    assert "watchlist: 31 entries" in out  # everything in the example is commented out


def test_example_watchlist_entries_are_valid_when_uncommented() -> None:
    text = (REPO / "config" / "watchlist.toml").read_text(encoding="utf-8")
    code = "\n".join(
        line[2:] for line in text.splitlines() if re.match(r"^# (\[|[a-z_]+ = |\s{4}|\])", line)
    )
    wl = loads_watchlist(code, "config/watchlist.toml (uncommented)")
    assert len(wl.entries) >= 2
    assert wl.disabled


# -- --config and -v before or after the subcommand ----------------------------------------


def test_config_option_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[poll]\ninterval_minutes = 7\n")
    status, out, _ = cli(["check-config", "--config", str(cfg)], capsys)
    assert status == 0
    assert "every 7 min" in out
    status, out, _ = cli(["-v", "check-config", "-v", "--config", str(cfg)], capsys)
    assert status == 0
    assert "every 7 min" in out


def test_config_directory_named_like_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "briefbot.toml").write_text("[poll]\ninterval_minutes = 9\n")
    assert find_command(["--config", "run", "check-config"]) == "check-config"
    assert find_command(["-v", "--config=run", "match", "--items", "eval"]) == "match"
    assert find_command(["--config"]) is None
    assert find_command([]) is None
    status, out, _ = cli(["--config", "run", "check-config"], capsys)
    assert status == 0
    assert "every 9 min" in out


def test_verbose_counts_on_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr("bot.__main__._setup_logging", seen.append)
    main(["-v", "check-config", "-v"])
    main(["check-config"])
    assert seen == [2, 0]


# -- feeds.toml -------------------------------------------------------------------------


def test_default_feeds_cover_english_and_chinese() -> None:
    feeds = load_feed_sources(None)
    assert len(feeds) >= 12
    langs = {f.lang for f in feeds}
    assert "en" in langs
    assert any(lang and lang.startswith("zh") for lang in langs)
    assert all(f.url.startswith(("http://", "https://")) for f in feeds)
    assert len({f.url for f in feeds}) == len(feeds)


def test_feeds_toml_adds_disables_and_replaces(tmp_path: Path) -> None:
    defaults = load_feed_sources(None)
    dropped = defaults[0].url
    cfg = make_cfg(
        tmp_path,
        feeds_toml=f'disable = ["{dropped}"]\n[[feed]]\nname = "Own wire"\n'
        'url = "https://own.example/rss.xml"\nlang = "en"\n',
    )
    feeds = load_feed_sources(cfg)
    urls = [f.url for f in feeds]
    assert dropped not in urls
    assert "https://own.example/rss.xml" in urls
    assert len(feeds) == len(defaults)

    (cfg / "feeds.toml").write_text(
        'replace_defaults = true\n[[feed]]\nname = "Only"\nurl = "https://only.example/a"\n'
    )
    assert [f.url for f in load_feed_sources(cfg)] == ["https://only.example/a"]


def test_feeds_opml_is_imported(tmp_path: Path) -> None:
    cfg = make_cfg(
        tmp_path,
        feeds_toml="replace_defaults = true\n",
        feeds_opml='<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="Folder"><outline text="Opml Wire" type="rss" '
        'xmlUrl="https://opml.example/feed.xml"/></outline></body></opml>',
    )
    feeds = load_feed_sources(cfg)
    assert [(f.name, f.url) for f in feeds] == [("Opml Wire", "https://opml.example/feed.xml")]

    (cfg / "feeds.opml").write_text("<html>not opml</html>")
    with pytest.raises(ConfigError, match=r"feeds\.opml: not an OPML file"):
        load_feed_sources(cfg)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[feed]]\nname = "A"\nurl = "https://a.example/"\n'
            '[[feed]]\nname = "B"\nurl = "ftp://b.example/feed"\n',
            "feeds.toml: feed[2].url: not an http(s) URL: 'ftp://b.example/feed'",
        ),
        (
            '[[feed]]\nname = "A"\nurl = "https://a.example/"\ntitle = "x"\n',
            "feeds.toml: feed[1].title: unknown key",
        ),
        ('[[feed]]\nurl = "https://a.example/"\n', "feeds.toml: feed[1].name: Field required"),
        (
            'disable = ["https://not-a-default.example/rss"]\n',
            "feeds.toml: disable[1]: 'https://not-a-default.example/rss' is not a default feed",
        ),
        ("replace_defaults = maybe\n", "feeds.toml: not valid TOML"),
    ],
)
def test_feeds_toml_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    cfg = make_cfg(tmp_path, feeds_toml=text)
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert expected in err
    assert "Value error" not in err


def test_feeds_and_watchlist_errors_read_the_same(tmp_path: Path) -> None:
    """One formatter: 1-based positions, TOML-style keys, no pydantic prefixes."""
    cfg = make_cfg(tmp_path, feeds_toml='[[feed]]\nname = "A"\nurl = "gopher://x"\n')
    with pytest.raises(ConfigError) as feeds_err:
        load_feed_sources(cfg)
    with pytest.raises(ConfigError) as wl_err:
        loads_watchlist('[[entry]]\nid = "x"\nkind = "actor"\nname = "X"\naliases = [""]\n', "w")
    assert str(feeds_err.value).endswith("feed[1].url: not an http(s) URL: 'gopher://x'")
    assert str(wl_err.value) == "w: entry[1].aliases[1].text: empty alias"
    assert feeds_err.value.key == "feed[1].url"
    assert wl_err.value.key == "entry[1].aliases[1].text"


def test_empty_context_group_is_refused() -> None:
    entry = '[[entry]]\nid = "x"\nkind = "actor"\nname = "X"\n'
    with pytest.raises(ConfigError, match=r"entry\[1\]\.aliases\[1\]\.context: an empty list"):
        loads_watchlist(entry + 'aliases = [{ text = "Wang", context = [[]] }]\n', "w")
    with pytest.raises(ConfigError, match=r"entry\[1\]\.context: an empty list"):
        loads_watchlist(entry + 'aliases = ["Wang Yi"]\ncontext = [["China"], []]\n', "w")
    # an empty flat list is simply no context
    wl = loads_watchlist(entry + 'aliases = [{ text = "Wang Yi", context = [] }]\n', "w")
    assert wl.entries[0].aliases[0].context == ()


# -- the environment --------------------------------------------------------------------


def test_env_overrides_files(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[poll]\ninterval_minutes = 5\nper_host = 3\n")
    settings = load_settings(
        cfg,
        environ={
            "BRIEFBOT_POLL__INTERVAL_MINUTES": "2.5",
            "BRIEFBOT_DIGEST__DEFAULT_TIMEZONE": "Asia/Shanghai",
            "BRIEFBOT_HTTP__USER_AGENT": '["not", "json", "for a string"]',
            "BRIEFBOT_CONFIG_DIR": "/ignored/here",
            "UNRELATED__VAR": "x",
        },
    )
    assert settings.poll.interval_minutes == 2.5
    assert settings.poll.per_host == 3  # from the file
    assert settings.digest.default_timezone == "Asia/Shanghai"
    assert settings.http.user_agent == '["not", "json", "for a string"]'


def test_list_setting_from_environment_as_json() -> None:
    settings = load_settings(
        None, environ={"BRIEFBOT_SECURITY__ALLOW_HOSTS": '["feeds.internal", "127.0.0.1:8080"]'}
    )
    assert settings.security.allow_hosts == ["feeds.internal", "127.0.0.1:8080"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "BRIEFBOT_SECURITY__ALLOW_HOSTS",
            "feeds.internal",
            "environment variable BRIEFBOT_SECURITY__ALLOW_HOSTS: security.allow_hosts: "
            "not valid JSON",
        ),
        (
            "BRIEFBOT_SECURITY__ALLOW_HOSTS",
            "[1]",
            "environment variable BRIEFBOT_SECURITY__ALLOW_HOSTS: security.allow_hosts[1]: "
            "Input should be a valid string",
        ),
        (
            "BRIEFBOT_POLL__INTERVAL_MINUTES",
            "-1",
            "environment variable BRIEFBOT_POLL__INTERVAL_MINUTES: poll.interval_minutes: "
            "Input should be greater than 0",
        ),
        (
            "BRIEFBOT_POLL__INTERVALL",
            "5",
            "environment variable BRIEFBOT_POLL__INTERVALL: poll.intervall: unknown key",
        ),
        ("BRIEFBOT_NOPE__X", "1", "environment variable BRIEFBOT_NOPE__X: nope: unknown key"),
        (
            "BRIEFBOT_STORAGE__DATABASE_URL",
            "postgresql://u:pw@db/x",
            "environment variable BRIEFBOT_STORAGE__DATABASE_URL: storage.database_url: "
            "postgresql:// needs the asyncpg driver",
        ),
    ],
)
def test_env_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(name, value)
    status, _, err = cli(["check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert expected in err


def test_secrets_come_only_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml='[discord]\ntoken = "abc"\n')
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert "discord.token: unknown key" in err
    monkeypatch.setenv("DISCORD_TOKEN", "from-env")
    status, out, _ = cli(["check-config"], capsys)
    assert status == 0
    assert "token set" in out
    assert "from-env" not in out


def test_check_config_output_is_stable(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(["check-config"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "config OK (shipped defaults)"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "database",
        "feeds",
        "watchlist",
        "poll",
        "discord",
    ]


# -- layers (pydantic-settings) ----------------------------------------------------------


def test_layers_init_then_environment_then_user_file_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[poll]\ninterval_minutes = 5\nper_host = 3\n")
    monkeypatch.setenv(ENV_CONFIG_DIR, str(cfg))
    monkeypatch.setenv("BRIEFBOT_POLL__PER_HOST", "4")
    settings = Settings()
    assert settings.poll.interval_minutes == 5  # the user's file over the defaults
    assert settings.poll.per_host == 4  # the environment over the file
    assert settings.poll.max_concurrency == 16  # the shipped default, key by key
    # keyword arguments win over everything (a whole section given is the section)
    given = Settings(poll=PollSettings(per_host=7))
    assert given.poll.per_host == 7
    assert given.poll.interval_minutes == 15
    assert load_settings(cfg) == settings


def test_a_bad_file_is_named_before_a_bad_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[http]\nmax_bytes = 1\n")
    monkeypatch.setenv("BRIEFBOT_POLL__PER_HOST", "0")
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert f"{cfg / 'briefbot.toml'}: http.max_bytes: Input should be greater than or equal" in err
    (cfg / "briefbot.toml").write_text("[http]\nmax_bytes = 2048\n")
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert "environment variable BRIEFBOT_POLL__PER_HOST: poll.per_host: " in err


def test_a_variable_overrides_a_bad_value_of_the_file_only_when_set(
    tmp_path: Path,
) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml="[poll]\nper_host = 0\n")
    assert load_settings(cfg, environ={"BRIEFBOT_POLL__PER_HOST": "2"}).poll.per_host == 2
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert str(info.value).startswith(f"{cfg / 'briefbot.toml'}: poll.per_host: ")


def test_variables_without_a_key_or_in_lower_case_prefix_are_not_settings() -> None:
    settings = load_settings(
        None,
        environ={
            "BRIEFBOT_POLL": '{"per_host": 9}',
            "briefbot_poll__per_host": "9",
            "BRIEFBOT___PER_HOST": "9",
        },
    )
    assert settings.poll.per_host == 2


def test_key_names_in_variables_are_not_case_sensitive() -> None:
    settings = load_settings(None, environ={"BRIEFBOT_Poll__Per_Host": "5"})
    assert settings.poll.per_host == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[digest]\ndefault_time = "25:00"\n',
         "digest.default_time: '25:00' is not a time of day: use HH:MM (24-hour)"),
        ('[digest]\ndefault_timezone = "America"\n',
         "digest.default_timezone: unknown timezone 'America': use an IANA name"),
    ],
)  # fmt: skip
def test_digest_defaults_are_checked_like_digest_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    cfg = make_cfg(tmp_path, briefbot_toml=text)
    status, _, err = cli(["--config", str(cfg), "check-config"], capsys)
    assert status == 2
    assert_one_line_error(err)
    assert f"{cfg / 'briefbot.toml'}: {expected}" in err


def test_digest_default_time_is_normalised(tmp_path: Path) -> None:
    cfg = make_cfg(
        tmp_path, briefbot_toml='[digest]\ndefault_time = "7:30"\ndefault_timezone = " UTC "\n'
    )
    digest = load_settings(cfg, environ={}).digest
    assert digest.default_time == "07:30"
    assert digest.default_timezone == "UTC"


def test_database_url_is_a_secret_in_settings() -> None:
    url = "postgresql+asyncpg://briefbot:s3cret-pw@db.internal:5432/briefbot"
    settings = load_settings(None, environ={"BRIEFBOT_STORAGE__DATABASE_URL": url})
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())
    assert settings.storage.resolved_url() == url


def test_tokens_are_secrets_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = load_secrets({"DISCORD_TOKEN": " tok-123 ", "SLACK_BOT_TOKEN": "  "})
    assert secrets.discord_token is not None
    assert secrets.discord_token.get_secret_value() == "tok-123"
    assert secrets.slack_bot_token is None  # blank is no token
    assert "tok-123" not in repr(secrets)
    assert load_secrets({}).discord_token is None
    monkeypatch.setenv("DISCORD_TOKEN", "from-env")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    token = Secrets().discord_token
    assert token is not None
    assert token.get_secret_value() == "from-env"


def test_check_config_imports_only_what_it_checks(tmp_path: Path) -> None:
    """No storage, fetcher, scheduler or chat platform: a config check loads settings,
    feeds and the watchlist, nothing that runs."""
    code = (
        "import sys\n"
        "from bot.__main__ import main\n"
        "status = main(['check-config'])\n"
        "heavy = ('discord', 'aiohttp', 'apscheduler', 'aiosqlite', 'alembic', 'feedparser',\n"
        "         'bot.app', 'bot.storage', 'bot.scheduling', 'bot.feeds.fetch', 'bot.adapters')\n"
        "print(status, sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "      or any(m == h or m.startswith(h + '.') for h in heavy)))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("BRIEFBOT_")}
    env["XDG_DATA_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"
