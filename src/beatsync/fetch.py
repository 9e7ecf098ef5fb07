"""Fetching user-supplied URLs without becoming a proxy into our own network (SSRF).

Rules, in order:

- only ``http`` and ``https`` (``gs://`` URLs are handled by the service, inside its own bucket);
- the host must be a name or a canonical IP literal: decimal, octal, hex and short spellings
  (``2130706433``, ``017700000001``, ``0x7f000001``, ``127.1``) are refused outright;
- the name is resolved **once**; every address must be public (not loopback, link-local incl. the
  metadata server, private, unique-local, multicast, reserved, nor an IPv4-mapped/6to4/Teredo
  wrapper of one), unless the host (or ``host:port``) is in the allowlist;
- the connection goes to the checked address (the Host header and TLS SNI carry the name), so a
  second DNS answer cannot redirect it;
- redirects are followed by hand (at most 5), each hop checked the same way;
- size: a Content-Length over the limit is refused before reading, and reading stops at the limit;
  an overall deadline bounds slow senders.

Import-light: standard library only.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from .errors import BeatsyncError, InvalidRequest

MAX_REDIRECTS = 5
BLOCKED_NAMES = {"localhost", "metadata", "metadata.google.internal", "metadata.goog"}


class UrlNotAllowed(InvalidRequest):
    code = "url_not_allowed"


class FetchFailed(BeatsyncError):
    """The source could not be downloaded (HTTP error, timeout, connection refused...)."""

    code = "fetch_failed"
    http_status = 422


class TooLarge(BeatsyncError):
    code = "too_large"
    http_status = 413


@dataclass(frozen=True)
class Policy:
    allowed_hosts: tuple[str, ...] = ()
    max_bytes: int = 500 * 1024 * 1024
    timeout: float = 120.0
    user_agent: str = "beatsync/0.1 (+fetcher)"

    def allows(self, host: str, port: int) -> bool:
        host = host.lower()
        return host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP address the connection will use


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                return False  # wrappers of IPv4 are never needed by a real media host
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return False
    return ip.is_global and not ip.is_multicast


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP a host spells, or None for a name. Non-canonical IPv4 spellings are refused."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    try:
        socket.inet_aton(h)  # accepts 2130706433, 0x7f.1, 017700000001, 127.1 ...
    except OSError:
        if h.replace(".", "").isdigit() or h.lower().startswith("0x"):
            raise UrlNotAllowed(f"host {host!r} is not a valid address") from None
        return None
    raise UrlNotAllowed(f"host {host!r} is an IP address in a non-canonical spelling")


def check_url(url: str, policy: Policy) -> Target:
    """Validate ``url`` and resolve its host once; raise :class:`UrlNotAllowed`."""
    if not isinstance(url, str) or len(url) > 4096:
        raise UrlNotAllowed("URL missing or too long")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises on garbage too
    except ValueError:
        raise UrlNotAllowed("URL cannot be parsed") from None
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise UrlNotAllowed("URL contains spaces or control characters")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlNotAllowed(f"only http and https URLs are fetched, not {scheme or 'no scheme'!r}")
    if parts.username or parts.password:
        raise UrlNotAllowed("URLs with credentials are refused")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UrlNotAllowed("URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UrlNotAllowed("URL has an invalid port") from None
    allowed = policy.allows(host, port)
    if not allowed and (host in BLOCKED_NAMES or host.endswith(".localhost") or host.endswith(".internal")):
        raise UrlNotAllowed(f"host {host!r} is internal")
    literal = _literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise UrlNotAllowed(f"host {host!r} does not resolve") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not addresses:
            raise UrlNotAllowed(f"host {host!r} does not resolve")
    if not allowed:
        for a in addresses:
            if not _public(ipaddress.ip_address(a.split("%")[0])):
                raise UrlNotAllowed(f"host {host!r} resolves to a non-public address", details={"host": host})
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, path, addresses[0])


class _Connection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _TlsConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def request(method: str, url: str, policy: Policy, *, body: bytes | None = None,
            headers: dict[str, str] | None = None, follow: bool = True):
    """Open a checked request; return ``(response, connection, final_url)``. The caller closes both."""
    deadline = time.monotonic() + policy.timeout
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(url, policy)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed(f"timed out fetching {url}", code="fetch_timeout")
        conn_cls = _TlsConnection if target.scheme == "https" else _Connection
        conn = conn_cls(target, timeout=min(remaining, 30.0))
        hdrs = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity", **(headers or {})}
        try:
            conn.request(method, target.path, body=body, headers=hdrs)
            resp = conn.getresponse()
        except (socket.timeout, TimeoutError):
            conn.close()
            raise FetchFailed(f"timed out fetching {url}", code="fetch_timeout") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise FetchFailed(f"cannot fetch {url}: {exc}") from None
        if follow and resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
            url = urljoin(url, resp.getheader("Location"))
            conn.close()
            continue
        return resp, conn, url
    raise FetchFailed(f"too many redirects fetching {url}", code="too_many_redirects")


def download(url: str, dest: str | os.PathLike, policy: Policy) -> int:
    """Stream ``url`` into ``dest`` (atomically); return the byte count."""
    deadline = time.monotonic() + policy.timeout
    resp, conn, final = request("GET", url, policy)
    tmp = f"{dest}.part"
    try:
        if resp.status == 404 or resp.status == 410:
            raise FetchFailed(f"{url} answered {resp.status}", code="source_not_found",
                              details={"status": resp.status})
        if resp.status != 200:
            raise FetchFailed(f"{url} answered {resp.status}", details={"status": resp.status})
        length = resp.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > policy.max_bytes:
            raise TooLarge(f"{url} is {int(length)} bytes; the limit is {policy.max_bytes}",
                           details={"limit": policy.max_bytes})
        size = 0
        with open(tmp, "wb") as fh:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FetchFailed(f"timed out fetching {url}", code="fetch_timeout")
                try:
                    if conn.sock is not None:
                        conn.sock.settimeout(min(left, 30.0))
                    chunk = resp.read1(1 << 16)  # what has arrived, so the deadline is checked often
                except (socket.timeout, TimeoutError):
                    raise FetchFailed(f"timed out fetching {url}", code="fetch_timeout") from None
                except (OSError, http.client.HTTPException) as exc:
                    raise FetchFailed(f"download of {url} broke off: {exc}") from None
                if not chunk:
                    break
                size += len(chunk)
                if size > policy.max_bytes:
                    raise TooLarge(f"{url} is larger than the limit of {policy.max_bytes} bytes",
                                   details={"limit": policy.max_bytes})
                fh.write(chunk)
        if length is not None and length.isdigit() and size < int(length):
            raise FetchFailed(f"{url} ended after {size} of {length} bytes", code="fetch_incomplete")
        os.replace(tmp, dest)
        return size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        resp.close()
        conn.close()
