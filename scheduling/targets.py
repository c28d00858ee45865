"""Where the server may send webhooks: the administrator's allow-list of hosts and networks.

For :mod:`scheduling.webhooks` (checked when a subscription is saved) and
:mod:`scheduling.webhook_sender` (checked again on every connection, after DNS). Entries
are host names (``oa.gz.gov.cn``), wildcard domains (``*.gz.gov.cn``: any host below it),
IP addresses or networks (``10.20.0.0/16``, ``127.0.0.1``). Nothing is allowed by default.

Loopback, link-local (cloud metadata at 169.254.169.254), unspecified and multicast
addresses are reached only when a listed *network* contains them: naming a host is not
enough, so a listed name that resolves (or is re-pointed) to 127.0.0.1 is refused at
connection time. A URL carrying a user name or password is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from scheduling.errors import TargetNotAllowed

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _special(address: IPAddress) -> bool:
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
    )


@dataclass(frozen=True, slots=True)
class AllowList:
    """Parsed entries of an allow-list setting."""

    hosts: frozenset[str]
    domains: tuple[str, ...]  # "*.example.org" kept as ".example.org"
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts: set[str] = set()
        domains: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                domains.append(entry[1:])
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(domains), tuple(networks))

    @property
    def empty(self) -> bool:
        return not (self.hosts or self.domains or self.networks)

    def host_allowed(self, host: str) -> bool:
        """Whether a URL's host (name or IP literal) is on the list."""
        host = host.lower().rstrip(".")
        address = _address(host)
        if address is not None:
            return self.address_allowed(address, named=False)
        return host in self.hosts or any(host.endswith(d) for d in self.domains)

    def address_allowed(self, address: IPAddress, *, named: bool) -> bool:
        """Whether a resolved address may be connected to.

        ``named``: it came from resolving a listed host name; ordinary addresses are then
        fine, special ones (loopback, link-local ...) still need a listed network.
        """
        if any(address in net for net in self.networks):
            return True
        return named and not _special(address)


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def http_host(url: str) -> str:
    """The host of an http(s) URL without credentials; else :class:`TargetNotAllowed`."""
    if len(url) > 2000:
        raise TargetNotAllowed("the URL is too long", code="bad_url", fields={"url": "too long"})
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetNotAllowed(
            "only http:// and https:// URLs with a host are accepted",
            code="bad_url",
            fields={"url": "not an http(s) URL"},
        )
    if parts.username or parts.password:
        raise TargetNotAllowed(
            "a URL may not carry a user name or password",
            code="bad_url",
            fields={"url": "credentials in the URL"},
        )
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise TargetNotAllowed(
            "the URL's port is not valid", code="bad_url", fields={"url": "bad port"}
        ) from None
    return parts.hostname


def check_url(
    url: str,
    allowed: AllowList,
    *,
    code: str = "webhook_target_not_allowed",
    setting: str = "SUIMEET_WEBHOOK_ALLOWED_TARGETS",
) -> str:
    """The URL if it is http(s) to an allowed host; else :class:`TargetNotAllowed`."""
    host = http_host(url)
    if allowed.empty or not allowed.host_allowed(host):
        raise TargetNotAllowed(
            f"{host} is not on the administrator's allow-list ({setting})",
            code=code,
            fields={"url": "host not allowed"},
        )
    return url


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses addresses the allow-list does not permit.

    Checking after resolution, on the very addresses aiohttp connects to, closes the gap
    between checking a name and using it (DNS rebinding).
    """

    def __init__(self, allowed: AllowList, inner: AbstractResolver | None = None) -> None:
        self.allowed = allowed
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = _address(host)
        if literal is not None:
            if not self.allowed.address_allowed(literal, named=False):
                raise OSError(f"address {literal} is not allowed")
            return await self.inner.resolve(host, port, family)
        if not self.allowed.host_allowed(host):
            raise OSError(f"host {host} is not allowed")
        results = await self.inner.resolve(host, port, family)
        kept = [r for r in results if self._ok(r)]
        if not kept:
            raise OSError(f"{host} resolves only to addresses that are not allowed")
        return kept

    def _ok(self, result: ResolveResult) -> bool:
        address = _address(str(result["host"]))
        return address is not None and self.allowed.address_allowed(address, named=True)

    async def close(self) -> None:
        await self.inner.close()


def describe(allowed: AllowList) -> dict[str, Any]:
    """The list as shown to administrators."""
    return {
        "hosts": sorted(allowed.hosts),
        "domains": [f"*{d}" for d in allowed.domains],
        "networks": [str(n) for n in allowed.networks],
    }
