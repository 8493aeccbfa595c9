"""The URL guard for feeds added from chat (untrusted URLs).

A chat user must not be able to make the bot fetch from the machine it runs on or from
its private network (SSRF): only ``http``/``https`` URLs are accepted, and every address
the host resolves to must be public: not loopback, private, link-local, CGNAT (shared
address space), multicast, reserved, unspecified, nor a cloud metadata address. The
fetcher calls the guard for the first URL and again for every redirect hop.

Checking a name and then letting the HTTP client resolve it again would leave a
DNS-rebinding window (first answer public, second answer 127.0.0.1). So the address
actually connected to is checked too: :meth:`URLGuard.connect_resolver` gives an aiohttp
resolver (a :class:`GuardedResolver`) that applies the same rules to every answer aiohttp
gets; the fetcher uses it in the session it keeps for untrusted fetches. The rules live
here only (:meth:`URLGuard.check_addresses`), for both checks.

``settings.security.allow_hosts`` lets named hosts through (``host`` or ``host:port``):
for self-hosters with a feed on their LAN, and for tests served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bot.errors import FetchError, UnsafeURLError

#: Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack IPv4, AWS IPv6).
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # CGNAT, RFC 6598

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> resolved address strings
Resolver = Callable[[str, int], Awaitable[list[str]]]
#: What the fetcher calls for the initial URL and each redirect: raises to refuse.
UrlGuard = Callable[[str], Awaitable[None]]


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            problem = address_problem(embedded)
            if problem:
                return problem
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a carrier-grade NAT (shared) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def _normalise_allow(entries: Iterable[str]) -> frozenset[str]:
    return frozenset(e.strip().lower().rstrip(".") for e in entries if e.strip())


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA), via the event loop's resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class URLGuard:
    """An async callable ``await guard(url)`` that raises :class:`UnsafeURLError` for a
    URL a chat user may not make the bot fetch, and :class:`FetchError` when the host
    does not resolve. Returns None when the URL may be fetched.

    ``resolver`` is a ``(host, port) -> addresses`` coroutine function, or an aiohttp
    :class:`~aiohttp.abc.AbstractResolver`, which is then used both by the check and,
    wrapped, for connecting (see :meth:`connect_resolver`)."""

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        *,
        resolver: Resolver | AbstractResolver | None = None,
    ) -> None:
        self.allow_hosts = _normalise_allow(allow_hosts)
        self._connect_inner: AbstractResolver | None = None
        if isinstance(resolver, AbstractResolver):
            self._connect_inner = resolver
            self._resolve: Resolver = _addresses_of(resolver)
        else:
            self._resolve = resolver or system_resolver

    def allowed_host(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return (
            host in self.allow_hosts
            or f"{host}:{port}" in self.allow_hosts
            or (f"[{host}]:{port}" in self.allow_hosts)
        )

    def check_addresses(
        self, host: str, port: int, addresses: Sequence[str], *, literal: bool = False
    ) -> None:
        """Raise :class:`UnsafeURLError` unless ``host:port`` is allowed or every one of
        ``addresses`` (what ``host`` resolves to; ``host`` itself when ``literal``) is a
        public address. The one place the address rules are applied."""
        if self.allowed_host(host, port):
            return
        for raw in addresses:
            try:
                ip = ipaddress.ip_address(raw.split("%", 1)[0])
            except ValueError:
                raise UnsafeURLError(f"{host} resolves to an unusable address {raw!r}") from None
            problem = address_problem(ip)
            if problem:
                what = f"{host} is" if literal else f"{host} resolves to {ip},"
                raise UnsafeURLError(
                    f"refused: {what} {problem}; feeds added from chat must be on the public "
                    "internet (an admin can allow a host in security.allow_hosts)"
                )

    def connect_resolver(self) -> GuardedResolver:
        """A resolver for aiohttp that answers only addresses :meth:`check_addresses`
        accepts (it raises UnsafeURLError otherwise). Wraps the AbstractResolver given
        to the guard, else aiohttp's default resolver. Call within the event loop; the
        caller closes it."""
        if self._connect_inner is not None:
            return GuardedResolver(self, self._connect_inner, owns_inner=False)
        return GuardedResolver(self, DefaultResolver(), owns_inner=True)

    async def __call__(self, url: str) -> None:
        await self.check(url)

    async def check(self, url: str) -> None:
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise UnsafeURLError(f"not a valid URL: {url}") from None
        scheme = (parsed.scheme or "").lower()
        if scheme not in ("http", "https"):
            shown = f"{scheme}:" if scheme else "no scheme"
            raise UnsafeURLError(
                f"only http:// and https:// feed URLs are allowed (got {shown}): {url}"
            )
        host = parsed.raw_host or ""
        if not host:
            raise UnsafeURLError(f"the URL has no host: {url}")
        port = parsed.port or (443 if scheme == "https" else 80)
        if self.allowed_host(host, port):
            return
        bare = host.strip("[]")
        try:
            literal: IPAddress | None = ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self._resolve(bare, port)
            except (OSError, UnicodeError) as err:
                reason = _oserror_text(err)
                raise FetchError(f"cannot resolve host {host}: {reason}", url=url) from None
            if not addresses:
                raise FetchError(f"cannot resolve host {host}", url=url)
        self.check_addresses(host, port, addresses, literal=literal is not None)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that passes on another resolver's answer only when the
    guard accepts every address in it, and raises :class:`UnsafeURLError` (not an
    OSError, so aiohttp lets it through unwrapped) otherwise. An HTTP session whose
    connector uses it can only connect to checked addresses: no DNS rebinding."""

    def __init__(self, guard: URLGuard, inner: AbstractResolver, *, owns_inner: bool) -> None:
        self.guard = guard
        self._inner = inner
        self._owns_inner = owns_inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self.guard.check_addresses(host, port, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


def _addresses_of(resolver: AbstractResolver) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return [r["host"] for r in await resolver.resolve(host, port, socket.AF_UNSPEC)]

    return resolve


def _oserror_text(err: BaseException) -> str:
    args: Any = getattr(err, "args", ())
    if isinstance(err, socket.gaierror) and len(args) >= 2:
        return str(args[1])
    return str(err) or type(err).__name__


def make_url_guard(
    allow_hosts: Iterable[str] = (), *, resolver: Resolver | AbstractResolver | None = None
) -> URLGuard:
    return URLGuard(allow_hosts, resolver=resolver)
