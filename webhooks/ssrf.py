"""Where a webhook may go, and the one HTTP sender that goes there.

Rules (WEBHOOK_ALLOWED_HOSTS names the exceptions):

- ``https`` only; ``http`` only for an allowlisted host.
- The host is resolved once; every address it resolves to must be public (not private,
  loopback, link-local, multicast, reserved, unspecified, shared/CGNAT, or a cloud
  metadata address), unless the host or the address is allowlisted.
- The connection goes to the address that was checked, never to a fresh resolution of
  the name (a DNS answer that changes between check and connect would otherwise
  reach an internal address). TLS still verifies the certificate against the host name.
- No redirect is followed (a 3xx is a failed attempt), and at most RESPONSE_CAP bytes
  of the answer are read.

Allowlist entries are host names (compared to the URL's host, case-insensitively) or
IP networks in CIDR form / single addresses (compared to each resolved address).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

# Cloud metadata services, besides the link-local range that holds most of them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
# Not flagged private by every Python version: shared address space (RFC 6598).
EXTRA_FORBIDDEN = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
)
RESPONSE_CAP = 4096
TIMEOUT = 10.0  # connect, and each read
# The whole attempt (connect, send, read), however the answer trickles in: a batch of
# attempts (webhooks/services.py) must end well within its lease.
ATTEMPT_DEADLINE = 2 * TIMEOUT
USER_AGENT = "wecom-provider-webhooks/1"


class UnsafeDestination(ValueError):
    """The URL may not be called; the message says why (shown to the client)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent
    address: str  # the checked IP the connection goes to


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries) -> Allowlist:
        hosts, networks = set(), []
        for entry in entries or ():
            entry = str(entry).strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        if host.lower().rstrip(".") in self.hosts:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return self.address_allowed(address)

    def address_allowed(self, address) -> bool:
        return any(address in network for network in self.networks)


def forbidden_class(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Return why ``address`` may not be called (a class name), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden_class(address.ipv4_mapped)
    if address in METADATA_ADDRESSES:
        return "metadata"
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        (
            "shared",
            any(address in net for net in EXTRA_FORBIDDEN if net.version == address.version),
        ),
    )
    for name, hit in checks:
        if hit:
            return name
    if not address.is_global:
        return "reserved"
    return None


def check_url(url: str, allowlist: Allowlist, *, resolve: bool = True) -> Target:
    """Return where ``url`` may be sent (its checked address), or raise UnsafeDestination.

    ``resolve=False`` checks only what the URL itself says (scheme, host syntax, IP
    literals); subscription creation resolves too, so a bad host is refused at once.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination("the URL is malformed") from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in {"https", "http"} or not host:
        raise UnsafeDestination("the URL must be https://host/…")
    if parts.username or parts.password:
        raise UnsafeDestination("the URL must not carry credentials")
    host_allowed = allowlist.host_allowed(host)
    if scheme == "http" and not host_allowed:
        raise UnsafeDestination("only https is allowed for this host")
    port = port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    literal = _ip_or_none(host)
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return Target(scheme, host, port, path, "")
    else:
        addresses = _resolve(host, port)
    for address in addresses:
        why = forbidden_class(address)
        if why and not (host_allowed or allowlist.address_allowed(address)):
            raise UnsafeDestination(f"the host resolves to a {why} address, which is not allowed")
    return Target(scheme, host, port, path, str(addresses[0]))


def _ip_or_none(host: str):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _resolve(host: str, port: int) -> list:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeDestination("the host name does not resolve") from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeDestination("the host name does not resolve")
    return addresses


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused, timeout, TLS failure…)
    body: bytes
    error: str  # a short type/cause, never the URL (it may carry a product's token)
    seconds: float


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header keeps the name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # SNI and certificate checks against the name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float = TIMEOUT,
    deadline: float = ATTEMPT_DEADLINE,
    cap: int = RESPONSE_CAP,
) -> Answer:
    """POST ``body`` to the checked ``target``; never follows a redirect.

    ``timeout`` bounds the connect and each read; ``deadline`` the whole attempt: a
    timer shuts the socket down when it passes (a receiver sending its answer a byte at
    a time would otherwise hold the attempt for as long as it likes).
    """
    started = time.monotonic()
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target, timeout, ssl.create_default_context())
    else:
        connection = _PinnedHTTPConnection(target, timeout)
    expired = threading.Event()
    timer = threading.Timer(deadline, _expire, args=(connection, expired))
    timer.daemon = True
    timer.start()
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Connection": "close",
                **headers,
            },
        )
        response = connection.getresponse()
        data = response.read(cap)
        if expired.is_set():  # the shutdown cut the answer short
            return Answer(None, b"", "timeout", time.monotonic() - started)
        return Answer(response.status, data, "", time.monotonic() - started)
    except TimeoutError:
        return Answer(None, b"", "timeout", time.monotonic() - started)
    except ssl.SSLError as exc:
        if expired.is_set():
            return Answer(None, b"", "timeout", time.monotonic() - started)
        return Answer(None, b"", f"tls: {type(exc).__name__}", time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        error = "timeout" if expired.is_set() else type(exc).__name__
        return Answer(None, b"", error, time.monotonic() - started)
    finally:
        timer.cancel()
        connection.close()


def _expire(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    """The deadline passed: make the attempt's blocked read or write return at once."""
    expired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # closed meanwhile: the attempt is over anyway
            sock.shutdown(socket.SHUT_RDWR)
