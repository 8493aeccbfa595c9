"""What the client sent (REST requests, gateway frames) and ways to await it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


@dataclass
class UploadedFile:
    field: str  #: the multipart field name, e.g. ``files[0]``
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One REST request as it arrived, and what the fake answered."""

    method: str
    path: str  #: relative to the API base, e.g. ``/channels/123/messages``
    query: dict[str, str]
    headers: dict[str, str]  #: header names as sent; use :meth:`header` for case-insensitive
    body: bytes
    content_type: str
    json: Any = None  #: the JSON body, or the parsed ``payload_json`` of a multipart body
    files: list[UploadedFile] = field(default_factory=list)
    at: float = 0.0  #: ``loop.time()`` on arrival
    api_version: int = 10
    status: int = 0  #: the status the fake answered
    response: Any = None  #: the JSON the fake answered (None for 204)
    scripted: bool = False  #: True if the answer was a scripted fault
    dropped: bool = False  #: True if the connection was cut instead of answering
    claimed: bool = False

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return None

    def matches(self, method: str | None, path: str | re.Pattern[str] | None) -> bool:
        if method is not None and method.upper() != self.method:
            return False
        if path is None:
            return True
        pattern = path if isinstance(path, re.Pattern) else re.compile(path)
        return pattern.fullmatch(self.path) is not None


@dataclass
class GatewayFrame:
    """One gateway payload, decoded; ``direction`` is ``recv`` (client -> fake) or ``send``."""

    direction: str
    shard_id: int | None
    connection_id: int
    op: int
    d: Any
    t: str | None
    s: int | None
    at: float
    claimed: bool = False


T = TypeVar("T", RecordedRequest, GatewayFrame)


class Log(Generic[T]):
    """An append-only log that tests can await entries from.

    :meth:`wait` returns the first matching entry not yet returned by an earlier
    ``wait`` (past entries count), so awaiting twice yields two distinct entries.
    """

    def __init__(self) -> None:
        self.entries: list[T] = []
        self._waiters: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []

    def append(self, entry: T) -> None:
        self.entries.append(entry)
        for pred, fut in list(self._waiters):
            if fut.done():
                self._waiters.remove((pred, fut))
                continue
            if not entry.claimed and pred(entry):
                entry.claimed = True
                fut.set_result(entry)
                self._waiters.remove((pred, fut))

    async def wait(self, pred: Callable[[T], bool], timeout: float, what: str) -> T:  # noqa: ASYNC109
        for entry in self.entries:
            if not entry.claimed and pred(entry):
                entry.claimed = True
                return entry
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
        finally:
            if (pred, fut) in self._waiters:
                self._waiters.remove((pred, fut))

    def __iter__(self) -> Any:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
