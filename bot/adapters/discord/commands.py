"""Slash commands generated from the core's command spec (:mod:`bot.core.commands`).

Every :class:`~bot.core.commands.CommandSpec` becomes an ``app_commands.Command``; specs
sharing a group become subcommands of one ``app_commands.Group`` (``/digest now``,
``/feeds add``...). Options keep their types (``str`` with ``max_length``, ``int`` with
``min_value``/``max_value``, ``discord.Attachment`` for files), descriptions, choices,
and autocomplete (watchlist entries, feeds, time zones) answered by the core.

Permissions: Discord only lets a *top-level* command carry ``default_member_permissions``,
so ``/track`` and ``/untrack`` are hidden from members without Manage Server, while the
groups that mix reading and configuring (``/digest``, ``/feeds``) stay visible. Either way
the permission is checked again at run time: the member's permissions in the channel
become ``can_manage`` and the core refuses configuration without it.

Syncing: :func:`sync_commands` registers the tree with Discord, globally or in a test
guild (instant). At start-up it only syncs when the tree's JSON changed since the last
sync (a hash per application and scope kept in ``discord-commands.json`` in the data
directory); ``briefbot discord sync`` forces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import discord
from discord import app_commands
from typing_extensions import override

from bot.adapters.discord.errors import handle_error
from bot.core.commands import (
    GROUP_DESCRIPTIONS,
    Autocomplete,
    CommandSpec,
    OptionSpec,
    OptionType,
    groups,
)

log = logging.getLogger(__name__)

DESCRIPTION_MAX = 100
STATE_FILE = "discord-commands.json"


class Handler(Protocol):
    async def run(
        self, interaction: discord.Interaction[Any], spec: CommandSpec, args: dict[str, Any]
    ) -> None: ...

    async def autocomplete(
        self, interaction: discord.Interaction[Any], what: Autocomplete, current: str
    ) -> list[app_commands.Choice[str]]: ...


class BriefbotTree(app_commands.CommandTree[Any]):
    """The command tree, with the central error handler. It also keeps the tasks
    handling interactions, so a shutdown can let them finish (:meth:`drain`)."""

    def __init__(self, client: discord.Client) -> None:
        super().__init__(client)
        self.active: set[asyncio.Task[Any]] = set()

    @override
    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        task = asyncio.current_task()
        if task is not None and task not in self.active:
            self.active.add(task)
            task.add_done_callback(self.active.discard)
        return True

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait (at most ``timeout`` seconds) for the interactions being handled."""
        if self.active:
            await asyncio.wait(set(self.active), timeout=timeout)

    @override
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        await handle_error(interaction, error)


def _describe(text: str) -> str:
    text = " ".join(text.split()) or "-"
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def _annotation(opt: OptionSpec) -> Any:
    if opt.type is OptionType.ATTACHMENT:
        return discord.Attachment
    if opt.type is OptionType.INTEGER:
        if opt.min_value is None and opt.max_value is None:
            return int
        return app_commands.Range[int, opt.min_value, opt.max_value]
    if opt.choices or opt.max_length is None:
        return str
    return app_commands.Range[str, 1, min(opt.max_length, 6000)]


def make_command(spec: CommandSpec, handler: Handler) -> app_commands.Command[Any, ..., None]:
    """One slash command (or subcommand) for ``spec``, calling ``handler.run``."""
    params = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    descriptions: dict[str, str] = {}
    choices: dict[str, list[app_commands.Choice[str]]] = {}
    completers: dict[str, Any] = {}
    for opt in sorted(spec.options, key=lambda o: not o.required):
        params.append(
            inspect.Parameter(
                opt.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_annotation(opt),
                default=inspect.Parameter.empty if opt.required else None,
            )
        )
        descriptions[opt.name] = _describe(opt.description)
        if opt.choices:
            choices[opt.name] = [app_commands.Choice(name=c, value=c) for c in opt.choices]
        if opt.autocomplete is not None:
            completers[opt.name] = _completer(handler, opt.autocomplete)

    async def callback(interaction: discord.Interaction[Any], **kwargs: Any) -> None:
        await handler.run(interaction, spec, kwargs)

    ident = "briefbot_" + spec.name.replace(" ", "_")
    callback.__name__ = callback.__qualname__ = ident
    # inspect.signature() (and so discord.py) reads __signature__, which typeshed does not
    # declare on functions
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    if descriptions:
        app_commands.describe(**descriptions)(callback)
    if choices:
        app_commands.choices(**choices)(callback)
    if completers:
        app_commands.autocomplete(**completers)(callback)
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=spec.sub or spec.group,
        description=_describe(spec.description),
        callback=callback,
        extras={"briefbot": spec.name, "manage": spec.manage},
    )
    if spec.sub is None:
        app_commands.guild_only()(command)
        if spec.manage:
            app_commands.default_permissions(manage_guild=True)(command)
    return command


def _completer(handler: Handler, what: Autocomplete) -> Any:
    async def complete(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await handler.autocomplete(interaction, what, current)

    complete.__qualname__ = complete.__name__ = f"briefbot_complete_{what.value}"
    return complete


def build_tree(client: discord.Client, handler: Handler) -> BriefbotTree:
    """The whole command set of the core, as a command tree on ``client``."""
    tree = BriefbotTree(client)
    for name, specs in groups().items():
        if specs[0].sub is None:
            tree.add_command(make_command(specs[0], handler))
            continue
        group = app_commands.Group(
            name=name,
            description=_describe(GROUP_DESCRIPTIONS.get(name, name)),
            guild_only=True,
        )
        for spec in specs:
            group.add_command(make_command(spec, handler))
        tree.add_command(group)
    return tree


# -- syncing ---------------------------------------------------------------------------


def tree_payload(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None = None
) -> list[dict[str, Any]]:
    """The JSON Discord receives for this scope, in a stable order."""
    commands = tree.get_commands(guild=guild)
    return sorted((c.to_dict(tree) for c in commands), key=lambda d: (d.get("type", 1), d["name"]))


def tree_hash(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None = None
) -> str:
    data = json.dumps(tree_payload(tree, guild), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


class SyncState:
    """What was last synced: ``{"<app id>/global" | "<app id>/guild/<id>": sha256}`` in a
    small JSON file (in the data directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable %s: %s", self.path, err)
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, scope: str) -> str | None:
        return self._read().get(scope)

    def set(self, scope: str, digest: str) -> None:
        data = self._read()
        data[scope] = digest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".discord-commands.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def sync_scope(application_id: int | None, guild_id: int | None) -> str:
    where = "global" if guild_id is None else f"guild/{guild_id}"
    return f"{application_id}/{where}"


async def sync_commands(
    tree: app_commands.CommandTree[Any],
    *,
    guild_id: int | None,
    state: SyncState | None,
    force: bool = False,
) -> list[app_commands.AppCommand] | None:
    """Register the tree with Discord (globally, or in ``guild_id`` only) unless
    ``state`` shows this exact tree was synced already (and not ``force``). Returns the
    registered commands, or None when nothing needed syncing."""
    guild = discord.Object(guild_id) if guild_id is not None else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    digest = tree_hash(tree, guild)
    scope = sync_scope(tree.client.application_id, guild_id)
    if not force and state is not None and state.get(scope) == digest:
        log.info("slash commands unchanged (%s): not syncing", scope)
        return None
    synced = await tree.sync(guild=guild)
    if state is not None:
        state.set(scope, digest)
    log.info("synced %d slash commands (%s)", len(synced), scope)
    return synced
