"""``/briefbot <subcommand>``: one slash command whose text is a command in the console's
syntax (``/briefbot track kind:actor name:"Li Qiang" aliases:"Premier Li"``,
``/briefbot digest now``, ``/briefbot help``), parsed by the core's own parser
(:func:`bot.core.command_line.parse_command_line`, as the console does).

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

The modals and menus themselves are in :mod:`.views`; answering after the
acknowledgement and the permission check in :mod:`.respond`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.slack.blocks import COMMAND, SlackMessage, reply_messages, slack_commands
from bot.adapters.slack.errors import APOLOGY, user_message
from bot.adapters.slack.respond import (
    PLATFORM,
    Permissions,
    answer,
    context_of,
    ephemeral,
    post_response,
    require_manager,
)
from bot.adapters.slack.views import (
    ALL_ENTRIES,
    OPTION_VALUE_MAX,
    PICK_ACTION,
    SELECT_MAX,
    error_block,
    file_info,
    import_view,
    option,
    picker_message,
    schedule_view,
    track_view,
    values_of,
    view_args,
)
from bot.core.command_line import parse_command_line, tokenize
from bot.core.commands import (
    Autocomplete,
    CommandSpec,
    OptionType,
    get_command,
    validate_args,
)
from bot.core.opml import MAX_OPML_BYTES
from bot.core.replies import ChannelContext, Reply
from bot.core.service import BriefingService
from bot.errors import BriefbotError, InputError

log = logging.getLogger(__name__)

#: answer in the acknowledgement if the core is done this fast (Slack allows 3 s)
ACK_WITHIN = 1.5

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
                ctx = await require_manager(self.permissions, client, body, ctx)
            elif (spec.group, spec.sub) == ("digest", "now"):
                # a manager posts the digest; anyone else gets a preview (not refused)
                user_id = str(body.get("user_id") or "")
                if await self.permissions.can_manage(client, ctx.guild_id, user_id):
                    ctx = replace(ctx, can_manage=True)
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
        """See :func:`.respond.answer`."""
        await answer(url, client, ctx, reply, visible=visible, replace=replace)

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
            ctx = await require_manager(self.permissions, client, body, ctx)
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
                raise InputError("This menu is out of date; run the command again.")  # noqa: TRY301 - one except answers every BriefbotError
            spec = get_command(command)
            if spec.manage:
                ctx = await require_manager(self.permissions, client, body, ctx)
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
        ctx = await require_manager(self.permissions, client, body, ctx)
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
        values = values_of(view)
        command, args, blocks = view_args(view.get("callback_id"), values)
        spec = get_command(command)
        upload: dict[str, Any] = {}
        try:
            ctx, url = self._modal_context(body)
            ctx = await require_manager(self.permissions, client, body, ctx)
            if spec.name == "feeds import":
                upload = file_info(values)  # the download waits until after the ack
            else:
                validate_args(spec, args)
        except BriefbotError as err:
            text = slack_commands(str(err))
            await ack(
                response_action="errors", errors={error_block(spec, text, blocks): text[:150]}
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
                    response_action="errors", errors={error_block(spec, text, blocks): text[:150]}
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
        await ack(options=[option(label, value) for label, value in found])
