"""Where webhooks may be sent: public addresses only, unless a host is allow-listed.

A webhook URL is chosen by whoever holds a platform key, and the worker sends to it from
inside the marketplace's network; without these rules it could be made to post to the
database, a cloud metadata service (169.254.169.254) or an admin page on the loopback. So:

* at registration (:func:`registration_problem`) a URL is refused when it is malformed in
  a way parsers disagree on (backslashes, control characters, userinfo, escapes in the host)
  or when its host is, or now resolves to, an address that is not public;
* at send time (:func:`checked_address`) the host is resolved once, every address it
  resolves to is checked, and the worker connects to the checked address itself, so a name
  that resolves elsewhere meanwhile (DNS rebinding) is refused too (docs/decisions/0012).

Hosts are read with httpx's own URL parser, the one the worker sends with; numeric IPv4
spellings (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) are read as the C
library reads them, which is how the connection would read them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = frozenset({"http", "https"})
#: NAT64 (RFC 6052): the last 32 bits are an IPv4 address the gateway connects to.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(Exception):
    """The worker will not connect to this destination; ``reason`` is short and public."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AllowList:
    """Hosts (names), addresses and networks exempt from the public-address rule."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """From ``SHOUHOU_WEBHOOK_ALLOW_HOSTS`` entries (``localhost``, ``10.0.0.0/8`` …)."""
        names: set[str] = set()
        networks: list[Network] = []
        for entry in entries:
            text = entry.strip().lower().strip("[]")
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                names.add(text.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def permits_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def permits_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is no place to send a webhook (``"loopback"``, ``"private"`` …), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            inner = address_problem(embedded)
            if inner is not None:
                return inner
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),  # shared (100.64/10), documentation …
    )
    return next((name for name, hit in checks if hit), None)


def numeric_host(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form a connection would accept, or None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not bare or not all(ch.isalnum() or ch == "." for ch in bare):
        return None
    try:  # the C library's reading: decimal, hex, octal and short dotted forms
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to now (tests replace this to play a resolver)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _refusal(host: str, address: IPAddress, allow: AllowList) -> str | None:
    if allow.permits_address(address):
        return None
    problem = address_problem(address)
    if problem is None:
        return None
    spelled = "" if host.strip("[]") == str(address) else f"{host} is "
    return f"{spelled}{address}, a {problem} address"


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def parse(url: str) -> httpx.URL:
    """``url`` read as the worker's HTTP client reads it; ValueError names what is wrong."""
    bad = next((ch for ch in url if ord(ch) <= 0x20 or ord(ch) == 0x7F or ch == "\\"), None)
    if bad is not None:
        raise ValueError(f"it contains {bad!r}, which URL parsers read differently")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parsed.scheme not in SCHEMES:
        raise ValueError("the scheme must be http or https")
    if parsed.userinfo:
        raise ValueError("a user name or password in the URL is not sent; drop it")
    if not parsed.host:
        raise ValueError("it names no host")
    if "%" in parsed.host:
        raise ValueError("the host has an escape (%) or zone in it")
    return parsed


def registration_problem(url: str, allow: AllowList) -> str | None:
    """Why a webhook may not be registered at ``url``, or None. A host that does not resolve
    now is accepted: the send-time check (:func:`checked_address`) guards every delivery."""
    try:
        parsed = parse(url)
    except ValueError as exc:
        return str(exc)
    host = parsed.host
    if allow.permits_name(host):
        return None
    numeric = numeric_host(host)
    try:
        addresses = [numeric] if numeric is not None else resolve(host, _port(parsed))
    except OSError:
        return None
    for address in addresses:
        refusal = _refusal(host, address, allow)
        if refusal is not None:
            return f"webhooks go to public addresses only: {refusal}"
    return None


def checked_address(url: httpx.URL, allow: AllowList) -> IPAddress:
    """The one address to connect to for ``url``: resolved once, every address checked;
    raises DestinationRefused (``refused: private address``) when any is not public."""
    host = url.host
    if "%" in host or not host:
        raise DestinationRefused("refused: malformed host")
    try:
        addresses = resolve(host, _port(url))
    except OSError:
        raise DestinationRefused("refused: the host does not resolve") from None
    if not addresses:
        raise DestinationRefused("refused: the host does not resolve")
    if not allow.permits_name(host):
        for address in addresses:
            if not allow.permits_address(address):
                problem = address_problem(address)
                if problem is not None:
                    raise DestinationRefused(f"refused: {problem} address")
    return addresses[0]
