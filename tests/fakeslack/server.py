"""A fake Slack on 127.0.0.1: the Web API methods Briefbot calls, ``response_url``s,
private file downloads, and Socket Mode's websocket.

Web API: ``POST/GET {base}/api/<method>`` (``base_url`` for slack_sdk is
:attr:`FakeSlack.api_base`). Arguments are read from the query, a form body or a JSON
body, as slack_sdk sends them; the bot token from ``Authorization: Bearer``. Answers are
Slack's shapes: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

What Slack would refuse is refused here too: an unknown or archived channel
(``channel_not_found``, ``is_archived``), a channel the bot is not in
(``not_in_channel``), a bad token (``invalid_auth``), blocks Slack's Block Kit models
reject or more than 50 blocks (``invalid_blocks``, the reason kept in
:attr:`FakeSlack.invalid`).

Faults (:meth:`FakeSlack.fail`), consumed in order per method: ``error`` (an ``ok:
false`` answer), ``ratelimit`` (429 with ``Retry-After``), ``drop`` (the connection is
cut before anything happens), ``drop_after`` (the method runs, e.g. the message is
posted, then the connection is cut: the answer is lost), ``status`` (an HTTP error).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Fault:
    kind: str  # error | ratelimit | drop | drop_after | status
    error: str = ""
    retry_after: int = 1
    status: int = 500


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    args: dict[str, Any]


@dataclass
class Channel:
    id: str
    name: str
    member: bool = True
    archived: bool = False
    private: bool = False


@dataclass
class FakeSlack:
    team_id: str = "T0TEAM"
    bot_token: str = "xoxb-fake-bot-token"
    app_token: str = "xapp-fake-app-token"
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"
    host: str = "127.0.0.1"
    channels: dict[str, Channel] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.channels:
            for ch in (Channel("C0GENERAL", "general"), Channel("C0NEWS", "news")):
                self.channels[ch.id] = ch
        if not self.users:
            self.add_user("UADMIN", "alice", is_admin=True)
            self.add_user("UOWNER", "olivia", is_owner=True)
            self.add_user("UMEMBER", "bob")
        self.tokens: dict[str, str] = {self.bot_token: self.team_id}
        self.calls: list[Call] = []
        self.messages: dict[str, list[Posted]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self.views: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.invalid: list[str] = []
        self.faults: dict[str, list[Fault]] = {}
        self.errors: list[str] = []  # crashes of the fake itself
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._upload_slots: dict[str, dict[str, Any]] = {}
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self._socket_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.connections_opened = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- set-up -----------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, **flags: bool) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "is_admin": flags.get("is_admin", False),
            "is_owner": flags.get("is_owner", False),
            "is_primary_owner": flags.get("is_primary_owner", False),
        }

    def fail(self, method: str, kind: str, **kw: Any) -> None:
        self.faults.setdefault(method, []).append(Fault(kind, **kw))

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self) -> str:
        rid = f"R{next(self._ids)}"
        self.responses[rid] = []
        return f"{self.base_url}/response/{rid}"

    def response_posts(self, url: str) -> list[dict[str, Any]]:
        return self.responses[url.rsplit("/", 1)[1]]

    def add_file(self, name: str, data: bytes) -> dict[str, Any]:
        fid = f"F{next(self._ids)}"
        self.files[fid] = data
        return {
            "id": fid,
            "name": name,
            "size": len(data),
            "url_private_download": f"{self.base_url}/files/{fid}",
        }

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted(self, channel: str = "C0GENERAL") -> list[Posted]:
        return self.messages.get(channel, [])

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response)
        app.router.add_get("/files/{fid}", self._file)
        app.router.add_post("/upload/{uid}", self._upload)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- Web API ----------------------------------------------------------------------

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                args.update(await request.json())
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            args = await self._args(request)
            auth = request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() or args.get("token")
            self.calls.append(Call(method, args, token, time.monotonic()))
            fault = self.faults.get(method, [])
            fault_now = fault.pop(0) if fault else None
            if fault_now is not None and fault_now.kind == "drop":
                return self._drop(request)
            if fault_now is not None and fault_now.kind == "ratelimit":
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(fault_now.retry_after)},
                )
            if fault_now is not None and fault_now.kind == "status":
                return web.json_response(
                    {"ok": False, "error": "fatal_error"}, status=fault_now.status
                )
            if fault_now is not None and fault_now.kind == "error":
                return web.json_response({"ok": False, "error": fault_now.error})
            handler: Callable[..., Any] | None = getattr(
                self, "m_" + method.replace(".", "_"), None
            )
            if handler is None:
                return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
            answer = await handler(args, token, request)
            if fault_now is not None and fault_now.kind == "drop_after":
                return self._drop(request)
            return web.json_response(answer)
        except Exception as err:  # the fake's own bug: fail the test
            self.errors.append(f"{method}: {type(err).__name__}: {err}")
            raise

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _team(self, token: str | None) -> str | None:
        return self.tokens.get(token or "")

    def _channel(self, args: dict[str, Any], token: str | None) -> tuple[Channel | None, str]:
        if self._team(token) is None:
            return None, "invalid_auth"
        ch = self.channels.get(str(args.get("channel") or ""))
        if ch is None:
            return None, "channel_not_found"
        if ch.archived:
            return None, "is_archived"
        if not ch.member:
            return None, "not_in_channel"
        return ch, ""

    @staticmethod
    def _err(code: str) -> dict[str, Any]:
        return {"ok": False, "error": code}

    def _check_blocks(self, blocks: Any) -> str | None:
        from slack_sdk.models.blocks import Block

        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if blocks is None:
            return None
        if len(blocks) > 50:
            return f"{len(blocks)} blocks (at most 50)"
        for raw in blocks:
            try:
                parsed = Block.parse(raw)
                if parsed is None:
                    return f"unknown block {raw!r}"
                parsed.validate_json()
            except Exception as err:
                return f"{type(err).__name__}: {err}"
        return None

    async def m_auth_test(self, args: dict[str, Any], token: str | None, _: Any) -> dict[str, Any]:
        team = self._team(token)
        if team is None:
            return self._err("invalid_auth")
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "briefbot",
            "team_id": team,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def m_chat_postMessage(
        self, args: dict[str, Any], token: str | None, _: Any
    ) -> dict[str, Any]:
        ch, error = self._channel(args, token)
        if ch is None:
            return self._err(error)
        problem = self._check_blocks(args.get("blocks"))
        if problem:
            self.invalid.append(problem)
            return self._err("invalid_blocks")
        ts = f"{1700000000 + next(self._ts)}.000100"
        meta = args.get("metadata")
        if isinstance(meta, str):
            meta = json.loads(meta)
        blocks = args.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        msg = Posted(ch.id, ts, str(args.get("text") or ""), blocks, meta, args)
        self.messages.setdefault(ch.id, []).append(msg)
        return {"ok": True, "channel": ch.id, "ts": ts, "message": {"ts": ts, "text": msg.text}}

    async def m_chat_postEphemeral(
        self, args: dict[str, Any], token: str | None, _: Any
    ) -> dict[str, Any]:
        ch, error = self._channel(args, token)
        if ch is None:
            return self._err(error)
        self.ephemerals.append(args)
        return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}

    async def m_conversations_history(
        self, args: dict[str, Any], token: str | None, _: Any
    ) -> dict[str, Any]:
        ch, error = self._channel(args, token)
        if ch is None:
            return self._err(error)
        limit = int(args.get("limit") or 100)
        with_meta = str(args.get("include_all_metadata")).lower() in ("1", "true")
        out = []
        for msg in reversed(self.posted(ch.id)):
            item: dict[str, Any] = {
                "type": "message",
                "ts": msg.ts,
                "text": msg.text,
                "bot_id": self.bot_id,
            }
            if with_meta and msg.metadata:
                item["metadata"] = msg.metadata
            out.append(item)
        return {"ok": True, "messages": out[:limit], "has_more": len(out) > limit}

    async def m_users_info(self, args: dict[str, Any], token: str | None, _: Any) -> dict[str, Any]:
        if self._team(token) is None:
            return self._err("invalid_auth")
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            return self._err("user_not_found")
        return {"ok": True, "user": user}

    async def m_views_open(self, args: dict[str, Any], token: str | None, _: Any) -> dict[str, Any]:
        if self._team(token) is None:
            return self._err("invalid_auth")
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not args.get("trigger_id"):
            return self._err("invalid_trigger_id")
        from slack_sdk.models.views import View

        try:
            View(**view).validate_json()
        except Exception as err:
            self.invalid.append(f"view: {type(err).__name__}: {err}")
            return self._err("invalid_arguments")
        problem = self._check_blocks(view.get("blocks"))
        if problem:
            self.invalid.append(problem)
            return self._err("invalid_arguments")
        self.views.append({"trigger_id": args["trigger_id"], "view": view})
        return {"ok": True, "view": {"id": f"V{next(self._ids)}", **view}}

    async def m_files_getUploadURLExternal(
        self, args: dict[str, Any], token: str | None, _: Any
    ) -> dict[str, Any]:
        if self._team(token) is None:
            return self._err("invalid_auth")
        uid = f"F{next(self._ids)}"
        self._upload_slots[uid] = {"filename": args.get("filename"), "length": args.get("length")}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{uid}", "file_id": uid}

    async def m_files_completeUploadExternal(
        self, args: dict[str, Any], token: str | None, _: Any
    ) -> dict[str, Any]:
        ch, error = self._channel({"channel": args.get("channel_id")}, token)
        if ch is None:
            return self._err(error)
        files = args.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        for f in files or []:
            slot = self._upload_slots.pop(f["id"], None)
            if slot is None or "content" not in slot:
                return self._err("file_not_found")
            self.uploads.append({"channel": ch.id, "title": f.get("title"), **slot})
            done.append({"id": f["id"], "title": f.get("title"), "name": slot["filename"]})
        return {"ok": True, "files": done}

    async def m_oauth_v2_access(
        self, args: dict[str, Any], token: str | None, request: web.Request
    ) -> dict[str, Any]:
        code = str(args.get("code") or "")
        answer = self.oauth_codes.pop(code, None)
        if answer is None:
            return self._err("invalid_code")
        self.tokens[answer["access_token"]] = answer["team"]["id"]
        return answer

    def oauth_code(self, team_id: str, bot_token: str, *, name: str = "Other Team") -> str:
        code = f"code-{next(self._ids)}"
        self.oauth_codes[code] = {
            "ok": True,
            "app_id": "A0APP",
            "authed_user": {"id": "UADMIN"},
            "scope": "commands,chat:write",
            "token_type": "bot",
            "access_token": bot_token,
            "bot_user_id": self.bot_user_id,
            "team": {"id": team_id, "name": name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return code

    async def m_apps_connections_open(
        self, args: dict[str, Any], token: str | None, _: Any
    ) -> dict[str, Any]:
        if token != self.app_token:
            return self._err("invalid_auth")
        self.connections_opened += 1
        return {"ok": True, "url": f"ws://{self.host}:{self.port}/socket"}

    # -- response_url, files ----------------------------------------------------------

    async def _response(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        if rid not in self.responses:
            return web.Response(status=404, text="invalid_response_url")
        payload = await request.json()
        problem = self._check_blocks(payload.get("blocks"))
        if problem:
            self.invalid.append(problem)
            return web.Response(status=400, text="invalid_blocks")
        self.responses[rid].append(payload)
        return web.Response(text="ok")

    async def _file(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if auth not in self.tokens:
            return web.Response(status=403)
        data = self.files.get(request.match_info["fid"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _upload(self, request: web.Request) -> web.Response:
        slot = self._upload_slots.get(request.match_info["uid"])
        if slot is None:
            return web.Response(status=404)
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next(iter(form.values()))
            body = part.file.read() if hasattr(part, "file") else str(part).encode()
        else:
            body = await request.read()
        slot["content"] = body
        return web.Response(text="OK - uploaded")

    # -- Socket Mode ------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake"},
                "connection_info": {"app_id": "A0APP"},
            }
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                eid = data.get("envelope_id")
                if eid:
                    self.socket_acks[eid] = data
                    waiter = self._socket_waiters.pop(eid, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(data)
        finally:
            self.sockets.remove(ws)
        return ws

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, wait: float = 5.0
    ) -> dict[str, Any]:
        """Push an envelope to the connected app and wait for its acknowledgement."""
        timeout = wait
        deadline = time.monotonic() + timeout
        while not self.sockets:
            if time.monotonic() > deadline:
                raise AssertionError("no Socket Mode connection")
            await asyncio.sleep(0.02)
        eid = f"E{next(self._ids)}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._socket_waiters[eid] = waiter
        await self.sockets[-1].send_json(
            {
                "envelope_id": eid,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return await asyncio.wait_for(waiter, timeout)
