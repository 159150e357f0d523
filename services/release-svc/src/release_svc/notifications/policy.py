"""Where release-svc may send webhooks (pure functions, no I/O): a notification URL is a request the service makes
on a caller's behalf, so it must not reach what only the service can reach (server-side request forgery).

- only ``http`` and ``https``, with a host, and no credentials in the URL;
- never a cloud metadata endpoint (they hand out the machine's credentials), whatever else is allowed;
- unless private destinations are allowed (development and test by default, so local receivers work), only public
  addresses: not loopback, link-local, private, shared (CGNAT), multicast, reserved or unspecified ones;
- hosts and networks named in the allow-list are trusted as they are (an internal webhook relay, say).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
#: Instance metadata services (AWS, GCP, Azure, OpenStack, DigitalOcean: 169.254.169.254; AWS ECS task metadata;
#: AWS over IPv6; Alibaba Cloud) and the names they answer to.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


class UnsafeUrl(ValueError):
    """A notification URL release-svc refuses to call; the message says why."""


@dataclass(frozen=True)
class Target:
    """A URL split into what the sender needs: scheme, host (lower case, no brackets), port, path and query."""

    url: str
    scheme: str
    host: str
    port: int
    path: str

    @property
    def literal_ip(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def pinned(self, ip: IPAddress) -> str:
        """The URL with the host replaced by the vetted address (so the connection goes where the check looked)."""
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


@dataclass(frozen=True)
class NotifyPolicy:
    allow_private: bool
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, allow_private: bool, allowed: Iterable[str]) -> NotifyPolicy:
        """``allowed``: host names, addresses or networks (``hooks.internal``, ``10.1.2.3``, ``10.1.0.0/16``)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (a.strip().lower() for a in allowed):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(allow_private, frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        return host in self.allowed_hosts

    def address_allowed(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.allowed_networks)


def parse(url: str) -> Target:
    """Scheme, host and credentials checked; raises UnsafeUrl."""
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeUrl(f"scheme {scheme or '(none)'!r} is not allowed; use http or https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not allowed; the body is signed with the release's secret")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrl("the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(url=url, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path)


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def address_problem(ip: IPAddress) -> str | None:
    """Why an address is not public (None when it is)."""
    ip = _unmapped(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for test, name in (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
    ):
        if test:
            return name
    if not ip.is_global:
        return "a non-public address"
    return None


def check_host(target: Target, policy: NotifyPolicy) -> None:
    """The checks that need no name resolution: metadata names and literal addresses."""
    if policy.host_allowed(target.host):
        return
    if target.host in METADATA_HOSTS:
        raise UnsafeUrl(f"host {target.host!r} is a cloud metadata endpoint")
    ip = target.literal_ip
    if ip is not None:
        check_address(target, ip, policy)


def check_address(target: Target, ip: IPAddress, policy: NotifyPolicy) -> None:
    """One address the host resolves to; raises UnsafeUrl when the policy refuses it."""
    if policy.host_allowed(target.host) or policy.address_allowed(ip):
        return
    problem = address_problem(ip)
    if problem is None:
        return
    if problem == "a cloud metadata address" or not policy.allow_private:
        shown = target.host if target.literal_ip is not None else f"{target.host} ({ip})"
        raise UnsafeUrl(f"{shown} is {problem}; webhooks go to public addresses only")
