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
- the request carries only ASCII: an internationalised host name is IDNA-encoded (``xn--...``), the
  path and query are percent-encoded (existing ``%XX`` escapes are kept); a URL that cannot be
  encoded is refused (``url_not_allowed``) - at submit, since the service checks every URL then;
- redirects are followed by hand (at most 5), each hop checked the same way;
- size: a Content-Length over the limit is refused before reading, and reading stops at the limit;
- time: one overall deadline covers connect, TLS, status line, headers and body: a watchdog thread
  shuts the socket down when it passes (or when the caller's ``should_stop`` says so, e.g. a cancelled
  job), so a sender that dribbles one header byte every few seconds cannot hold a worker.

Import-light: standard library only.
"""

from __future__ import annotations

import errno
import http.client
import ipaddress
import os
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from .errors import BeatsyncError, FetchCancelled, FetchFailed, InvalidRequest, TooLarge, UrlNotAllowed  # noqa: F401

MAX_REDIRECTS = 5
BLOCKED_NAMES = {"localhost", "metadata", "metadata.google.internal", "metadata.goog"}


WATCH_INTERVAL = 0.2  # seconds between the watchdog's looks at deadlines and stop flags


class _Watch:
    def __init__(self, deadline: float, should_stop):
        self.deadline, self.should_stop = deadline, should_stop
        self.sock: socket.socket | None = None
        self.why: str | None = None  # "timeout" or "cancelled" once the watchdog fired

    def fire(self, why: str) -> None:
        if self.why is None:
            self.why = why
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv/send on it
            except OSError:
                pass

    def check(self) -> None:
        """Raise if the deadline passed or the caller wants to stop (used between blocking calls)."""
        if self.why is None:
            if time.monotonic() >= self.deadline:
                self.why = "timeout"
            elif self.should_stop is not None and self.should_stop():
                self.why = "cancelled"
        if self.why is not None:
            self.raise_()

    def raise_(self, url: str = "the source"):
        if self.why == "cancelled":
            raise FetchCancelled(f"stopped fetching {url}: the job was cancelled")
        raise FetchFailed(f"timed out fetching {url}", code="fetch_timeout")


class _Watchdog:
    """One thread for every open fetch: it shuts a socket down at its overall deadline or when its
    ``should_stop`` returns true, whatever the socket is waiting for."""

    def __init__(self):
        self._lock = threading.Lock()
        self._watches: set[_Watch] = set()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="beatsync-fetch-watchdog", daemon=True)
                self._thread.start()

    def remove(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _loop(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL)
            with self._lock:
                watches = list(self._watches)
            t = time.monotonic()
            for w in watches:
                if w.why is not None:
                    continue
                try:
                    if t >= w.deadline:
                        w.fire("timeout")
                    elif w.should_stop is not None and w.should_stop():
                        w.fire("cancelled")
                except Exception:  # noqa: BLE001 - a failing flag read must not stop the watchdog
                    pass


_WATCHDOG = _Watchdog()


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


#: characters left as they are in a path or query (RFC 3986 reserved and unreserved, and ``%``)
_SAFE = "/?:@!$&'()*+,;=-._~%[]"


def ascii_host(host: str) -> str:
    """``host`` as the DNS and the Host header want it: IDNA for a non-ASCII name."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlNotAllowed("the URL's host name is not a valid internationalised name") from None


def ascii_path(path: str) -> str:
    """Percent-encode what may not go on the request line (non-ASCII as UTF-8); keep ``%XX``."""
    try:
        return quote(path, safe=_SAFE, encoding="utf-8", errors="strict")
    except UnicodeError:
        raise UrlNotAllowed("the URL's path cannot be encoded") from None


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
    host = ascii_host((parts.hostname or "").lower().rstrip("."))
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
    path = ascii_path(parts.path or "/")
    if parts.query:
        path += "?" + ascii_path(parts.query)
    return Target(scheme, host, port, path, addresses[0])


def _connect(address: str, port: int, watch: _Watch) -> socket.socket:
    """A TCP connection to ``address``, given up at the watch's deadline or stop flag (checked every
    :data:`WATCH_INTERVAL` while the handshake is pending)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        err = sock.connect_ex((address, port))
        while err in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK, errno.EINTR):
            watch.check()
            _, writable, _ = select.select([], [sock], [], WATCH_INTERVAL)
            if writable:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        sock.settimeout(max(0.01, watch.deadline - time.monotonic()))
        watch.sock = sock
        return sock
    except BaseException:
        sock.close()
        raise


class _Connection(http.client.HTTPConnection):
    def __init__(self, target: Target, watch: _Watch):
        super().__init__(target.host, target.port, timeout=max(0.01, watch.deadline - time.monotonic()))
        self._address, self._watch = target.address, watch

    def connect(self):
        self.sock = _connect(self._address, self.port, self._watch)


class _TlsConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, watch: _Watch):
        super().__init__(target.host, target.port, timeout=max(0.01, watch.deadline - time.monotonic()),
                         context=ssl.create_default_context())
        self._address, self._watch = target.address, watch

    def connect(self):
        sock = _connect(self._address, self.port, self._watch)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        self._watch.sock = self.sock


class Response:
    """An open answer: ``status``, ``getheader``, ``read1``/``read`` (bounded by the fetch's
    deadline and stop flag); ``close()`` ends the connection."""

    def __init__(self, resp: http.client.HTTPResponse, conn, watch: _Watch, url: str):
        self._resp, self._conn, self._watch, self.url = resp, conn, watch, url
        self.status = resp.status

    def getheader(self, name: str, default=None):
        return self._resp.getheader(name, default)

    def _io(self, fn, *args):
        self._watch.check()
        try:
            data = fn(*args)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if self._watch.why is not None:
                self._watch.raise_(self.url)
            if isinstance(exc, (socket.timeout, TimeoutError)):
                raise FetchFailed(f"timed out fetching {self.url}", code="fetch_timeout") from None
            raise FetchFailed(f"download of {self.url} broke off: {exc}") from None
        if self._watch.why is not None:  # the watchdog shut the socket: what came is not the whole answer
            self._watch.raise_(self.url)
        return data

    def read1(self, n: int) -> bytes:
        return self._io(self._resp.read1, n)

    def read(self, n: int) -> bytes:
        return self._io(self._resp.read, n)

    def close(self) -> None:
        _WATCHDOG.remove(self._watch)
        self._resp.close()
        self._conn.close()


def request(method: str, url: str, policy: Policy, *, body: bytes | None = None,
            headers: dict[str, str] | None = None, follow: bool = True, timeout: float | None = None,
            should_stop=None) -> Response:
    """Open a checked request; return an open :class:`Response` (the caller closes it). One
    deadline (``timeout``, default the policy's) covers every hop's connect, request, status line
    and headers, and the body reads after; ``should_stop()`` true abandons it (FetchCancelled)."""
    watch = _Watch(time.monotonic() + (policy.timeout if timeout is None else timeout), should_stop)
    _WATCHDOG.add(watch)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            target = check_url(url, policy)
            watch.check()
            conn_cls = _TlsConnection if target.scheme == "https" else _Connection
            conn = conn_cls(target, watch)
            hdrs = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity", **(headers or {})}
            try:
                conn.request(method, target.path, body=body, headers=hdrs)
                resp = conn.getresponse()
            except BeatsyncError:
                conn.close()
                raise
            except (OSError, http.client.HTTPException, ValueError) as exc:
                conn.close()
                if watch.why is not None:
                    watch.raise_(url)
                if isinstance(exc, (socket.timeout, TimeoutError)):
                    raise FetchFailed(f"timed out fetching {url}", code="fetch_timeout") from None
                raise FetchFailed(f"cannot fetch {url}: {exc}") from None
            if follow and resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                url = urljoin(url, resp.getheader("Location"))
                conn.close()
                watch.sock = None
                continue
            return Response(resp, conn, watch, url)
        raise FetchFailed(f"too many redirects fetching {url}", code="too_many_redirects")
    except BaseException:
        _WATCHDOG.remove(watch)
        raise


def download(url: str, dest: str | os.PathLike, policy: Policy, *, should_stop=None) -> int:
    """Stream ``url`` into ``dest`` (atomically); return the byte count. The policy's timeout bounds
    the whole download; ``should_stop()`` true (checked every fraction of a second) abandons it."""
    resp = request("GET", url, policy, should_stop=should_stop)
    tmp = f"{dest}.part"
    try:
        if resp.status == 404 or resp.status == 410:
            raise FetchFailed(f"{url} answered {resp.status}", code="source_not_found",
                              details={"status": resp.status})
        if resp.status != 200:
            raise FetchFailed(f"{url} answered {resp.status}", details={"status": resp.status})
        length = resp.getheader("Content-Length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > policy.max_bytes:
            raise TooLarge(f"{url} is {int(length)} bytes; the limit is {policy.max_bytes}",
                           details={"limit": policy.max_bytes})
        size = 0
        with open(tmp, "wb") as fh:
            while True:
                chunk = resp.read1(1 << 16)  # what has arrived
                if not chunk:
                    break
                size += len(chunk)
                if size > policy.max_bytes:
                    raise TooLarge(f"{url} is larger than the limit of {policy.max_bytes} bytes",
                                   details={"limit": policy.max_bytes})
                fh.write(chunk)
        if length is not None and length.isascii() and length.isdigit() and size < int(length):
            raise FetchFailed(f"{url} ended after {size} of {length} bytes", code="fetch_incomplete")
        os.replace(tmp, dest)
        return size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        resp.close()
