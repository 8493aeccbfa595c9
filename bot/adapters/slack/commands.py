"""``/briefbot <subcommand>``: one slash command whose text is a command in the console's
syntax (``/briefbot track kind:actor name:"Li Qiang" aliases:"Premier Li"``,
``/briefbot digest now``, ``/briefbot help``), parsed by the core's own parser
(:func:`bot.core.commands.parse_command_line`, as the console does).

Every request is acknowledged within Slack's 3 seconds: if the core answers within
:data:`ACK_WITHIN` seconds the answer *is* the acknowledgement, else the request is
acknowledged empty and the answer follows through the ``response_url``. Errors and
configuration answers are ephemeral; briefings (``brief``, ``search``, ``digest now``)
are posted in the channel.

Interactivity where Discord has autocomplete:

- ``/briefbot track`` with no arguments opens a modal (kind, name, aliases, mode);
- ``/briefbot untrack``, ``/briefbot brief`` and ``/briefbot feeds remove`` with no
  argument answer with a select menu of this channel's entries or feeds;
- ``/briefbot digest schedule`` with no arguments opens a modal whose time-zone select
  searches zones (an external select: Slack asks through *options* requests);
- ``/briefbot feeds import`` opens a modal with a file input; ``feeds export`` uploads
  the OPML file (``files.uploadV2``).

Permissions: commands that change a channel's setup need a workspace admin or owner
(``users.info``: ``is_admin`` / ``is_owner``, cached briefly) or a user in the
``[slack] managers`` setting (:class:`Permissions`); anyone else gets an ephemeral
refusal and nothing changes (the modals and menus check again when submitted).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.slack.blocks import (
    COMMAND,
    FALLBACK_MAX,
    SlackMessage,
    escape,
    reply_messages,
    section,
    slack_commands,
)
from bot.adapters.slack.errors import (
    APOLOGY,
    MANAGE_DENIED,
    NOT_A_CHANNEL,
    user_message,
)
from bot.core.commands import (
    Autocomplete,
    CommandSpec,
    OptionType,
    get_command,
    parse_command_line,
    tokenize,
    validate_args,
)
from bot.core.opml import MAX_OPML_BYTES
from bot.core.replies import ChannelContext, Reply
from bot.core.service import BriefingService
from bot.errors import BriefbotError, InputError

log = logging.getLogger(__name__)

PLATFORM = "slack"
#: answer in the acknowledgement if the core is done this fast (Slack allows 3 s)
ACK_WITHIN = 1.5
#: a static select holds at most 100 options; text 75, value 150 characters
SELECT_MAX = 100
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
ALL_ENTRIES = "*"
#: Slack accepts up to 5 messages through one response_url
RESPONSE_URL_USES = 5
#: users.info must answer within this (the permission is checked before acknowledging)
USERS_INFO_TIMEOUT = 2.0

# callback and action ids
PICK_ACTION = "briefbot_pick"
TRACK_VIEW = "briefbot_track"
SCHEDULE_VIEW = "briefbot_schedule"
IMPORT_VIEW = "briefbot_import"
TZ_ACTION = "tz"

#: subcommands that, typed without arguments, answer with a select menu
PICKERS: dict[str, tuple[Autocomplete, str]] = {
    "untrack": (Autocomplete.ENTRY, "entry"),
    "brief": (Autocomplete.ENTRY, "entry"),
    "feeds remove": (Autocomplete.FEED, "feed"),
}
#: subcommands that, typed without arguments, open a modal
MODALS = ("track", "digest schedule", "feeds import")


# -- parsing ------------------------------------------------------------------------------


def split_subcommand(text: str) -> tuple[str, bool]:
    """``"feeds remove"`` / ``"track"`` and whether arguments follow, without
    validating (an unknown name is left to the parser's message)."""
    try:
        tokens = tokenize(unslack(text).strip())
    except InputError:
        return "", True
    if not tokens:
        return "help", False
    head = tokens[0].text.lstrip("/").lower()
    if len(tokens) >= 2 and f"{head} {tokens[1].text.lower()}" in (
        *PICKERS,
        *MODALS,
        "digest now",
        "feeds export",
    ):
        return f"{head} {tokens[1].text.lower()}", len(tokens) > 2
    return head, len(tokens) > 1


_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|[^>]*)?>")


def unslack(text: str) -> str:
    """The text as the user typed it: Slack sends links as ``<https://…>`` or
    ``<https://…|label>`` and ``&``, ``<``, ``>`` as entities."""
    text = _LINK.sub(lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_text(text: str) -> tuple[CommandSpec, dict[str, Any]]:
    """The command typed after ``/briefbot`` (nothing means ``help``), parsed by the
    console's parser. InputError with the usage for anything it cannot read."""
    text = unslack(text).strip()
    if text.lower().startswith(COMMAND):  # "/briefbot /briefbot brief" typed by habit
        text = text[len(COMMAND) :].strip()
    return parse_command_line("/" + (text.lstrip("/") or "help"))


def context_of(body: Mapping[str, Any], *, can_manage: bool = False) -> ChannelContext:
    """The caller of a slash command, a block action or a modal (whose private_metadata
    carries the channel)."""
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    user_id = body.get("user_id") or (body.get("user") or {}).get("id")
    name = body.get("user_name") or (body.get("user") or {}).get("username") or "?"
    channel_name = body.get("channel_name") or (body.get("channel") or {}).get("name")
    if not channel or str(channel).startswith("D") or channel_name == "directmessage":
        raise InputError(NOT_A_CHANNEL)
    return ChannelContext(
        platform=PLATFORM,
        channel_id=str(channel),
        guild_id=str(team) if team else None,
        channel_name=channel_name,
        user=f"{name} ({user_id})",
        can_manage=can_manage,
    )


# -- permissions --------------------------------------------------------------------------


class Permissions:
    """Who may change a channel's setup: workspace admins and owners (``users.info``,
    cached for ``ttl`` seconds) and the users in ``[slack] managers``."""

    def __init__(
        self,
        managers: Sequence[str] = (),
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = USERS_INFO_TIMEOUT,
    ) -> None:
        self.managers = {m.strip() for m in managers if m.strip()}
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    async def can_manage(self, client: AsyncWebClient, team_id: str | None, user_id: str) -> bool:
        if user_id in self.managers:
            return True
        key = (team_id or "", user_id)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:  # within Slack's 3 seconds: a slow answer (a 429 wait) counts as no
            resp = await asyncio.wait_for(client.users_info(user=user_id), self.timeout)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as err:
            log.warning("users.info %s failed: %s; treating them as a member", user_id, err)
            return False
        user = resp.get("user") or {}
        allowed = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._cache[key] = (now + self.ttl, allowed)
        return allowed


# -- answering ----------------------------------------------------------------------------


async def post_response(url: str, message: SlackMessage, **extra: Any) -> None:
    """Send one message to a ``response_url`` (no link_names, no unfurls)."""
    payload = {"text": message.text, "blocks": message.blocks, **extra}
    payload.setdefault("unfurl_links", False)
    payload.setdefault("unfurl_media", False)
    resp = await AsyncWebhookClient(url).send_dict(payload)
    if resp.status_code >= 400:
        log.warning("response_url answered %s: %s", resp.status_code, resp.body)


def ephemeral(text: str) -> SlackMessage:
    """A short private answer (commands named as ``/briefbot …``)."""
    text = escape(slack_commands(text))
    return SlackMessage(text=text[:FALLBACK_MAX], blocks=[section(text)])


def _option(label: str, value: str) -> dict[str, Any]:
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
        "options": [_option(label, value) for label, value in options],
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
                    "initial_option": _option(tz, tz),
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


def _values(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(((view.get("state") or {}).get("values")) or {})


def _text_value(values: Mapping[str, Any], block: str, action: str = "value") -> str | None:
    data = (values.get(block) or {}).get(action) or {}
    if data.get("type") in ("static_select", "external_select"):
        chosen = data.get("selected_option") or {}
        value = chosen.get("value")
    else:
        value = data.get("value")
    return str(value).strip() or None if value is not None else None


def _error_block(spec: CommandSpec, message: str, blocks: Sequence[str]) -> str:
    """The modal input an error message is about (the option it names), else the first."""
    message = message.split(". Usage:", maxsplit=1)[0]
    for opt in spec.options:
        named = message.startswith(opt.name) or f" {opt.name} " in message
        if (named or f"{opt.name}:" in message) and opt.name in blocks:
            return opt.name
    return blocks[0]


class SlackCommands:
    """The Bolt listeners: the slash command, the menus, the modals, the options."""

    def __init__(
        self,
        service: BriefingService,
        permissions: Permissions,
        *,
        ack_within: float = ACK_WITHIN,
        default_time: str = "08:00",
    ) -> None:
        self.service = service
        self.permissions = permissions
        self.ack_within = ack_within
        self.default_time = default_time
        #: background work started after an acknowledgement (awaited at shutdown)
        self.active: set[asyncio.Task[Any]] = set()

    def track(self) -> None:
        task = asyncio.current_task()
        if task is not None and task not in self.active:
            self.active.add(task)
            task.add_done_callback(self.active.discard)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        pending = {t for t in self.active if t is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    # -- the slash command ------------------------------------------------------------

    async def on_command(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        self.track()
        text = str(body.get("text") or "")
        url = str(body.get("response_url") or "")
        try:
            ctx = context_of(body)
            name, has_args = split_subcommand(text)
            if not has_args and name in MODALS:
                await self._open_modal(ack, body, client, ctx, name)
                return
            if not has_args and name in PICKERS:
                await self._pick(ack, body, client, ctx, name)
                return
            spec, args = parse_text(text)
            if spec.manage:
                ctx = await self._require_manager(client, body, ctx)
            if any(o.type is OptionType.ATTACHMENT for o in spec.options):
                await self._open_modal(ack, body, client, ctx, spec.name)
                return
        except BriefbotError as err:
            await self._ack_message(ack, ephemeral(f"⚠️ {err}"), visible=False)
            return
        except SlackApiError as err:
            await self._ack_message(ack, ephemeral(f"⚠️ {user_message(err)}"), visible=False)
            return
        except Exception:  # a bug: logged, the user sees a short apology
            log.exception("%s %r failed", COMMAND, text)
            await self._ack_message(ack, ephemeral(APOLOGY), visible=False)
            return
        await self._run(ack, url, client, ctx, (spec, args))

    async def _run(
        self,
        ack: Any,
        url: str,
        client: AsyncWebClient,
        ctx: ChannelContext,
        command: tuple[CommandSpec, dict[str, Any]],
    ) -> None:
        spec, args = command
        work = asyncio.ensure_future(self.service.dispatch(ctx, spec.name, args))
        acked = False
        try:
            done, _ = await asyncio.wait({work}, timeout=self.ack_within)
            if done:
                reply = work.result()
                messages = reply_messages(reply)
                if len(messages) == 1 and reply.attachment is None:
                    await self._ack_message(ack, messages[0], visible=self._visible(spec, reply))
                    return
            await ack()
            acked = True
            reply = await work
        except Exception:
            log.exception("%s %s failed in %s", COMMAND, spec.name, ctx.channel_id)
            if acked:
                await post_response(url, ephemeral(APOLOGY), response_type="ephemeral")
            else:
                await self._ack_message(ack, ephemeral(APOLOGY), visible=False)
            return
        finally:
            if not work.done():
                work.cancel()
        await self.answer(url, client, ctx, reply, visible=self._visible(spec, reply))

    @staticmethod
    def _visible(spec: CommandSpec, reply: Reply) -> bool:
        return spec.visible and not reply.ephemeral and not reply.error

    @staticmethod
    async def _ack_message(ack: Any, message: SlackMessage, *, visible: bool) -> None:
        await ack(
            text=message.text,
            blocks=message.blocks,
            response_type="in_channel" if visible else "ephemeral",
            unfurl_links=False,
            unfurl_media=False,
        )

    async def answer(
        self,
        url: str,
        client: AsyncWebClient,
        ctx: ChannelContext,
        reply: Reply,
        *,
        visible: bool,
        replace: bool = False,
    ) -> None:
        """Send a reply after the acknowledgement: through the response_url (a briefing
        in the channel, anything else ephemeral), its file uploaded to the channel."""
        kind = "in_channel" if visible else "ephemeral"
        for i, message in enumerate(reply_messages(reply)):
            extra: dict[str, Any] = {"response_type": kind}
            extra["replace_original"] = bool(replace and i == 0 and not visible)
            if url and i < RESPONSE_URL_USES - 1:  # one use kept (a menu's clean-up)
                await post_response(url, message, **extra)
            elif visible:
                await self._post_visible(client, ctx, message)
            else:
                await self._post_ephemeral(client, ctx, message)
        if reply.attachment is not None:
            att = reply.attachment
            try:
                await client.files_upload_v2(
                    channel=ctx.channel_id,
                    content=att.data.decode("utf-8", "replace"),
                    filename=att.filename,
                    title=att.filename,
                )
            except SlackApiError as err:
                log.warning("uploading %s to %s failed: %s", att.filename, ctx.channel_id, err)
                note = ephemeral(f"⚠️ The file could not be uploaded: {user_message(err)}")
                if url:
                    await post_response(url, note, response_type="ephemeral")

    async def _post_visible(
        self, client: AsyncWebClient, ctx: ChannelContext, message: SlackMessage
    ) -> None:
        try:
            await client.chat_postMessage(
                channel=ctx.channel_id,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as err:
            log.warning("could not post a briefing in %s: %s", ctx.channel_id, err)

    async def _post_ephemeral(
        self, client: AsyncWebClient, ctx: ChannelContext, message: SlackMessage
    ) -> None:
        user = (ctx.user or "").rpartition("(")[2].rstrip(")")
        try:
            await client.chat_postEphemeral(
                channel=ctx.channel_id, user=user, text=message.text, blocks=message.blocks
            )
        except SlackApiError as err:
            log.warning("could not answer %s in %s: %s", ctx.user, ctx.channel_id, err)

    async def _require_manager(
        self, client: AsyncWebClient, body: Mapping[str, Any], ctx: ChannelContext
    ) -> ChannelContext:
        user_id = body.get("user_id") or (body.get("user") or {}).get("id") or ""
        if not await self.permissions.can_manage(client, ctx.guild_id, str(user_id)):
            log.info("%s refused to %s in %s:%s", COMMAND, ctx.user, ctx.guild_id, ctx.channel_id)
            raise _Refused(MANAGE_DENIED)
        return ChannelContext(
            platform=ctx.platform,
            channel_id=ctx.channel_id,
            guild_id=ctx.guild_id,
            channel_name=ctx.channel_name,
            user=ctx.user,
            can_manage=True,
        )

    # -- menus ------------------------------------------------------------------------

    async def _pick(
        self,
        ack: Any,
        body: dict[str, Any],
        client: AsyncWebClient,
        ctx: ChannelContext,
        command: str,
    ) -> None:
        if get_command(command).manage:
            ctx = await self._require_manager(client, body, ctx)
        what, _ = PICKERS[command]
        found = await self.service.autocomplete(ctx, what, "", limit=10_000)
        options: list[tuple[str, str]] = []
        if command == "brief":
            options.append(("All entries", ALL_ENTRIES))
        for number, (label, value) in enumerate(found, 1):
            # a long feed URL is given by its number in /feeds list
            options.append((label, value if len(value) <= OPTION_VALUE_MAX else str(number)))
        if not options:
            thing = "feeds" if what is Autocomplete.FEED else "tracked entries"
            await self._ack_message(ack, ephemeral(f"This channel has no {thing}."), visible=False)
            return
        await self._ack_message(ack, picker_message(command, options), visible=False)

    async def on_pick(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        self.track()
        url = str(body.get("response_url") or "")
        action: dict[str, Any] = next(
            (a for a in body.get("actions") or [] if a.get("action_id") == PICK_ACTION), {}
        )
        command = str(action.get("block_id") or "").removeprefix("pick:")
        value = str((action.get("selected_option") or {}).get("value") or "")
        try:
            ctx = context_of(body)
            if command not in PICKERS:
                raise InputError("This menu is out of date; run the command again.")
            spec = get_command(command)
            if spec.manage:
                ctx = await self._require_manager(client, body, ctx)
            option = PICKERS[command][1]
            args = {} if value == ALL_ENTRIES else {option: value}
            reply = await self.service.dispatch(ctx, spec.name, args)
        except BriefbotError as err:
            await post_response(
                url, ephemeral(f"⚠️ {err}"), response_type="ephemeral", replace_original=True
            )
            return
        except Exception:
            log.exception("%s menu %s failed", COMMAND, command)
            await post_response(url, ephemeral(APOLOGY), response_type="ephemeral")
            return
        visible = self._visible(spec, reply)
        await self.answer(url, client, ctx, reply, visible=visible, replace=True)
        if visible:  # the menu itself is no longer needed
            await AsyncWebhookClient(url).send_dict({"delete_original": True})

    # -- modals -----------------------------------------------------------------------

    async def _open_modal(
        self,
        ack: Any,
        body: dict[str, Any],
        client: AsyncWebClient,
        ctx: ChannelContext,
        name: str,
    ) -> None:
        ctx = await self._require_manager(client, body, ctx)
        meta = json.dumps(
            {
                "channel": ctx.channel_id,
                "team": ctx.guild_id,
                "channel_name": ctx.channel_name,
                "response_url": body.get("response_url"),
            }
        )
        if name == "track":
            view = track_view(meta)
        elif name == "digest schedule":
            channel = await self.service.channel(ctx)
            view = schedule_view(
                meta, time_default=channel.digest_time or self.default_time, tz=channel.timezone
            )
        else:
            view = import_view(meta)
        await ack()
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as err:
            log.warning("views.open failed: %s", err)
            url = str(body.get("response_url") or "")
            if url:
                await post_response(
                    url, ephemeral(f"⚠️ {user_message(err)}"), response_type="ephemeral"
                )

    @staticmethod
    def _modal_context(body: Mapping[str, Any]) -> tuple[ChannelContext, str]:
        view = body.get("view") or {}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        user = body.get("user") or {}
        ctx = context_of(
            {
                "channel_id": meta.get("channel"),
                "team_id": meta.get("team") or user.get("team_id"),
                "channel_name": meta.get("channel_name"),
                "user_id": user.get("id"),
                "user_name": user.get("username") or user.get("name"),
            }
        )
        return ctx, str(meta.get("response_url") or "")

    async def on_view(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A submitted modal: check the input, run the command; if it fails within
        :data:`ACK_WITHIN` seconds the modal stays open with the error on its field, else
        it closes and the answer comes through the slash command's response_url."""
        self.track()
        view = body.get("view") or {}
        values = _values(view)
        command, args, blocks = self._view_args(view.get("callback_id"), values)
        spec = get_command(command)
        upload: dict[str, Any] = {}
        try:
            ctx, url = self._modal_context(body)
            ctx = await self._require_manager(client, body, ctx)
            if spec.name == "feeds import":
                upload = _file_info(values)  # the download waits until after the ack
            else:
                validate_args(spec, args)
        except BriefbotError as err:
            text = slack_commands(str(err))
            await ack(
                response_action="errors", errors={_error_block(spec, text, blocks): text[:150]}
            )
            return
        except SlackApiError as err:
            await ack(response_action="errors", errors={blocks[0]: user_message(err)[:150]})
            return
        if spec.name == "feeds import":
            await ack()
            try:
                args = {"file": await self._download(client, upload)}
                reply = await self.service.dispatch(ctx, spec.name, args)
            except BriefbotError as err:
                reply = Reply.failure(err)
            await self.answer(url, client, ctx, reply, visible=False)
            return
        work = asyncio.ensure_future(self.service.dispatch(ctx, spec.name, args))
        acked = False
        try:
            done, _ = await asyncio.wait({work}, timeout=self.ack_within)
            if done and work.result().error:
                text = slack_commands(work.result().text)
                await ack(
                    response_action="errors", errors={_error_block(spec, text, blocks): text[:150]}
                )
                return
            await ack()
            acked = True
            reply = await work
        except Exception:
            log.exception("%s %s (modal) failed in %s", COMMAND, spec.name, ctx.channel_id)
            if not acked:
                await ack()
            reply = Reply(lines=(APOLOGY,), error=True)
        finally:
            if not work.done():
                work.cancel()
        await self.answer(url, client, ctx, reply, visible=False)

    @staticmethod
    def _view_args(
        callback: Any, values: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], list[str]]:
        if callback == TRACK_VIEW:
            args = {k: _text_value(values, k) for k in ("kind", "name", "aliases", "mode")}
            return "track", {k: v for k, v in args.items() if v}, ["name", "kind", "aliases"]
        if callback == SCHEDULE_VIEW:
            args = {
                "time": _text_value(values, "time"),
                "tz": _text_value(values, "tz", TZ_ACTION),
                "days": _text_value(values, "days"),
            }
            return "digest schedule", {k: v for k, v in args.items() if v}, ["time", "tz", "days"]
        return "feeds import", {}, ["file"]

    async def _download(self, client: AsyncWebClient, info: Mapping[str, Any]) -> bytes:
        """The OPML file given in the import modal, read with the bot token."""
        name = info.get("name") or "the file"
        url = info["url"]
        headers = {"Authorization": f"Bearer {client.token}"}
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers) as resp,
            ):
                if resp.status != 200:
                    raise InputError(
                        f"file: {name} could not be read from Slack "
                        f"(HTTP {resp.status}); please upload it again."
                    )
                data = await resp.content.read(MAX_OPML_BYTES + 1)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise InputError(
                f"file: {name} could not be read from Slack "
                f"({type(err).__name__}); please upload it again."
            ) from None
        if len(data) > MAX_OPML_BYTES:
            raise InputError(f"file: {name} is over {MAX_OPML_BYTES // 1000} kB.")
        return data

    # -- options requests -------------------------------------------------------------

    async def tz_options(self, ack: Any, body: dict[str, Any]) -> None:
        """The schedule modal's time-zone select: zones containing what was typed."""
        query = str(body.get("value") or "")
        ctx = ChannelContext(platform=PLATFORM, channel_id="-")
        found = await self.service.autocomplete(ctx, Autocomplete.TIMEZONE, query, limit=SELECT_MAX)
        await ack(options=[_option(label, value) for label, value in found])


def _file_info(values: Mapping[str, Any]) -> dict[str, Any]:
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


class _Refused(BriefbotError):
    """The user may not change this channel's setup."""
