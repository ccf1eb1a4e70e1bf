"""The SSRF guard: which addresses a request may reach without an allow-list entry (loopback,
private, link-local, reserved... and IPv6 forms embedding such an IPv4 are refused), the check
of every address a host resolves to, and the requests pinned to the checked addresses so a
second DNS answer cannot redirect them (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from jobforge.errors import HttpRefused
from jobforge.runtime.http.policy import HttpPolicy, _shown

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


def _why_forbidden(address: str) -> str | None:
    """Why `address` may not be reached without an allow-list entry, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        for kind, embedded in (
            ("an IPv4-mapped IPv6", ip.ipv4_mapped),
            ("a 6to4 IPv6", ip.sixtofour),
            ("a NAT64 IPv6", _nat64_embedded(ip)),
        ):
            if embedded is not None:
                inner = _why_forbidden(str(embedded))
                return None if inner is None else f"{kind} address embedding {embedded} ({inner})"
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a private (shared) address"),
        (not ip.is_global, "a reserved (non-global) address"),
    )
    return next((why for hit, why in checks if hit), None)


def _nat64_embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class _Target:
    """Where a checked request goes: the host's checked addresses, or None when allow-listed."""

    host: str
    port: int
    addresses: tuple[str, ...] | None


def _host_and_port(method: str, url: httpx.URL, policy: HttpPolicy) -> tuple[str, int]:
    if url.scheme not in ("http", "https") or not url.host:
        raise HttpRefused(
            f"refused {method} {_shown(url, policy)}: only absolute http:// and https:// URLs "
            "are allowed"
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.raw_host.decode("ascii"), port


def _check_addresses(
    method: str, url: httpx.URL, addresses: Sequence[str], why: str, policy: HttpPolicy
) -> tuple[str, ...]:
    """`addresses` without repeats, in order; HttpRefused if any of them is forbidden."""
    addresses = list(dict.fromkeys(addresses))
    for address in addresses:
        reason = _why_forbidden(address)
        if reason is not None:
            raise HttpRefused(
                f"refused {method} {_shown(url, policy)}{why}: host {url.host!r} resolves to "
                f"{address}, "
                f"{reason}; if this is intended, {policy.allow_advice(url.host)}"
            )
    return tuple(addresses)


def _literal_address(host: str) -> str | None:
    """The address a literal-IP host names (also the legacy IPv4 forms such as ``2130706433``
    or ``127.1``), parsed without any lookup so no resolver can answer for it; None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    """The addresses in getaddrinfo results."""
    return [str(info[4][0]) for info in infos]


def _unresolved(request: httpx.Request, exc: BaseException) -> httpx.ConnectError:
    return httpx.ConnectError(f"could not resolve {request.url.host!r}: {exc}", request=request)


def _hop_note(history: list[httpx.Response], policy: HttpPolicy) -> str:
    return f" (redirected from {_shown(history[-1].request.url, policy)})" if history else ""


def _wire_requests(request: httpx.Request, target: _Target) -> list[httpx.Request]:
    """What goes on the wire: the request itself when allow-listed, else one per checked
    address, pinned to it (Host header keeps the name; TLS checks the name through SNI)."""
    if target.addresses is None:
        return [request]
    wires = []
    for address in target.addresses:
        wire = httpx.Request(
            request.method,
            request.url.copy_with(host=address.split("%", 1)[0]),
            headers=request.headers,
            content=request.content,
            extensions=dict(request.extensions),
        )
        if request.url.scheme == "https":
            wire.extensions["sni_hostname"] = target.host
        wires.append(wire)
    return wires
