"""The fake gateway: v10, JSON encoding, optional ``zlib-stream`` transport compression.

Protocol (https://discord.com/developers/docs/events/gateway):

* connect ``?v=10&encoding=json[&compress=zlib-stream]`` -> op 10 HELLO
* op 2 IDENTIFY -> READY (seq 1) then one GUILD_CREATE per guild of that shard
  (``(guild_id >> 22) % num_shards``)
* op 1 HEARTBEAT -> op 11 HEARTBEAT_ACK
* op 6 RESUME -> the missed dispatches (seq > the client's seq) replayed, then RESUMED;
  an unknown or invalidated session gets op 9 ``d=false``
* op 8 REQUEST_GUILD_MEMBERS -> GUILD_MEMBERS_CHUNK
* a client close with 1000/1001 invalidates its session (as on Discord); any other
  close or a dropped TCP connection leaves it resumable.

With ``zlib-stream`` every payload is deflated through ONE zlib context per
connection and ends with a ``Z_SYNC_FLUSH`` (``00 00 ff ff``), as discord.py expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .models import shard_for
from .recording import GatewayFrame

if TYPE_CHECKING:
    from .server import FakeDiscord

# opcodes
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
VOICE_STATE_UPDATE = 4
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

# intents
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
ALL_INTENTS = (1 << 26) - 1


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Session:
    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    identify: dict[str, Any]
    seq: int = 0
    #: (seq, event name, encoded payload) of every dispatch, for RESUME replay
    events: list[tuple[int, str, str]] = field(default_factory=list)
    conn: Connection | None = None
    resumable: bool = True
    resumes: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class Connection:
    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, compress: bool) -> None:
        self.id = next(self._ids)
        self.ws = ws
        self.request = request
        self.path = request.path
        self.compressor = zlib.compressobj() if compress else None
        self.lock = asyncio.Lock()
        self.session: Session | None = None
        self.dead = False
        self.client_close_code: int | None = None
        self.aborted_by_fake = False

    async def send_raw(self, text: str) -> None:
        """Send one encoded payload; caller holds :attr:`lock` so frames keep order."""
        if self.dead or self.ws.closed:
            return
        try:
            if self.compressor is not None:
                data = self.compressor.compress(text.encode()) + self.compressor.flush(
                    zlib.Z_SYNC_FLUSH
                )
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            self.dead = True

    def abort(self) -> None:
        """Kill the TCP connection without a close frame (a network failure)."""
        self.dead = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class Gateway:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, Session] = {}
        #: the live session of each shard (the last one identified)
        self.shard_sessions: dict[int, Session] = {}
        self.connections: list[Connection] = []
        #: cleared by :meth:`hold`: new connections wait (before HELLO) until it is set
        self.accepting = asyncio.Event()
        self.accepting.set()

    # -- helpers ---------------------------------------------------------------

    def _record(self, direction: str, conn: Connection, payload: dict[str, Any]) -> None:
        shard = conn.session.shard_id if conn.session else None
        self.fake.gateway_log.append(
            GatewayFrame(
                direction=direction,
                shard_id=shard,
                connection_id=conn.id,
                op=payload.get("op", -1),
                d=payload.get("d"),
                t=payload.get("t"),
                s=payload.get("s"),
                at=asyncio.get_running_loop().time(),
            )
        )

    async def _send(self, conn: Connection, payload: dict[str, Any]) -> None:
        """Send under the connection's lock."""
        async with conn.lock:
            await self._send_unlocked(conn, payload)

    async def _send_unlocked(self, conn: Connection, payload: dict[str, Any]) -> None:
        self._record("send", conn, payload)
        await conn.send_raw(_dumps(payload))

    def _dispatch_payload(self, session: Session, event: str, data: Any) -> tuple[int, str]:
        seq = session.next_seq()
        text = _dumps({"op": DISPATCH, "t": event, "s": seq, "d": data})
        session.events.append((seq, event, text))
        return seq, text

    async def dispatch(self, shard_id: int, event: str, data: Any) -> int:
        session = self.shard_sessions.get(shard_id)
        if session is None:
            raise RuntimeError(f"shard {shard_id} has not identified: no session to dispatch to")
        conn = session.conn
        if conn is None or conn.dead:
            # buffered: replayed when the client RESUMEs
            seq, _ = self._dispatch_payload(session, event, data)
            return seq
        async with conn.lock:
            # assign the seq under the lock so frames leave in seq order
            seq, text = self._dispatch_payload(session, event, data)
            if session.conn is conn:
                self._record("send", conn, {"op": DISPATCH, "t": event, "s": seq, "d": data})
                await conn.send_raw(text)
        return seq

    def wants(self, shard_id: int, intent: int) -> bool:
        session = self.shard_sessions.get(shard_id)
        return session is not None and bool(session.intents & intent)

    # -- the websocket endpoint ----------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        version = request.query.get("v")
        encoding = request.query.get("encoding", "json")
        compress = request.query.get("compress")
        conn = Connection(ws, request, compress == "zlib-stream")
        self.connections.append(conn)
        self.fake.gateway_connects.append(
            {"path": request.path, "query": dict(request.query), "connection_id": conn.id}
        )
        if version not in ("9", "10"):
            await ws.close(code=4012, message=b"Invalid API version")
            return ws
        if encoding != "json":
            await ws.close(code=4000, message=b"fake gateway speaks encoding=json only")
            return ws
        if compress not in (None, "zlib-stream"):
            await ws.close(code=4000, message=b"fake gateway supports compress=zlib-stream only")
            return ws
        if not self.accepting.is_set() and not await self._held(ws):
            conn.dead = True  # the client gave up during the outage
            return ws
        await self._send(
            conn,
            {
                "op": HELLO,
                "d": {
                    "heartbeat_interval": self.fake.heartbeat_interval,
                    "_trace": ['["gateway-prd-fake",{"micros":0.0}]'],
                },
                "s": None,
                "t": None,
            },
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    text = msg.data
                elif msg.type is WSMsgType.BINARY:
                    text = msg.data.decode("utf-8", "replace")
                else:
                    break
                try:
                    payload = json.loads(text)
                    op = payload["op"]
                except (ValueError, KeyError, TypeError):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                self._record("recv", conn, payload)
                await self._on_payload(conn, op, payload.get("d"))
                if ws.closed:
                    break
        finally:
            conn.dead = True
            conn.client_close_code = ws.close_code
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                if ws.close_code in (1000, 1001) and not conn.aborted_by_fake:
                    session.resumable = False
        return ws

    async def _on_payload(self, conn: Connection, op: int, d: Any) -> None:
        if op == HEARTBEAT:
            await self._send(conn, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(conn, d)
        elif op == RESUME:
            await self._resume(conn, d)
        elif conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated.")
        elif op in (PRESENCE_UPDATE, VOICE_STATE_UPDATE):
            return
        elif op == REQUEST_GUILD_MEMBERS:
            await self._request_members(conn, d)
        else:
            await conn.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: Connection, d: Any) -> None:
        fake = self.fake
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        if not isinstance(d, dict) or d.get("token") != fake.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = d.get("shard", [0, 1])
        if not isinstance(shard, list) or len(shard) != 2 or not 0 <= shard[0] < shard[1]:
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        intents = d.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~ALL_INTENTS:
            await conn.ws.close(code=4013, message=b"Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~fake.privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard_id, shard_count = shard
        fake.identify_log.append(
            {"shard": (shard_id, shard_count), "intents": intents, "at": time.monotonic(), "d": d}
        )
        old = self.shard_sessions.get(shard_id)
        if old is not None:
            old.resumable = False
        session = Session(
            session_id=secrets.token_hex(16),
            shard_id=shard_id,
            shard_count=shard_count,
            intents=intents,
            identify=d,
        )
        self.sessions[session.session_id] = session
        self.shard_sessions[shard_id] = session
        guilds = [g for g in fake.guilds.values() if shard_for(g.id, shard_count) == shard_id]
        ready = {
            "v": 10,
            "user": fake.bot_user_payload(),
            "user_settings": {},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": fake.resume_gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(fake.application_id), "flags": fake.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake-east", "fake-west"],
            "auth": {},
            "_trace": ['["gateway-prd-fake",{"micros":0.0}]'],
        }
        members = bool(intents & GUILD_MEMBERS)
        async with conn.lock:
            conn.session = session
            session.conn = conn
            for event, data in [("READY", ready)] + [
                ("GUILD_CREATE", self._guild_create(g, members)) for g in guilds
            ]:
                seq, text = self._dispatch_payload(session, event, data)
                self._record("send", conn, {"op": DISPATCH, "t": event, "s": seq, "d": data})
                await conn.send_raw(text)

    def _guild_create(self, guild: Any, members_intent: bool) -> dict[str, Any]:
        data = guild.to_payload(bot_user_id=self.fake.bot_user.id, members_intent=members_intent)
        data["unavailable"] = False
        return data

    async def _resume(self, conn: Connection, d: Any) -> None:
        fake = self.fake
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        if not isinstance(d, dict) or d.get("token") != fake.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        session = self.sessions.get(str(d.get("session_id")))
        seq = d.get("seq")
        if (
            session is None
            or not session.resumable
            or self.shard_sessions.get(session.shard_id) is not session
            or not isinstance(seq, int)
            or seq > session.seq
        ):
            await self._send(conn, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        old = session.conn
        if old is not None and old is not conn:
            old.abort()
        async with conn.lock:
            conn.session = session
            session.conn = conn
            session.resumes += 1
            missed = [(s, t, text) for s, t, text in session.events if s > seq]
            for _s, _t, text in missed:
                self._record("send", conn, json.loads(text))
                await conn.send_raw(text)
            resumed = {"_trace": ['["gateway-prd-fake",{"micros":0.0}]']}
            s_, text = self._dispatch_payload(session, "RESUMED", resumed)
            self._record("send", conn, {"op": DISPATCH, "t": "RESUMED", "s": s_, "d": resumed})
            await conn.send_raw(text)
        fake.resume_log.append(
            {
                "shard_id": session.shard_id,
                "seq": seq,
                "replayed": [t for _, t, _ in missed],
                "path": conn.path,
            }
        )

    async def _request_members(self, conn: Connection, d: Any) -> None:
        assert conn.session is not None
        guild = self.fake.guilds.get(int(d.get("guild_id", 0)))
        if guild is None:
            return
        query = (d.get("query") or "").lower()
        user_ids = {int(u) for u in d.get("user_ids") or []}
        members = [
            m.to_payload()
            for m in guild.members
            if (not user_ids or m.user.id in user_ids) and m.user.username.lower().startswith(query)
        ]
        limit = d.get("limit") or 0
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if d.get("nonce"):
            chunk["nonce"] = d["nonce"]
        await self.dispatch(conn.session.shard_id, "GUILD_MEMBERS_CHUNK", chunk)

    # -- server-side actions -----------------------------------------------------

    def live_connections(self, shard_id: int | None) -> list[Connection]:
        return [
            s.conn
            for sid, s in self.shard_sessions.items()
            if s.conn is not None and not s.conn.dead and (shard_id is None or sid == shard_id)
        ]

    def drop(self, shard_id: int | None) -> int:
        conns = self.live_connections(shard_id)
        for conn in conns:
            conn.aborted_by_fake = True
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            conn.abort()
        return len(conns)

    async def close(self, shard_id: int | None, code: int, reason: str) -> int:
        conns = self.live_connections(shard_id)
        for conn in conns:
            conn.aborted_by_fake = True
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                if code in (4004, 4010, 4011, 4012, 4013, 4014, 4007, 4009):
                    session.resumable = False
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=code, message=reason.encode())
            conn.dead = True
        return len(conns)

    async def send_op(self, shard_id: int | None, op: int, d: Any) -> int:
        conns = self.live_connections(shard_id)
        for conn in conns:
            if op == INVALID_SESSION and d is False and conn.session is not None:
                conn.session.resumable = False
            await self._send(conn, {"op": op, "d": d, "s": None, "t": None})
        return len(conns)

    async def _held(self, ws: web.WebSocketResponse) -> bool:
        """During an outage (see :meth:`hold`): True once it ends, False if the client
        closed the connection first (a client sends nothing else before HELLO)."""
        opened = asyncio.ensure_future(self.accepting.wait())
        closing = asyncio.ensure_future(ws.receive())
        done, pending = await asyncio.wait({opened, closing}, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return opened in done and not ws.closed

    def hold(self) -> None:
        """An outage: new connections are accepted but get no HELLO until :meth:`release`
        (the client waits, as for a gateway that does not answer)."""
        self.accepting.clear()

    def release(self) -> None:
        self.accepting.set()

    async def shutdown(self) -> None:
        self.accepting.set()
        for conn in self.connections:
            if not conn.ws.closed:
                conn.aborted_by_fake = True
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=1001, message=b"fake shutting down")
