"""The URL guard for feeds added from chat: scheme, private addresses, allow list."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from typing_extensions import override

from bot.errors import FetchError, UnsafeURLError
from bot.feeds.guard import URLGuard, address_problem


def fake_resolver(table: dict[str, list[str]]):
    async def resolve(host: str, _port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


PUBLIC = {"news.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]}


async def test_public_host_passes() -> None:
    guard = URLGuard(resolver=fake_resolver(PUBLIC))
    await guard("https://news.example/feed.xml")
    await guard("http://news.example:8080/rss")
    await guard("http://8.8.8.8/rss")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://news.example/feed",
        "file:///etc/passwd",
        "gopher://news.example/",
        "news.example/x",
        "javascript:alert(1)",
    ],
)
async def test_only_http_and_https(url: str) -> None:
    guard = URLGuard(resolver=fake_resolver(PUBLIC))
    with pytest.raises(UnsafeURLError, match="only http"):
        await guard(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.5", "private"),
        ("192.168.1.10", "private"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("fe80::1", "link-local"),
        ("fc00::5", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("192.0.2.7", "private"),  # documentation range
    ],
)
async def test_non_public_addresses_refused(address: str, reason: str) -> None:
    guard = URLGuard(resolver=fake_resolver({"evil.example": [address]}))
    with pytest.raises(UnsafeURLError, match=reason):
        await guard("http://evil.example/feed")
    # the address as a literal host is refused the same way
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeURLError, match=reason):
        await guard(f"http://{host}/feed")


async def test_every_resolved_address_must_be_public() -> None:
    guard = URLGuard(resolver=fake_resolver({"mixed.example": ["93.184.216.34", "10.0.0.8"]}))
    with pytest.raises(UnsafeURLError, match=r"10\.0\.0\.8"):
        await guard("https://mixed.example/feed")


async def test_localhost_resolved_with_the_real_resolver_is_refused() -> None:
    guard = URLGuard()  # the event loop's getaddrinfo: localhost is in /etc/hosts
    with pytest.raises(UnsafeURLError, match="loopback"):
        await guard("http://localhost:8080/feed")


async def test_unresolvable_host_is_a_fetch_error() -> None:
    guard = URLGuard(resolver=fake_resolver({}))
    with pytest.raises(FetchError, match=r"cannot resolve host nowhere\.example"):
        await guard("http://nowhere.example/feed")


async def test_allow_hosts_lets_named_hosts_through() -> None:
    guard = URLGuard(
        ["127.0.0.1:8123", "Intranet.Local"],
        resolver=fake_resolver({"intranet.local": ["10.0.0.2"]}),
    )
    await guard("http://127.0.0.1:8123/feed")
    await guard("http://intranet.local/feed")
    with pytest.raises(UnsafeURLError, match="loopback"):
        await guard("http://127.0.0.1:9999/feed")  # another port is not allowed


def test_address_problem_accepts_public_addresses() -> None:
    import ipaddress

    assert address_problem(ipaddress.ip_address("93.184.216.34")) is None
    assert address_problem(ipaddress.ip_address("2606:4700::1111")) is None


class TableResolver(AbstractResolver):
    """aiohttp's resolver interface over a fixed table (the last edge: DNS)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    @override
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for a in self.table[host]
        ]

    async def close(self) -> None:
        pass


REFUSED_LOOPBACK = (
    "refused: evil.example resolves to 127.0.0.1, a loopback address; feeds added from chat "
    "must be on the public internet (an admin can allow a host in security.allow_hosts)"
)


async def test_connect_resolver_passes_public_answers_on() -> None:
    dns = TableResolver(PUBLIC)
    resolver = URLGuard(resolver=dns).connect_resolver()
    answers = await resolver.resolve("news.example", 443, socket.AF_UNSPEC)
    assert [a["host"] for a in answers] == PUBLIC["news.example"]
    assert all(a["port"] == 443 for a in answers)


@pytest.mark.parametrize(
    "addresses", [["127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["127.0.0.1", "8.8.8.8"]]
)
async def test_connect_resolver_refuses_any_private_answer(addresses: list[str]) -> None:
    resolver = URLGuard(resolver=TableResolver({"evil.example": addresses})).connect_resolver()
    with pytest.raises(UnsafeURLError) as refused:
        await resolver.resolve("evil.example", 80, socket.AF_UNSPEC)
    # the same words as the check made when the feed is added
    assert str(refused.value) == REFUSED_LOOPBACK
    with pytest.raises(UnsafeURLError) as checked:
        await URLGuard(resolver=fake_resolver({"evil.example": addresses}))(
            "http://evil.example/feed"
        )
    assert str(checked.value) == REFUSED_LOOPBACK


async def test_connect_resolver_honours_allow_hosts() -> None:
    dns = TableResolver({"intranet.local": ["10.0.0.2"]})
    guard = URLGuard(["intranet.local:8080"], resolver=dns)
    resolver = guard.connect_resolver()
    answers = await resolver.resolve("intranet.local", 8080, socket.AF_UNSPEC)
    assert [a["host"] for a in answers] == ["10.0.0.2"]
    with pytest.raises(UnsafeURLError, match="private"):
        await resolver.resolve("intranet.local", 9090, socket.AF_UNSPEC)


async def test_an_aiohttp_resolver_given_to_the_guard_serves_the_check_too() -> None:
    dns = TableResolver({"evil.example": ["10.9.8.7"]})
    guard = URLGuard(resolver=dns)
    with pytest.raises(UnsafeURLError, match=r"10\.9\.8\.7, a private address"):
        await guard("https://evil.example/feed")
    assert dns.calls == [("evil.example", 443)]
    with pytest.raises(FetchError, match=r"cannot resolve host nowhere\.example"):
        await guard("https://nowhere.example/feed")
