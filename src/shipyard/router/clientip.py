"""Who the client is: the TCP peer, or — when the peer is a trusted proxy (``trusted_proxies``) — the
rightmost address in X-Forwarded-For that is not itself a trusted proxy. Sans-io."""

from __future__ import annotations

import ipaddress

_CACHE_MAX = 4096  # peers seen; cleared when full (a lookup is a dict hit, a miss parses the address)


class TrustedProxies:
    __slots__ = ("_nets", "_cache")

    def __init__(self, networks: list[str] | tuple[str, ...] = ()) -> None:
        self._nets = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._cache: dict[bytes, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._nets)

    def trusted(self, ip: bytes) -> bool:
        """``ip`` is inside a trusted network (an address that does not parse is not trusted)."""
        if not self._nets:
            return False
        hit = self._cache.get(ip)
        if hit is None:
            try:
                addr = ipaddress.ip_address(ip.decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                return False
            if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped  # an IPv4 peer on a dual-stack ("::") listener
            hit = any(addr in net for net in self._nets)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[ip] = hit
        return hit

    def client(self, peer: bytes, xff: bytes | None) -> bytes:
        """The address rate limiting and the access log use. Only a trusted peer's X-Forwarded-For is
        read, from the right (the part our own proxies appended); an entry that is not an address ends
        the walk at the last good one."""
        if xff is None or not self.trusted(peer):
            return peer
        client = peer
        for part in reversed(xff.split(b",")):
            addr = part.strip()
            if not _is_address(addr):
                break
            client = addr
            if not self.trusted(addr):
                break
        return client


def _is_address(value: bytes) -> bool:
    try:
        ipaddress.ip_address(value.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return False
    return True
