"""The one definition of an address the API may call on a third party's behalf: Web Push
endpoints (``tracking_api/push.py``) and webhook URLs (``tracking_api/webhooks/``). A host
must resolve, and only to public addresses: never loopback, private, link-local (cloud
metadata), multicast, reserved or unspecified ones, however the address is spelt (a name,
a decimal or octal IPv4 literal and an IPv6 form all go through the resolver)."""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressError(ValueError):
    """A host that does not resolve or resolves to a non-public address; the message says which."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to for TCP on ``port``, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressError(f"host {host!r} does not resolve: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


def is_public(address: IPAddress) -> bool:
    # An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged as the IPv4 address it maps.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    target = mapped or address
    return target.is_global and not target.is_multicast


def public_addresses(host: str, port: int = 443) -> list[IPAddress]:
    """The addresses of ``host``, all public; ``AddressError`` if it does not resolve or
    any of them is not public (one private answer among public ones is refused too: the
    connection could go to either)."""
    addresses = resolve(host, port)
    for address in addresses:
        if not is_public(address):
            raise AddressError(f"host {host!r} resolves to a non-public address ({address})")
    return addresses


def address_problem(host: str, port: int = 443) -> str | None:
    """Why ``host`` may not be called (see ``public_addresses``), or None."""
    try:
        public_addresses(host, port)
    except AddressError as exc:
        return str(exc)
    return None
