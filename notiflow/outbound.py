"""The SSRF guard: every URL notiflow calls on someone's behalf (webhooks, Slack, Teams, the SMS gateway).

An admin can type any URL into a subscription; without a guard that is a way to make
the worker call the cloud metadata service (169.254.169.254), the database's admin
port or anything else on the internal network. So, for every request:

1. the URL is parsed strictly (``parse_url``): http(s) only, no credentials, a port in
   range, a host that is a valid name or a *canonical* IP literal. Spellings that some
   resolver would read as an address — ``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
   ``127.1``, ``[::ffff:127.0.0.1]`` — are refused even when the address itself is
   allowed: they exist to slip past filters;
2. the host is resolved once and **every** address checked (``address_problem``):
   loopback, private, link-local, CGNAT, unique-local, multicast, unspecified,
   reserved, IPv4-mapped and tunnelled (6to4, Teredo, NAT64, IPv4-compatible) are
   refused unless ``NOTIFLOW_OUTBOUND_ALLOW`` (comma-separated CIDRs and host names)
   lets them through; plain ``http://`` only for allowed destinations;
3. the connection goes to the checked address — the request URL carries the IP, the
   ``Host`` header and TLS SNI (hence certificate checking) the original name — so a
   second DNS answer (rebinding) can never redirect it. Redirects are not followed,
   proxies from the environment are not used, and answers are read up to 4 KiB.

``OutboundRefused`` (a ``ValueError``) names the reason: the API answers 422 with it when a
subscription is saved, the worker marks the row FAILED with it at send time.
``OutboundUnavailable`` is a failure worth retrying (no DNS answer, connection refused,
timeout). For a provider: ``OutboundClient(settings.outbound_allowlist,
timeout=settings.outbound_timeout_seconds).request("POST", url, content=…, headers=…)``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: How much of an answer is read (enough for an error message; a receiver cannot make the worker buffer more).
MAX_ANSWER_BYTES = 4096
#: A Retry-After beyond this is taken as this (the delivery deadline bounds retries anyway).
MAX_RETRY_AFTER_SECONDS = 3600.0

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_METADATA = ipaddress.ip_address("169.254.169.254")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
#: WHATWG URL: a host whose last label is a number (decimal, or 0x hex) is an IPv4 address, however spelt.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


class OutboundRefused(ValueError):
    """This URL may not be called; the message says why (422 at save, FAILED at send)."""


class OutboundUnavailable(Exception):
    """The destination could not be reached this time (no DNS answer, refused, timeout): worth retrying."""


# ---------------------------------------------------------------------------------------------- allow list


@dataclass(frozen=True)
class AllowList:
    """``NOTIFLOW_OUTBOUND_ALLOW``: addresses (CIDRs) and host names that may be private or plain http."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        networks, hosts = [], set()
        for entry in (e.strip() for e in (text or "").split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            try:
                hosts.add(_hostname(entry.lower()))
            except OutboundRefused:
                raise ValueError(f"{entry!r} is neither a CIDR (10.0.0.0/8, 127.0.0.1) nor a host name") from None
        return cls(tuple(networks), frozenset(hosts))

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def allows_host(self, host: str) -> bool:
        return host in self.hosts

    def __str__(self) -> str:
        return ",".join([*map(str, self.networks), *sorted(self.hosts)]) or "nothing"


@lru_cache(maxsize=16)
def allow_list(text: str | None) -> AllowList:
    return AllowList.parse(text)


# ---------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntax checks: scheme, canonical host (no brackets), port."""

    url: str
    scheme: str
    host: str
    port: int
    #: the host when it is an IP literal
    literal: IPAddress | None

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Syntax only (no DNS): refuses anything but http(s) to a valid name or a canonical IP literal."""
    if not isinstance(url, str) or not url:
        raise OutboundRefused("the URL is empty")
    if len(url) > 2000:
        raise OutboundRefused("the URL is longer than 2,000 characters")
    if any(ord(c) <= 0x20 or c in "\x7f\\" for c in url):
        raise OutboundRefused("the URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"the URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundRefused(
            f"only https:// (or http:// to an allowed host) URLs are accepted, not {scheme or 'no'} scheme"
        )
    if "@" in parts.netloc:
        raise OutboundRefused("credentials in the URL (user@host) are not accepted")
    host = parts.hostname or ""
    if not host:
        raise OutboundRefused("the URL has no host")
    if port == 0:
        raise OutboundRefused("port 0 cannot be called")
    port = port or (443 if scheme == "https" else 80)
    if "[" in parts.netloc:
        return _target_v6(url, scheme, host, port)
    host = host[:-1] if host.endswith(".") else host  # the root label of an absolute name
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundRefused(f"the host {parts.hostname!r} is not a valid name") from None
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        return Target(url, scheme, host, port, _canonical_ipv4(host))
    return Target(url, scheme, _hostname(host), port, None)


def _target_v6(url: str, scheme: str, host: str, port: int) -> Target:
    if "%" in host:
        raise OutboundRefused("an IPv6 zone id (%…) is not accepted")
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        raise OutboundRefused(f"[{host}] is not a valid IPv6 address") from None
    if address.ipv4_mapped is not None:
        raise OutboundRefused(
            f"[{host}] is an IPv4-mapped IPv6 spelling of {address.ipv4_mapped}; write the IPv4 address itself"
        )
    if address.compressed != host:
        raise OutboundRefused(
            f"[{host}] is not the canonical spelling of {address.compressed}; write [{address.compressed}]"
        )
    return Target(url, scheme, host, port, address)


def _canonical_ipv4(host: str) -> ipaddress.IPv4Address:
    """A host that is an IPv4 address: only the dotted-decimal spelling is accepted."""
    try:
        address = ipaddress.IPv4Address(host)
        if str(address) == host:
            return address
    except ValueError:
        pass
    try:
        meaning = f" (a resolver reads it as {socket.inet_ntoa(socket.inet_aton(host))})"
    except OSError:
        meaning = ""
    raise OutboundRefused(
        f"{host!r} is not a canonical IPv4 address{meaning}: decimal, octal, hex and shortened spellings are refused"
    )


def _hostname(host: str) -> str:
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise OutboundRefused(f"the host {host!r} is not a valid name")
    return host


# ---------------------------------------------------------------------------------------------- addresses


def address_problem(address: IPAddress, allow: AllowList) -> str | None:
    """Why this address may not be called, or None. Mapped forms are refused even when allowed."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return f"{address} is an IPv4-mapped address (of {address.ipv4_mapped})"
    if allow.allows_address(address):
        return None
    if address.version == 6:
        embedded = _tunnelled(address)
        if embedded:
            return f"{address} is a tunnelled address ({embedded})"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address == _METADATA:
        return f"{address} is link-local (the cloud metadata service)"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.version == 4 and address in _CGNAT:
        return f"{address} is in the carrier-grade NAT range (100.64.0.0/10)"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.version == 6 and address in ipaddress.ip_network("fc00::/7"):
        return f"{address} is a unique-local address"
    if address.version == 6 and address.is_site_local:
        return f"{address} is a site-local address"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_reserved or not address.is_global:
        return f"{address} is a reserved address, not a public one"
    return None


def _tunnelled(address: ipaddress.IPv6Address) -> str | None:
    if address.sixtofour is not None:
        return f"6to4 carrying {address.sixtofour}"
    if address.teredo is not None:
        return f"Teredo carrying {address.teredo[1]}"
    if any(address in net for net in _NAT64):
        return f"NAT64 carrying {ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)}"
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return f"IPv4-compatible form of {ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)}"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (tests replace this function to fake a DNS answer)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Checked:
    """A URL whose every address passed: connect to ``addresses`` only."""

    target: Target
    addresses: tuple[IPAddress, ...]


async def check_url(url: str, allow: AllowList) -> Checked:
    """Parse, resolve once, check every address; ``OutboundRefused`` names the first problem."""
    target = parse_url(url)
    if target.literal is not None:
        addresses: tuple[IPAddress, ...] = (target.literal,)
    else:
        try:
            found = await asyncio.wait_for(resolve(target.host, target.port), timeout=10)
        except (TimeoutError, OSError) as exc:
            raise OutboundUnavailable(f"cannot resolve {target.host}: {exc or 'no answer'}") from None
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(a.split("%", 1)[0]) for a in found))
        if not addresses:
            raise OutboundUnavailable(f"{target.host} has no address")
    host_allowed = target.literal is None and allow.allows_host(target.host)
    for address in addresses:
        if address.version == 6 and address.ipv4_mapped is not None:
            raise OutboundRefused(f"{target.host} resolves to {address}, an IPv4-mapped address")
        problem = None if host_allowed else address_problem(address, allow)
        if problem:
            where = "" if target.literal is not None else f"{target.host} resolves to "
            raise OutboundRefused(f"{where}{problem}; refused (NOTIFLOW_OUTBOUND_ALLOW can allow it)")
    if target.scheme == "http" and not (host_allowed or all(allow.allows_address(a) for a in addresses)):
        raise OutboundRefused(
            f"plain http:// is only accepted for hosts in NOTIFLOW_OUTBOUND_ALLOW; use https://{target.host_header}"
        )
    return Checked(target, addresses)


async def refusal(url: str, allow: AllowList) -> str | None:
    """For a save: the reason this URL is refused, or None. A host that does not resolve (yet) is refused too."""
    try:
        await check_url(url, allow)
    except (OutboundRefused, OutboundUnavailable) as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    headers: httpx.Headers
    #: the start of the answer (at most MAX_ANSWER_BYTES), decoded leniently
    text: str

    def retry_after(self, now: datetime | None = None) -> float | None:
        """Seconds the receiver asked us to wait (``Retry-After``: seconds or an HTTP date), capped; None if absent."""
        return retry_after_seconds(self.headers.get("retry-after"), now)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class OutboundClient:
    """Checked, pinned HTTP requests. One ``httpx.AsyncClient`` per (scheme, host, address, port), so a pooled
    TLS connection is only ever reused for the name it was verified for."""

    def __init__(
        self,
        allow: AllowList,
        *,
        timeout: float,
        max_clients: int = 32,
        verify: ssl.SSLContext | bool = True,
        http2_only: bool = False,
    ) -> None:
        self.allow = allow
        #: HTTP/2 and nothing else (APNs): ALPN ``h2`` over TLS, prior knowledge (h2c) over plain http
        self.http2_only = http2_only
        self.timeout = httpx.Timeout(timeout)
        self.verify = verify
        self.max_clients = max_clients
        self._clients: OrderedDict[tuple, httpx.AsyncClient] = OrderedDict()

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> OutboundResponse:
        checked = await check_url(url, self.allow)
        target = checked.target
        request_headers = {**(headers or {}), "Host": target.host_header}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" and target.literal is None else {}
        failures = []
        for address in checked.addresses:
            client = await self._client(target, address)
            pinned = httpx.URL(url).copy_with(host=str(address), fragment=None)
            try:
                async with client.stream(
                    method,
                    pinned,
                    content=content,
                    data=data,
                    headers=request_headers,
                    extensions=extensions,
                    auth=auth,
                ) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= MAX_ANSWER_BYTES:
                            break
                    return OutboundResponse(
                        response.status_code,
                        response.headers,
                        bytes(body[:MAX_ANSWER_BYTES]).decode("utf-8", "replace"),
                    )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures.append(f"{address}: {exc or type(exc).__name__}")
            except httpx.TimeoutException:
                raise OutboundUnavailable(
                    f"{target.host_header} gave no answer within {self.timeout.read:g} s"
                ) from None
            except httpx.HTTPError as exc:
                raise OutboundUnavailable(f"{target.host_header}: {exc or type(exc).__name__}") from None
        raise OutboundUnavailable(f"cannot connect to {target.host_header} ({'; '.join(failures)})")

    async def _client(self, target: Target, address: IPAddress) -> httpx.AsyncClient:
        key = (target.scheme, target.host, str(address), target.port)
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,
                verify=self.verify,
                http1=not self.http2_only,
                http2=self.http2_only,
                limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
            )
            self._clients[key] = client
            while len(self._clients) > self.max_clients:
                _, old = self._clients.popitem(last=False)
                await old.aclose()
        else:
            self._clients.move_to_end(key)
        return client

    async def aclose(self) -> None:
        while self._clients:
            await self._clients.popitem()[1].aclose()
