"""``briefbot slack manifest --url https://HOST``: the Slack app manifest, as JSON.

Paste it at https://api.slack.com/apps → Create New App → From an app manifest, and the
app has its slash command, scopes, request URLs and event subscriptions in one step.

Scopes (bot), and no more:

- ``commands``: the ``/briefbot`` slash command;
- ``chat:write``: post digests, alerts and briefings (in channels the bot was invited to);
- ``channels:history``, ``groups:history``: read the recent messages of a public /
  private channel the bot is in, to find a delivery's key after an ambiguous failure
  (exactly once, see :mod:`.sink`);
- ``users:read``: ``users.info``, whether a user is a workspace admin or owner (who may
  change a channel's setup);
- ``files:write``: upload the OPML file of ``/briefbot feeds export``;
- ``files:read``: download the OPML file given to ``/briefbot feeds import``.

Events: ``app_uninstalled`` and ``tokens_revoked`` (they need no scope): the
installation is deleted and the workspace's channels paused.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yarl

from bot.adapters.slack.blocks import COMMAND

BOT_SCOPES = (
    "commands",
    "chat:write",
    "channels:history",
    "groups:history",
    "users:read",
    "files:write",
    "files:read",
)
BOT_EVENTS = ("app_uninstalled", "tokens_revoked")
USAGE_HINT = "help | brief | digest now | track | feeds add URL | status"


def manifest(
    url: str | None, *, socket_mode: bool = False, name: str = "Briefbot"
) -> dict[str, Any]:
    """The manifest for an app served at ``url`` (its ``/slack/events`` and OAuth
    redirect); with ``socket_mode`` no request URL is needed."""
    base = (url or "").rstrip("/")
    events = f"{base}/slack/events"
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": "News briefings: digests, alerts and the watchlist of this channel",
        "usage_hint": USAGE_HINT,
        "should_escape": False,
    }
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": list(BOT_EVENTS)},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
    }
    oauth: dict[str, Any] = {"scopes": {"bot": list(BOT_SCOPES)}}
    if not socket_mode:
        command["url"] = events
        settings["event_subscriptions"]["request_url"] = events
        settings["interactivity"]["request_url"] = events
        settings["interactivity"]["message_menu_options_url"] = events
        oauth["redirect_urls"] = [f"{base}/slack/oauth_redirect"]
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "Polls news feeds, matches a watchlist, posts digests.",
            "background_color": "#1d3557",
        },
        "features": {
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": oauth,
        "settings": settings,
    }


def check_url(url: str) -> str:
    parsed = yarl.URL(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise argparse.ArgumentTypeError(
            f"{url!r} is not an http(s) URL: give the public base URL, e.g. https://briefbot.example.org"
        )
    if parsed.scheme != "https":
        print(
            "briefbot slack manifest: note: Slack only accepts https request URLs", file=sys.stderr
        )
    return str(parsed).rstrip("/")


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:  # noqa: ARG001 - the subcommand hook's signature
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    man = sub.add_parser(
        "manifest",
        help="print the Slack app manifest (JSON)",
        description="Print the app manifest: the /briefbot command, the scopes it needs, the "
        "request URLs and the event subscriptions. Paste it at api.slack.com/apps → Create "
        "New App → From an app manifest.",
    )
    man.add_argument(
        "--url",
        type=check_url,
        metavar="URL",
        help="the public base URL Slack reaches (https://HOST); requests go to URL/slack/events",
    )
    man.add_argument(
        "--socket-mode",
        action="store_true",
        help="a Socket Mode app (no public URL; set SLACK_APP_TOKEN)",
    )
    man.add_argument("--name", default="Briefbot", help="the app's name (default: Briefbot)")


def main(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) != "manifest":
        print(
            "usage: briefbot slack manifest --url https://HOST (see briefbot slack --help)",
            file=sys.stderr,
        )
        return 2
    if not args.url and not args.socket_mode:
        print(
            "briefbot slack manifest: give --url https://HOST (the address Slack reaches), "
            "or --socket-mode",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(manifest(args.url, socket_mode=args.socket_mode, name=args.name), indent=2))
    return 0
