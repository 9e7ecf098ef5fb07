"""The production HTTP server of ``beatsync serve``: waitress, made strict and bounded.

Why waitress (over gunicorn, cheroot, granian): it is pure Python and runs in one process (the
local orchestrator's worker threads and the SQLite job store need one), and it reads requests in
one asynchronous I/O thread: a connection costs a socket and a small buffer, never a thread, so a
slow client holds no worker. The application runs on a fixed pool of threads. Bodies past a small
size are buffered to disk, never whole in memory. gunicorn forks (its one-process ``gthread``
worker gives each connection a thread while it reads the request), cheroot gives each connection a
worker thread while it reads the request (per-read timeouts only), granian is a Rust binary whose
framing cannot be checked from Python.

What this module adds to waitress (each is a setting, docs/security.md):

- **Deadlines**: a request's head must arrive within ``http_header_timeout`` of the connection (or,
  on a kept-alive connection, of its first byte), its body within ``http_body_timeout`` of the
  head; an idle kept-alive connection is closed after ``http_idle_timeout``. These are overall
  deadlines, checked every second: a client sending one byte every few seconds is cut off at the
  deadline (408), not kept alive by each byte.
- **Bounded connections and threads**: at most ``http_connection_limit`` connections and
  ``http_threads`` application threads. At the limit the oldest connections still waiting for
  their head (half a second or more) are closed to make room, so slow clients cannot lock good callers
  out, and the server is back to normal as soon as they leave.
- **Strict framing**: ``Content-Length`` twice, ``Transfer-Encoding`` with ``Content-Length`` (or on
  HTTP/1.0), a bare CR or LF in the head, folded header lines, more than ``MAX_HEADERS`` header
  lines, a chunk size that is not hex or longer than ``MAX_CHUNK_LINE`` with its extensions, or a
  chunk not ended by CRLF: 400 (431 for too many or too large headers), in the service's JSON error
  format, before the application sees anything.
- **Bodies bounded per route before they are read**: :func:`beatsync.http.app.body_policy` says
  how many bytes a request's body may have (1 MiB of JSON; an upload ``max_input_bytes``); a larger
  ``Content-Length`` or chunk size is refused with 413 at once, and a chunked body stops at the limit.
  An upload's caller and quota are checked (:func:`beatsync.http.app.admit`, on a worker thread)
  before its body is read: a refused caller costs no body bytes.
"""

from __future__ import annotations

import heapq
import io
import json
import logging
import re
import resource
import time
from typing import Any, Callable

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.receiver import ChunkedReceiver
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import BadRequest, Error, RequestEntityTooLarge, RequestHeaderFieldsTooLarge

log = logging.getLogger("beatsync.http.server")

#: the largest request head (request line and headers), bytes; larger: 431
MAX_HEADER_BYTES = 32 * 1024
#: the most header lines in one request; more: 431
MAX_HEADERS = 100
#: the longest chunk-size line (the size and its extensions), bytes; longer: 400
MAX_CHUNK_LINE = 1024
#: the most bytes of chunked trailer; more: 400
MAX_TRAILER = 8 * 1024
#: a body larger than this is spooled to a temporary file, not kept in memory (per connection)
INBUF_OVERFLOW = 64 * 1024
#: a response larger than this is spooled to a temporary file (per connection)
OUTBUF_OVERFLOW = 256 * 1024
#: connections the kernel queues before they are accepted (the server accepts up to 256 at a time)
BACKLOG = 512
#: a connection waiting this long for its head may be closed to make room at the connection limit
EVICT_AFTER = 0.5

_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_CODES = {400: "bad_request", 408: "request_timeout", 413: "body_too_large", 414: "uri_too_long",
          431: "headers_too_large", 500: "internal_error", 501: "not_implemented",
          505: "http_version_not_supported"}


class RequestTimeout(Error):
    code = 408
    reason = "Request Timeout"


class Refused(Error):
    """An answer chosen by the application's admission check (401, 403, 429, 503...)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        from http import HTTPStatus

        super().__init__("")
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Refused"
        self.code, self.reason = status, reason
        self.headers, self.payload = headers, body

    def to_response(self, ident=None):
        return f"{self.code} {self.reason}", [("Content-Type", "application/json"), *self.headers.items()], self.payload


def error_json(code: int, message: str) -> bytes:
    return json.dumps({"error": {"code": _CODES.get(code, "bad_request"), "message": message[:300], "details": None}},
                      separators=(",", ":")).encode()


class JsonErrorTask(ErrorTask):
    """waitress's own refusals (bad framing, too large, timeouts) in the service's JSON error format."""

    def execute(self):
        e = self.request.error
        if isinstance(e, Refused):
            status, headers, body = e.to_response()
        else:
            status = f"{e.code} {e.reason}"
            headers, body = [("Content-Type", "application/json")], error_json(e.code, f"{e.reason}: {e.body}")
        self.status = status
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class StrictChunkedReceiver(ChunkedReceiver):
    """waitress's chunked decoder with bounded size lines and trailers, and the body limit applied to
    each declared chunk size (``ffffffffff`` is refused when it is read, not after a terabyte)."""

    def __init__(self, buf, limit: int):
        super().__init__(buf)
        self.limit, self.declared = limit, 0

    def received(self, s):
        if self.completed:
            return 0
        if not self.all_chunks_received and self.chunk_remainder == 0 and not self.validate_chunk_end:
            line = self.control_line + s
            end = line.find(b"\r\n")
            if (end if end >= 0 else len(line)) > MAX_CHUNK_LINE:
                self.error, self.all_chunks_received = BadRequest("chunk size line too long"), True
                return len(s)
        n = super().received(s)
        if self.error is None and self.chunk_remainder > 0:
            # the chunk just begun counts whole: what is already buffered plus what it promises
            if len(self.buf) + self.chunk_remainder > self.limit:
                self.error = RequestEntityTooLarge(f"the body is limited to {self.limit} bytes")
                self.all_chunks_received = True
        if self.error is None and len(self.trailer) > MAX_TRAILER:
            self.error, self.all_chunks_received = BadRequest("chunked trailer too long"), True
        return n


class StrictParser(HTTPRequestParser):
    """waitress's request parser with strict framing and per-route body limits (see the module)."""

    policy: Callable[[str, str, str], tuple[int, bool]] = staticmethod(lambda m, p, c: (1 << 20, False))
    limit = 1 << 20
    gate = None  # None: no admission needed; "needed", "pending", "passed"
    stash = b""
    headers_done_at = 0.0
    too_many = False

    def received(self, data):
        if self.completed:
            return 0
        if self.body_rcv is None and not self.headers_finished:
            # what came before was checked: only the new bytes, with 3 bytes of context (O(n), not O(n^2))
            context = self.header_plus[-3:]
            window = context + data
            end = window.find(b"\r\n\r\n")
            region = window[:end] if end >= 0 else (window[:-1] if window.endswith(b"\r") else window)
            # from the first new byte (or a CR left unchecked at the end of the last piece)
            start = len(context) - 1 if context.endswith(b"\r") else len(context)
            if _BARE.search(region, max(0, start)):
                return self._fail(BadRequest("bare CR or LF in the request head"), len(data))
        n = super().received(data)
        if self.too_many:
            self.error, self.too_many = RequestHeaderFieldsTooLarge(f"more than {MAX_HEADERS} header lines"), False
        if self.headers_finished and not self.headers_done_at:
            self.headers_done_at = time.time()
            if not self.completed and self.error is None:
                if self.content_length > self.limit:
                    return self._fail(RequestEntityTooLarge(f"the body is limited to {self.limit} bytes"), n)
                if self.gate == "needed" and (self.chunked or self.content_length > 0):
                    return n  # the channel holds the body until the caller is admitted
            if self.gate == "needed":
                self.gate = None
        elif self.body_rcv is not None and self.error is None and not self.completed:
            if self.body_bytes_received > self.limit + self.limit // 2 + 65536:  # chunk framing included
                return self._fail(RequestEntityTooLarge(f"the body is limited to {self.limit} bytes"), n)
        return n

    def _fail(self, error: Error, consumed: int) -> int:
        if not getattr(self, "command", None):
            super().parse_header(b"GET / HTTP/1.0\r\n")
        self.error, self.completed, self.headers_finished = error, True, True
        self.headers_done_at = self.headers_done_at or time.time()
        return consumed

    def parse_header(self, header_plus):
        lines = header_plus.split(b"\r\n")[1:]
        if len(lines) > MAX_HEADERS:
            self.too_many = True
            raise ParsingError(f"more than {MAX_HEADERS} header lines")
        names = []
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                raise ParsingError("folded header lines are not accepted")
            names.append(line.split(b":", 1)[0].strip().lower())
        if names.count(b"content-length") > 1:
            raise ParsingError("Content-Length sent more than once")
        if b"transfer-encoding" in names and b"content-length" in names:
            raise ParsingError("Transfer-Encoding and Content-Length together")
        if names.count(b"transfer-encoding") > 1:
            raise ParsingError("Transfer-Encoding sent more than once")
        if b"transfer-encoding" in names and not header_plus.split(b"\r\n", 1)[0].endswith(b"HTTP/1.1"):
            raise ParsingError("Transfer-Encoding needs HTTP/1.1")
        super().parse_header(header_plus)
        self.limit, gate = self.policy(self.command, self.path, self.headers.get("CONTENT_TYPE", ""))
        self.gate = "needed" if gate else None
        if self.chunked:
            self.body_rcv = StrictChunkedReceiver(self.body_rcv.getbuf(), self.limit)


class StrictChannel(HTTPChannel):
    """One connection: the strict parser, JSON errors, deadlines and admission before the body."""

    parser_class = StrictParser
    error_task_class = JsonErrorTask
    served = False  # a request has been answered on this connection
    request_started = 0.0  # when the current request's first byte came (0: none yet)
    discard = False  # a refused request: what follows on this connection is not read

    def readable(self):
        r = self.request
        return super().readable() and not self.discard and not (r is not None and r.gate == "pending")

    def received(self, data):
        """waitress's loop over the requests in ``data``, holding an upload's body until its caller is
        admitted, and reading nothing after a refused request."""
        if not data or self.discard:
            return False
        with self.requests_lock:
            return self._received(data)

    def _received(self, data) -> bool:
        """:meth:`received` with ``requests_lock`` held."""
        if self.will_close or self.close_when_flushed:
            return False
        while data:
            if self.request is None:
                self.request = self.parser_class(self.adj)
                self.request.policy = self.server.policy
                self.request_started = time.time()
            r = self.request
            if r.gate == "pending":
                r.stash += data
                return True
            n = r.received(data)
            if r.gate == "needed" and r.headers_finished and not r.completed:
                r.gate, r.stash = "pending", data[n:]
                r.expect_continue, r.held_continue = False, r.expect_continue
                self.server.add_task(_Admission(self, r))
                return True
            if r.expect_continue and r.headers_finished and not self.requests and not self.sent_continue:
                self.send_continue()
            if r.completed:
                self._complete(r)
                if r.error is not None:
                    self.discard = True
                    return True
            if n >= len(data):
                break
            data = data[n:]
        return True

    def _complete(self, r):
        self.sent_continue = False
        if not r.empty:
            self.requests.append(r)
            if len(self.requests) == 1:
                self.server.add_task(self)
        self.request = None
        self.request_started = 0.0

    def admitted(self, r, refusal: Refused | None) -> None:
        """The admission check's outcome (a worker thread): read the body, or answer and close."""
        with self.requests_lock:
            if self.request is not r or r.gate != "pending":
                return
            if refusal is not None:
                r.error, r.completed, r.gate = refusal, True, "passed"
                self.discard = True
                self._complete(r)
                self.server.pull_trigger()
                return
            r.gate, stash, r.stash = "passed", r.stash, b""
            r.expect_continue = r.held_continue
            if r.expect_continue and not self.requests and not self.sent_continue:
                self.send_continue()
            if stash:  # under the lock: before anything the I/O thread reads next
                self._received(stash)
        self.server.pull_trigger()

    def service(self):
        super().service()
        self.served = True

    def timed_out(self, now: float, s) -> bool:
        """Whether this connection is past one of its deadlines (the head, the body)."""
        if self.requests or self.will_close or self.close_when_flushed:
            return False  # the application is answering: its own deadlines apply
        r = self.request
        if r is None:
            # waiting for a request: the first one's head is due header_timeout after the connection;
            # later ones are kept-alive connections, closed after idle_timeout by waitress
            return not self.served and now - self.creation_time > s.http_header_timeout
        if r.gate == "pending":
            return False
        if not r.headers_finished:
            started = self.request_started if self.served else self.creation_time
            return now - started > s.http_header_timeout
        return not r.completed and now - r.headers_done_at > s.http_body_timeout

    def waiting_since(self) -> float | None:
        """When this connection began waiting for a request head (None: it is past that)."""
        if self.requests or self.will_close or self.close_when_flushed:
            return None
        r = self.request
        if r is None:
            return self.last_activity if self.served else self.creation_time
        if r.headers_finished:
            return None
        return self.request_started if self.served else self.creation_time

    def end_with(self, status: int, message: str) -> None:
        """Answer ``status`` (best effort: the client may not be reading) and close."""
        body = error_json(status, message)
        head = (f"HTTP/1.1 {status} {'Request Timeout' if status == 408 else 'Service Unavailable'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        try:
            self.socket.send(head.encode() + body)
        except OSError:
            pass
        self.discard = True
        self.will_close = True


class _Admission:
    """A task for the worker pool: the application's admission check of one request."""

    def __init__(self, channel: StrictChannel, request: StrictParser):
        self.channel, self.request = channel, request

    def service(self):
        refusal = None
        try:
            answer = self.channel.server.admit(_environ(self.channel, self.request))
            if answer is not None:
                refusal = Refused(*answer)
        except Exception:  # noqa: BLE001 - a bug in the check: refuse, never read the body unchecked
            log.exception("admission check failed")
            refusal = Refused(500, {}, error_json(500, "internal error"))
        self.channel.admitted(self.request, refusal)

    def cancel(self):
        pass

    def defer(self):
        pass


def _environ(channel, r) -> dict[str, Any]:
    """A WSGI environ of a request whose head is read and whose body is not (an empty input)."""
    env = {"REQUEST_METHOD": r.command, "PATH_INFO": r.path, "SCRIPT_NAME": "", "QUERY_STRING": r.query,
           "SERVER_NAME": channel.server.server_name, "SERVER_PORT": str(channel.server.effective_port),
           "SERVER_PROTOCOL": f"HTTP/{r.version}", "REMOTE_ADDR": str(channel.addr[0]) if channel.addr else "",
           "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
           "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0)}
    for key, value in r.headers.items():
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
        else:
            env["HTTP_" + key] = value
    return env


class StrictServer(TcpWSGIServer):
    """waitress's TCP server with the strict channel, overall deadlines and room made at the
    connection limit by closing the connections that have waited longest for their head."""

    channel_class = StrictChannel

    def __init__(self, app, settings, policy, admit, **kw):
        self.settings, self.policy, self.admit = settings, policy, admit
        super().__init__(app, **kw)

    def maintenance(self, now):
        super().maintenance(now)  # idle kept-alive connections (channel_timeout)
        for channel in list(self.active_channels.values()):
            if isinstance(channel, StrictChannel) and channel.timed_out(now, self.settings):
                channel.end_with(408, "the request did not arrive in time")

    def readable(self):
        if self.accepting and len(self._map) >= self.adj.connection_limit:
            self._make_room(time.time())
        return super().readable()

    def _make_room(self, now: float) -> None:
        waiting = []
        for channel in self.active_channels.values():
            since = channel.waiting_since() if isinstance(channel, StrictChannel) else None
            if since is not None and now - since >= EVICT_AFTER:
                waiting.append((since, channel))
        # close the oldest waiting connections: an eighth of the limit at a time
        for _, channel in heapq.nsmallest(max(16, self.adj.connection_limit // 8), waiting, key=lambda x: x[0]):
            channel.end_with(503, "the server is at its connection limit; this connection waited longest")

    def handle_accept(self):
        # accept what is queued (up to 256) in one go: under a flood the queue drains fast
        for _ in range(256):
            if len(self._map) >= self.adj.connection_limit:
                return
            try:
                pair = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.warning("accept failed", exc_info=True)
                return
            conn, addr = pair
            try:
                self.set_socket_options(conn)
            except OSError:
                conn.close()
                continue
            self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)


def raise_file_limit(need: int) -> int:
    """Raise this process's soft open-files limit towards ``need`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def make_server(app, settings, host: str, port: int, policy: Callable[[str, str, str], tuple[int, bool]],
                admit: Callable[[dict], tuple[int, dict[str, str], bytes] | None]) -> StrictServer:
    """The server for ``app`` on ``host:port`` with the bounds of ``settings`` (``http_*``).
    ``policy(method, path, content_type) -> (body limit, admit first)``; ``admit(environ)`` returns
    None (read the body) or ``(status, headers, body)`` (answer that, read nothing)."""
    limit = settings.http_connection_limit
    files = raise_file_limit(limit + 256)
    if files < limit + 64:
        log.warning("open-files limit %d is below BEATSYNC_HTTP_CONNECTION_LIMIT=%d: connections past it fail",
                    files, limit)
    largest = max(settings.max_input_bytes + (1 << 20), 1 << 20)
    return StrictServer(
        app, settings, policy, admit, host=host, port=port, threads=settings.http_threads,
        connection_limit=limit, channel_timeout=max(1, int(settings.http_idle_timeout)), cleanup_interval=1,
        max_request_header_size=MAX_HEADER_BYTES, max_request_body_size=largest + 1,
        inbuf_overflow=INBUF_OVERFLOW, outbuf_overflow=OUTBUF_OVERFLOW, backlog=BACKLOG, asyncore_use_poll=True,
        expose_tracebacks=False, ident="beatsync")
