"""The Block Kit of Slack's interactivity: the modals (track, schedule, import), the
select menu that answers ``untrack`` / ``brief`` / ``feeds remove`` without an argument,
and reading what a submitted modal holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.adapters.slack.blocks import COMMAND, SlackMessage, section
from bot.core.commands import CommandSpec
from bot.core.opml import MAX_OPML_BYTES
from bot.errors import InputError

#: a static select holds at most 100 options; text 75, value 150 characters
SELECT_MAX = 100
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
ALL_ENTRIES = "*"

# callback and action ids
PICK_ACTION = "briefbot_pick"
TRACK_VIEW = "briefbot_track"
SCHEDULE_VIEW = "briefbot_schedule"
IMPORT_VIEW = "briefbot_import"
TZ_ACTION = "tz"


def option(label: str, value: str) -> dict[str, Any]:
    label = " ".join(label.split()) or "?"
    if len(label) > OPTION_TEXT_MAX:
        label = label[: OPTION_TEXT_MAX - 1] + "…"
    return {"text": {"type": "plain_text", "text": label}, "value": value}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def _static(
    action_id: str,
    options: Sequence[tuple[str, str]],
    *,
    initial: str | None = None,
    placeholder: str = "Choose…",
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": _plain(placeholder),
        "options": [option(label, value) for label, value in options],
    }
    if initial is not None:
        element["initial_option"] = next(o for o in element["options"] if o["value"] == initial)
    return element


def track_view(meta: str) -> dict[str, Any]:
    """The ``/briefbot track`` modal."""
    return {
        "type": "modal",
        "callback_id": TRACK_VIEW,
        "private_metadata": meta,
        "title": _plain("Track"),
        "submit": _plain("Track"),
        "close": _plain("Cancel"),
        "blocks": [
            _input(
                "kind",
                "Kind",
                _static(
                    "value", [("Actor (a person)", "actor"), ("Topic", "topic")], initial="actor"
                ),
            ),
            _input(
                "name",
                "Name",
                {"type": "plain_text_input", "action_id": "value", "max_length": 100},
                hint="The name shown in digests (also matched)",
            ),
            _input(
                "aliases",
                "Aliases",
                {"type": "plain_text_input", "action_id": "value", "max_length": 500},
                optional=True,
                hint="Other names that count, comma-separated",
            ),
            _input(
                "mode",
                "Mode",
                _static(
                    "value",
                    [("Digest", "digest"), ("Instant: also post each story", "instant")],
                    initial="digest",
                ),
                optional=True,
            ),
        ],
    }


def schedule_view(meta: str, *, time_default: str, tz: str) -> dict[str, Any]:
    """The ``/briefbot digest schedule`` modal; the zone select is served by options
    requests (:meth:`SlackCommands.tz_options`)."""
    return {
        "type": "modal",
        "callback_id": SCHEDULE_VIEW,
        "private_metadata": meta,
        "title": _plain("Daily digest"),
        "submit": _plain("Schedule"),
        "close": _plain("Cancel"),
        "blocks": [
            _input(
                "time",
                "Time (HH:MM, 24-hour)",
                {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "max_length": 5,
                    "initial_value": time_default,
                },
            ),
            _input(
                "tz",
                "Time zone",
                {
                    "type": "external_select",
                    "action_id": TZ_ACTION,
                    "min_query_length": 1,
                    "placeholder": _plain("Type to search, e.g. Shanghai"),
                    "initial_option": option(tz, tz),
                },
                optional=True,
            ),
            _input(
                "days",
                "Days",
                {"type": "plain_text_input", "action_id": "value", "max_length": 40},
                optional=True,
                hint="e.g. mon-fri, weekends, mon,wed,fri (default: every day)",
            ),
        ],
    }


def import_view(meta: str) -> dict[str, Any]:
    """The ``/briefbot feeds import`` modal: one OPML file."""
    return {
        "type": "modal",
        "callback_id": IMPORT_VIEW,
        "private_metadata": meta,
        "title": _plain("Import feeds"),
        "submit": _plain("Import"),
        "close": _plain("Cancel"),
        "blocks": [
            _input(
                "file",
                "OPML file (a feed reader's export)",
                {
                    "type": "file_input",
                    "action_id": "value",
                    "filetypes": ["opml", "xml"],
                    "max_files": 1,
                },
            ),
        ],
    }


def picker_message(command: str, options: Sequence[tuple[str, str]]) -> SlackMessage:
    """An ephemeral message with a select menu that runs ``command`` on the choice."""
    what = "feed" if command == "feeds remove" else "entry"
    text = f"Choose the {what} for {COMMAND} {command}:"
    return SlackMessage(
        text=text,
        blocks=[
            section(text),
            {
                "type": "actions",
                "block_id": f"pick:{command}",
                "elements": [
                    _static(PICK_ACTION, options[:SELECT_MAX], placeholder=f"Choose a {what}")
                ],
            },
        ],
    )


def values_of(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(((view.get("state") or {}).get("values")) or {})


def text_value(values: Mapping[str, Any], block: str, action: str = "value") -> str | None:
    data = (values.get(block) or {}).get(action) or {}
    if data.get("type") in ("static_select", "external_select"):
        chosen = data.get("selected_option") or {}
        value = chosen.get("value")
    else:
        value = data.get("value")
    return str(value).strip() or None if value is not None else None


def error_block(spec: CommandSpec, message: str, blocks: Sequence[str]) -> str:
    """The modal input an error message is about (the option it names), else the first."""
    message = message.split(". Usage:", maxsplit=1)[0]
    for opt in spec.options:
        named = message.startswith(opt.name) or f" {opt.name} " in message
        if (named or f"{opt.name}:" in message) and opt.name in blocks:
            return opt.name
    return blocks[0]


def view_args(callback: Any, values: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[str]]:
    """The command, its arguments and the modal's input blocks (for errors)."""
    if callback == TRACK_VIEW:
        args = {k: text_value(values, k) for k in ("kind", "name", "aliases", "mode")}
        return "track", {k: v for k, v in args.items() if v}, ["name", "kind", "aliases"]
    if callback == SCHEDULE_VIEW:
        args = {
            "time": text_value(values, "time"),
            "tz": text_value(values, "tz", TZ_ACTION),
            "days": text_value(values, "days"),
        }
        return "digest schedule", {k: v for k, v in args.items() if v}, ["time", "tz", "days"]
    return "feeds import", {}, ["file"]


def file_info(values: Mapping[str, Any]) -> dict[str, Any]:
    """The file chosen in the import modal (checked before the download: there, its size
    and link), or InputError shown on the field."""
    files = ((values.get("file") or {}).get("value") or {}).get("files") or []
    if not files:
        raise InputError("file: choose an OPML file to import")
    info = files[0]
    name = info.get("name") or "the file"
    size = int(info.get("size") or 0)
    if size > MAX_OPML_BYTES:
        raise InputError(
            f"file: {name} is {size // 1000} kB; the limit is {MAX_OPML_BYTES // 1000} kB."
        )
    url = info.get("url_private_download") or info.get("url_private")
    if not url:
        raise InputError(f"file: Slack gave no download link for {name}")
    return {"name": name, "url": url}
