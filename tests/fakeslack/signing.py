"""Requests to the real Bolt app, signed the way Slack signs them (v0 HMAC-SHA256 of
``v0:{timestamp}:{body}`` with the signing secret: slack_sdk's SignatureVerifier)."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from .server import FakeSlack


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


@dataclass
class Answer:
    status: int
    text: str
    response_url: str = ""
    trigger_id: str = ""

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.text) if self.text else {}


@dataclass
class SlackRequests:
    """Builds and sends Slack's requests to ``url`` (the app's ``/slack/events``)."""

    url: str
    secret: str
    fake: FakeSlack
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        signed: bool = True,
        timestamp: int | None = None,
    ) -> Answer:
        sent = {"Content-Type": content_type}
        if signed:
            sent.update(sign(self.secret, body, timestamp))
        sent.update(headers or {})
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=body.encode(), headers=sent) as resp,
        ):
            return Answer(resp.status, await resp.text())

    def command_body(
        self,
        text: str,
        *,
        user: str = "UADMIN",
        channel: str = "C0GENERAL",
        team: str | None = None,
    ) -> tuple[str, str, str]:
        response_url = self.fake.response_url()
        trigger = f"trigger-{next(self._n)}"
        ch = self.fake.channels.get(channel)
        form = {
            "token": "verification-token-unused",
            "team_id": team or self.fake.team_id,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": ch.name if ch else "directmessage",
            "user_id": user,
            "user_name": self.fake.users.get(user, {}).get("name", "someone"),
            "command": "/briefbot",
            "text": text,
            "api_app_id": "A0APP",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger,
        }
        return urlencode(form), response_url, trigger

    async def command(self, text: str, **kw: Any) -> Answer:
        body, url, trigger = self.command_body(text, **kw)
        answer = await self.post(body, "application/x-www-form-urlencoded")
        answer.response_url, answer.trigger_id = url, trigger
        return answer

    async def interactive(self, payload: dict[str, Any], **kw: Any) -> Answer:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **kw)

    async def event(self, payload: dict[str, Any], **kw: Any) -> Answer:
        return await self.post(json.dumps(payload), "application/json", **kw)

    def user(self, user: str) -> dict[str, Any]:
        return {
            "id": user,
            "username": self.fake.users.get(user, {}).get("name", "x"),
            "team_id": self.fake.team_id,
        }

    async def pick(
        self,
        message: dict[str, Any],
        value: str,
        *,
        user: str = "UADMIN",
        channel: str = "C0GENERAL",
        response_url: str = "",
    ) -> Answer:
        """Choose ``value`` in the select menu of ``message`` (as Slack sends it)."""
        actions = next(b for b in message["blocks"] if b["type"] == "actions")
        element = actions["elements"][0]
        option = next(o for o in element["options"] if o["value"] == value)
        payload = {
            "type": "block_actions",
            "team": {"id": self.fake.team_id, "domain": "fake"},
            "user": self.user(user),
            "api_app_id": "A0APP",
            "channel": {"id": channel, "name": self.fake.channels[channel].name},
            "container": {"type": "message", "is_ephemeral": True},
            "trigger_id": f"trigger-{next(self._n)}",
            "response_url": response_url or self.fake.response_url(),
            "actions": [
                {
                    "type": "static_select",
                    "action_id": element["action_id"],
                    "block_id": actions["block_id"],
                    "selected_option": option,
                    "action_ts": str(time.time()),
                }
            ],
        }
        return await self.interactive(payload)

    async def submit(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str = "UADMIN"
    ) -> Answer:
        """Submit a modal opened by the app with ``values`` (``state.values``)."""
        payload = {
            "type": "view_submission",
            "team": {"id": self.fake.team_id, "domain": "fake"},
            "user": self.user(user),
            "api_app_id": "A0APP",
            "trigger_id": f"trigger-{next(self._n)}",
            "view": {
                **view,
                "id": "V1",
                "team_id": self.fake.team_id,
                "state": {"values": values},
                "hash": "h",
            },
        }
        return await self.interactive(payload)

    async def options(
        self,
        action_id: str,
        value: str,
        view: dict[str, Any],
        *,
        block_id: str = "tz",
        user: str = "UADMIN",
    ) -> Answer:
        payload = {
            "type": "block_suggestion",
            "team": {"id": self.fake.team_id, "domain": "fake"},
            "user": self.user(user),
            "api_app_id": "A0APP",
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "view": {**view, "id": "V1", "team_id": self.fake.team_id},
        }
        return await self.interactive(payload)


def text_input(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def select(value: str, kind: str = "static_select", action: str = "value") -> dict[str, Any]:
    return {
        action: {
            "type": kind,
            "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
        }
    }
