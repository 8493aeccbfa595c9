"""HTTP fetching of feeds: shared aiohttp sessions, polite and bounded.

- bounded concurrency: at most ``poll.max_concurrency`` fetches at once, at most
  ``poll.per_host`` per host;
- conditional GET (If-None-Match / If-Modified-Since); 304 is ``not_modified``;
- a connect timeout and a total timeout for the whole fetch (all redirects and the body);
- a size cap on the body as sent (Content-Length and bytes received) and as decoded:
  the decompressed body is streamed and reading stops past ``http.max_bytes``, so a
  gzip bomb costs at most that much memory;
- redirects followed by hand (at most ``http.max_redirects``), each hop checked by an
  optional ``url_guard`` (the SSRF guard for feeds added from chat);
- a fetch guarded by a :class:`~bot.feeds.guard.URLGuard` (untrusted: a feed added from
  chat) goes through a session of its own whose connector resolves names through
  :meth:`URLGuard.connect_resolver`, so the address connected to is one the guard
  checked (no DNS rebinding between the check and the connection). Trusted feeds (the
  operator's config) use the main session; both count against the same limits;
- Retry-After (seconds or an HTTP date) read on 429 and 503.

:meth:`Fetcher.fetch` never raises for a network or HTTP problem: the
:class:`~bot.core.models.FetchResult` carries a one-line ``error`` a user can read.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Self

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bot.config import HttpSettings, PollSettings
from bot.core.models import FetchResult
from bot.errors import BriefbotError
from bot.feeds.guard import GuardedResolver, URLGuard

log = logging.getLogger(__name__)

#: Called with the first URL and each redirect target; raises (e.g. UnsafeURLError) to
#: refuse it.
UrlGuard = Callable[[str], Awaitable[None]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
#: Retry-After values beyond this are treated as this (a server asking for a month off
#: is more likely misconfigured than serious).
MAX_RETRY_AFTER = 7 * 24 * 3600.0
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/feed+json;q=0.8, */*;q=0.5"
)
_CHUNK = 64 * 1024


class _Failed(Exception):
    """Internal: ends a fetch with a user-readable error."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def human_bytes(n: int) -> str:
    """``10000000`` -> ``"10 MB"`` (decimal units, as sizes are configured)."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date. None if absent
    or unreadable; capped at a week."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _header_dict(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _oserror_text(err: BaseException) -> str:
    inner = getattr(err, "os_error", None) or err.__cause__ or err
    text = getattr(inner, "strerror", None) or str(inner)
    return text or type(inner).__name__


class Fetcher:
    """Fetches feeds over shared :class:`aiohttp.ClientSession` objects.

    Use ``async with Fetcher(http, poll) as f:`` or call :meth:`start` / :meth:`close`.
    ``url_guard``, when given, is awaited for the first URL and each redirect hop; an
    exception it raises becomes the result's ``error`` (its text if a BriefbotError).
    When the guard is a :class:`~bot.feeds.guard.URLGuard`, the fetch also runs in a
    session (one per guard, made on first use) that can only connect to addresses the
    guard accepts; any other callable only checks URLs.
    """

    def __init__(
        self,
        http: HttpSettings,
        poll: PollSettings,
        *,
        url_guard: UrlGuard | None = None,
    ) -> None:
        self.http = http
        self.poll = poll
        self.url_guard = url_guard
        self._session: aiohttp.ClientSession | None = None
        # untrusted fetches: one session per URLGuard, whose resolver that guard filters
        self._guarded: dict[URLGuard, tuple[aiohttp.ClientSession, GuardedResolver]] = {}
        self._global = asyncio.Semaphore(poll.max_concurrency)
        # host -> (semaphore, number of fetches using it); dropped when unused
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self._session is None:
            self._session = self._new_session()

    def _new_session(self, resolver: GuardedResolver | None = None) -> aiohttp.ClientSession:
        # With a resolver, the DNS cache holds only answers it accepted.
        connector = aiohttp.TCPConnector(
            limit=self.poll.max_concurrency,
            limit_per_host=self.poll.per_host,
            ttl_dns_cache=300,
            resolver=resolver,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=self.http.connect_timeout,
                sock_connect=self.http.connect_timeout,
            ),
            headers={"User-Agent": self.http.user_agent, "Accept": ACCEPT},
            auto_decompress=True,  # aiohttp decodes in bounded steps as we read
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        guarded, self._guarded = self._guarded, {}
        if session is not None:
            await session.close()
        for untrusted, resolver in guarded.values():
            await untrusted.close()
            await resolver.close()

    def _session_for(self, guard: UrlGuard | None) -> aiohttp.ClientSession:
        assert self._session is not None
        if not isinstance(guard, URLGuard):
            return self._session
        entry = self._guarded.get(guard)
        if entry is None:
            resolver = guard.connect_resolver()
            entry = self._guarded[guard] = (self._new_session(resolver), resolver)
        return entry[0]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- fetching ------------------------------------------------------------------
    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        url_guard: UrlGuard | None = None,
    ) -> FetchResult:
        """GET ``url`` conditionally. Never raises for network/HTTP problems."""
        if self._session is None:
            raise RuntimeError("Fetcher.start() was not called")
        guard = url_guard or self.url_guard
        session = self._session_for(guard)
        start = time.monotonic()
        result = FetchResult(url=url, final_url=url, status=None)
        try:
            host = URL(url).host or ""
        except (ValueError, TypeError):
            host = ""
        async with self._host_slot(host.lower()), self._global:
            start = time.monotonic()
            try:
                async with asyncio.timeout(self.http.total_timeout):
                    result = await self._fetch(session, url, etag, last_modified, guard)
            except _Failed as failed:
                result = replace(
                    result,
                    status=failed.status,
                    error=str(failed),
                    retry_after=failed.retry_after,
                )
            except TimeoutError:
                result = replace(
                    result, error=f"timed out after {_seconds(self.http.total_timeout)}"
                )
        return replace(result, elapsed=time.monotonic() - start)

    def _host_slot(self, host: str) -> _HostSlot:
        return _HostSlot(self, host)

    async def _fetch(
        self,
        session: aiohttp.ClientSession,
        url: str,
        etag: str | None,
        last_modified: str | None,
        guard: UrlGuard | None,
    ) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        permanent = True
        for hop in range(self.http.max_redirects + 1):
            target = await self._check(current, guard)
            try:
                async with session.get(target, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    if status in REDIRECT_STATUSES and "Location" in resp.headers:
                        permanent = permanent and status in PERMANENT_REDIRECTS
                        current = self._redirect_target(target, resp.headers["Location"])
                        log.debug("%s: HTTP %s -> %s (hop %d)", url, status, current, hop + 1)
                        continue
                    return await self._finish(
                        url, current, resp, etag, last_modified, moved=permanent and current != url
                    )
            except aiohttp.ClientError as err:
                raise _Failed(self._client_error_text(err, target)) from None
            except BriefbotError as err:  # the guarded resolver refused the address
                raise _Failed(str(err)) from None
            except OSError as err:
                raise _Failed(f"network error: {_oserror_text(err)}") from None
        raise _Failed(f"too many redirects (more than {self.http.max_redirects})")

    async def _check(self, url: str, guard: UrlGuard | None) -> URL:
        try:
            target = URL(url)
        except (ValueError, TypeError):
            raise _Failed(f"invalid URL: {url}") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise _Failed(f"not an http(s) URL: {url}")
        if guard is not None:
            try:
                await guard(url)
            except BriefbotError as err:
                raise _Failed(str(err)) from None
        return target

    @staticmethod
    def _redirect_target(current: URL, location: str) -> str:
        try:
            return str(current.join(URL(location.strip())))
        except (ValueError, TypeError):
            raise _Failed(f"redirect to an invalid URL: {location[:200]}") from None

    async def _finish(
        self,
        url: str,
        final_url: str,
        resp: aiohttp.ClientResponse,
        etag: str | None,
        last_modified: str | None,
        *,
        moved: bool,
    ) -> FetchResult:
        status = resp.status
        headers = _header_dict(resp.headers)
        if moved:
            log.info("%s moved permanently to %s", url, final_url)
        new_etag = headers.get("etag") or None
        new_lm = headers.get("last-modified") or None
        if status == 304:
            return FetchResult(
                url=url,
                final_url=final_url,
                status=status,
                headers=headers,
                etag=new_etag or etag,
                last_modified=new_lm or last_modified,
                not_modified=True,
                permanent_redirect=moved,
            )
        if status >= 400 or status < 200:
            retry_after = None
            if status in (429, 503):
                retry_after = parse_retry_after(headers.get("retry-after"))
            reason = f" {resp.reason}" if resp.reason else ""
            raise _Failed(f"HTTP {status}{reason}", status=status, retry_after=retry_after)
        if status in REDIRECT_STATUSES:
            raise _Failed(f"HTTP {status} redirect without a Location header", status=status)
        body = await self._read_capped(resp)
        return FetchResult(
            url=url,
            final_url=final_url,
            status=status,
            body=body,
            headers=headers,
            etag=new_etag,
            last_modified=new_lm,
            permanent_redirect=moved,
        )

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.http.max_bytes
        too_big = f"response larger than {human_bytes(limit)}"
        if resp.content_length is not None and resp.content_length > limit:
            raise _Failed(
                f"{too_big} (Content-Length {human_bytes(resp.content_length)})", status=resp.status
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            # bytes received before decompression (aiohttp >= 3.13, the floor in
            # pyproject.toml): caps a compressed body that is too large by itself
            compressed = resp.content.total_raw_bytes
            if size > limit or compressed > limit:
                what = (
                    " once decompressed"
                    if size > limit and resp.headers.get("Content-Encoding")
                    else ""
                )
                raise _Failed(f"{too_big}{what}", status=resp.status)
            chunks.append(chunk)
        return b"".join(chunks)

    def _client_error_text(self, err: aiohttp.ClientError, target: URL) -> str:
        host = target.host or str(target)
        if isinstance(err, aiohttp.ClientConnectorDNSError):
            return f"DNS lookup failed for {host}"
        if isinstance(err, aiohttp.ClientConnectorCertificateError):
            return f"TLS certificate of {host} not accepted: {err.certificate_error}"
        if isinstance(err, aiohttp.ClientSSLError):
            return f"TLS error with {host}: {_oserror_text(err)}"
        if isinstance(err, aiohttp.ConnectionTimeoutError):
            return f"could not connect to {host} within {_seconds(self.http.connect_timeout)}"
        if isinstance(err, aiohttp.ClientConnectorError):
            return f"could not connect to {host}: {_oserror_text(err)}"
        if isinstance(err, aiohttp.ServerDisconnectedError):
            return f"{host} closed the connection"
        if isinstance(err, aiohttp.ClientPayloadError):
            return f"the response from {host} was cut off or badly encoded"
        if isinstance(err, aiohttp.ClientResponseError):
            return f"bad HTTP response from {host}: {err.message}"
        if isinstance(err, aiohttp.InvalidURL):
            return f"invalid URL: {err.url}"
        return f"request to {host} failed: {err or type(err).__name__}"


class _HostSlot:
    """Holds one of a host's ``per_host`` slots; the semaphore is dropped when idle.

    aiohttp's ``TCPConnector(limit_per_host=...)`` (also set) cannot do this alone: it
    counts per connector, and untrusted fetches use a connector of their own (the
    guard's resolver), so trusted and untrusted fetches of one host would get
    ``per_host`` each (test_untrusted_fetches_share_the_fetchers_limits)."""

    def __init__(self, fetcher: Fetcher, host: str) -> None:
        self._fetcher = fetcher
        self._host = host

    async def __aenter__(self) -> None:
        hosts = self._fetcher._hosts
        sem, users = hosts.get(self._host) or (asyncio.Semaphore(self._fetcher.poll.per_host), 0)
        hosts[self._host] = (sem, users + 1)
        try:
            await sem.acquire()
        except BaseException:
            self._release_user()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._fetcher._hosts[self._host][0].release()
        self._release_user()

    def _release_user(self) -> None:
        hosts = self._fetcher._hosts
        sem, users = hosts[self._host]
        if users <= 1:
            del hosts[self._host]
        else:
            hosts[self._host] = (sem, users - 1)
