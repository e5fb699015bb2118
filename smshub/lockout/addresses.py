"""Who is asking, for limits per address.

The address is REMOTE_ADDR, unless that is a proxy listed in FORWARDED_ALLOW_IPS (by default
this machine): then it is the last address of X-Forwarded-For not itself a listed proxy. A
proxy appends the address it saw, so what a client writes into X-Forwarded-For stays to the
left of it and is never read. IPv6 addresses count per /64, the block one subscriber usually
has.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...] | None:
    """The trusted proxies as networks; None when every peer is trusted (`*`)."""
    if "*" in entries:
        return None
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry)


def _trusted(address: IPAddress | None, trusted: tuple[str, ...]) -> bool:
    """Whether this peer may say who the client is. A peer without an IP address (a Unix
    socket: the proxy on this machine) is trusted."""
    if address is None:
        return True
    networks = _networks(trusted)
    return networks is None or any(address in network for network in networks)


def _parse(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _counted(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def normalize(text: str) -> str | None:
    """An address typed by someone (`2001:db8::1`, `2001:db8::/64`) as limits count it; None if
    it is not one."""
    address = _parse(text)
    if address is None:
        try:
            address = ipaddress.ip_network(text.strip(), strict=False).network_address
        except ValueError:
            return None
    return _counted(address)


def client_address(request: HttpRequest) -> str:
    """The client's address as limits count it: `203.0.113.7`, `2001:db8:1:2::/64`, or
    `unknown` when nobody said."""
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
    trusted = tuple(settings.SMSHUB_TRUSTED_PROXIES)
    if len(forwarded_for) > REMEMBERED_CHAIN:
        return _client_address(remote, forwarded_for, trusted)
    return _remembered_address(remote, forwarded_for, trusted)


def _client_address(remote: str, forwarded_for: str, trusted: tuple[str, ...]) -> str:
    address = _parse(remote)
    if _trusted(address, trusted):
        for hop in reversed(forwarded_for.split(",")):
            forwarded = _parse(hop)
            if forwarded is None:  # not written by a proxy: nothing further left is either
                break
            address = forwarded
            if not _trusted(forwarded, trusted):
                break
    return "unknown" if address is None else _counted(address)


# The same peers and forwarded chains come again and again (the proxy, its clients): each is
# worked out once per process rather than parsed on every API call (a fiftieth of a single
# send's CPU). Longer chains than this, rare and as long as a client cares to make them, are not
# kept.
REMEMBERED_CHAIN = 256
_remembered_address = lru_cache(maxsize=4096)(_client_address)
