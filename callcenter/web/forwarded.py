"""The client's address behind a reverse proxy (issue 14): ``X-Forwarded-For``, believed only from the proxy.

Behind the TLS proxy of the compose deployment every request comes from the proxy's address, so the per-address
log-in limits would lock the whole centre out at once and the audit's "from where" would name the proxy. This
middleware, first of all, replaces the request's ``remote`` with the client's address — but only when the peer is
one of ``CC_TRUSTED_PROXIES``: the header of anybody else is ignored, as anybody can send one. In the header's
chain the rightmost address that is not itself a trusted proxy is the client (addresses further left were written
by the client and prove nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from callcenter.config import Network


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:4711
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.9:4711
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, networks: tuple[Network, ...]) -> str | None:
    """The client's address: ``peer`` unless it is a trusted proxy that says, in ``forwarded_for``, for whom."""
    if not networks or not forwarded_for or not _trusted(_address(peer or ""), networks):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            return peer  # a malformed chain: nothing in it can be believed
        if not _trusted(address, networks):
            return str(address)
    return peer


def forwarded_middleware(networks: tuple[Network, ...]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = client_address(request.remote, request.headers.get("X-Forwarded-For"), networks)
        if client == request.remote:
            return await handler(request)
        return await handler(request.clone(remote=client))

    return middleware
