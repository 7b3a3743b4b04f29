"""A small blocking WebSocket client for tests (RFC 6455, client side, no compression).

It exists so that testing a project's WebSocket views needs nothing beyond
this package: the handshake is checked with the protocol core's
:func:`~django_websocket.protocol.accept_key`, client frames are masked with
:func:`~django_websocket.protocol.mask.apply_mask`, and opcodes and close
codes come from :mod:`django_websocket.protocol.frames`.  It is strict (a
server frame that breaks the RFC raises :class:`WebSocketProtocolError`) and
its errors say what was awaited and from which path.

It is not a general-purpose client: no TLS, no permessage-deflate, one
connection per object, used from one thread.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import json
import os
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable, Mapping
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ..exceptions import ConnectionClosed, WebSocketError
from ..protocol.frames import (
    FIN,
    LENGTH_MASK,
    MASK_BIT,
    MAX_CONTROL_PAYLOAD,
    OPCODE_MASK,
    CloseCode,
    Opcode,
    encode_close_payload,
    is_valid_close_code,
)
from ..protocol.handshake import accept_key
from ..protocol.mask import apply_mask

__all__ = [
    "DEFAULT_TIMEOUT",
    "HandshakeRefused",
    "WebSocketClient",
    "WebSocketProtocolError",
]

#: Seconds a client waits by default for the handshake, a message or the close.
DEFAULT_TIMEOUT = 5.0

_RSV_BITS = 0x70
_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024
_BODY_IN_MESSAGE = 300
_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack
_HIDDEN = re.compile(r"<(head|style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
Cookies = Mapping[str, str] | SimpleCookie


class HandshakeRefused(WebSocketError):
    """The server answered the opening handshake with an HTTP status other than 101.

    ``str()`` gives the status and why, e.g. ``403 Forbidden: origin
    'http://evil' is not allowed (handshake for /chat/)``.
    """

    def __init__(
        self, path: str, status: int, phrase: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        self.path = path
        """The path of the refused request."""
        self.status = status
        """The HTTP status code, e.g. ``403``."""
        self.phrase = phrase
        """The status line's reason phrase, e.g. ``"Forbidden"``."""
        self.headers = dict(headers)
        """The response headers, names in lower case."""
        self.body = body
        """The response body (at most 64 KiB of it)."""
        super().__init__(self._describe())

    @property
    def text(self) -> str:
        """The body as text (for HTML: without its head, scripts, styles and tags)."""
        text = self.body.decode("utf-8", "replace")
        if "html" in self.headers.get("content-type", ""):
            text = _TAG.sub(" ", _HIDDEN.sub(" ", text))
        return _SPACE.sub(" ", text).strip()

    def _describe(self) -> str:
        status_line = f"{self.status} {self.phrase}".strip()
        text = self.text
        if len(text) > _BODY_IN_MESSAGE:
            text = text[:_BODY_IN_MESSAGE] + "..."
        if text.startswith(status_line):  # this package's refusals: "403 Forbidden: why"
            detail = text
        elif text:
            detail = f"{status_line}: {text}"
        else:
            detail = status_line
        location = self.headers.get("location")
        if location:
            detail += f" (redirects to {location})"
        return f"{detail} (handshake for {self.path})"


class WebSocketProtocolError(WebSocketError):
    """The server broke RFC 6455 (in the handshake response or in a frame).

    The client fails the connection (close code 1002) before raising it.
    """


class _Incomplete(Exception):
    """Not enough bytes buffered for a whole frame yet."""


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value == round(value, 1) else f"{value:g}"


def _describe_close(code: int | None, reason: str) -> str:
    if code is None:
        return "the connection is open"
    if code == CloseCode.ABNORMAL_CLOSURE:
        return "the connection was lost without a close frame (1006)"
    if code == CloseCode.NO_STATUS_RCVD:
        return "the server closed the connection without a status code (1005)"
    return f"the connection was closed with {code}" + (f" {reason!r}" if reason else "")


def _cookie_header(cookies: Cookies) -> str:
    if isinstance(cookies, SimpleCookie):
        pairs = [(morsel.key, morsel.coded_value) for morsel in cookies.values()]
    else:
        pairs = list(cookies.items())
    return "; ".join(f"{name}={value}" for name, value in pairs)


class WebSocketClient:
    """A blocking WebSocket connection to ``url`` (``ws://host:port/path?query``).

    The opening handshake happens in the constructor; a refusal raises
    :class:`HandshakeRefused`.  ``subprotocols`` are offered in order;
    ``headers`` are added to the request; ``origin`` sets the ``Origin``
    header (none by default, like a non-browser client); ``cookies`` (a
    mapping or a :class:`~http.cookies.SimpleCookie`, such as the Django test
    client's ``cookies``) become the ``Cookie`` header.  ``timeout`` is the
    default, in seconds, for the handshake and for every later wait.

    Messages are ``str`` (text frames) or ``bytes`` (binary frames).  Pings
    are answered and the closing handshake is completed as frames are read.
    Use it as a context manager to close it (with 1000) at the end.
    """

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: Headers | None = None,
        origin: str | None = None,
        cookies: Cookies | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"expected a ws:// URL, not {url!r}")
        self.url = url
        """The URL the client connected to."""
        self.path = parts.path or "/"
        """The path (and query) of the URL, used in error messages."""
        if parts.query:
            self.path += f"?{parts.query}"
        self.timeout = timeout
        """Default seconds to wait in :meth:`receive`, :meth:`close` and the like."""
        self.subprotocol: str | None = None
        """The subprotocol the server agreed to, or ``None``."""
        self.response_headers: dict[str, str] = {}
        """The headers of the server's ``101`` response, names in lower case."""
        self.close_code: int | None = None
        """How the connection ended: the code of the server's close frame (the echo of
        ours after :meth:`close`), 1005 when it carried none, 1006 when the connection
        was lost without one, 1002 when this client failed it; ``None`` while open."""
        self.close_reason = ""
        """The reason that came with :attr:`close_code` (``""`` when none)."""
        self._messages: deque[str | bytes] = deque()
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode: int | None = None
        self._close_sent = False
        self._close_received = False
        self._sock: socket.socket | None = None
        self._handshake(
            parts.hostname,
            parts.port or 80,
            list(subprotocols),
            headers,
            origin,
            cookies,
        )

    def __repr__(self) -> str:
        state = "open" if self.close_code is None else f"closed {self.close_code}"
        return f"<WebSocketClient {self.url} {state}>"

    # ------------------------------------------------------------------
    # Handshake

    def _handshake(
        self,
        host: str,
        port: int,
        subprotocols: list[str],
        headers: Headers | None,
        origin: str | None,
        cookies: Cookies | None,
    ) -> None:
        deadline = time.monotonic() + self.timeout
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {host_header}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
        if origin is not None:
            lines.append(f"Origin: {origin}")
        if cookies:
            lines.append(f"Cookie: {_cookie_header(cookies)}")
        if headers:
            items = headers.items() if isinstance(headers, Mapping) else headers
            lines.extend(f"{name}: {value}" for name, value in items)
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self._sock = socket.create_connection((host, port), timeout=self.timeout)
            self._sock.sendall(request)
        except OSError as exc:
            self._abort()
            raise ConnectionError(f"cannot connect to {self.url}: {exc}") from exc

        try:
            while b"\r\n\r\n" not in self._buffer:
                if len(self._buffer) > _MAX_HEAD:
                    raise WebSocketProtocolError(f"handshake response for {self.path} is too long")
                if not self._recv(deadline):
                    raise WebSocketProtocolError(
                        f"{self.path}: connection closed during the handshake "
                        f"(received {bytes(self._buffer)!r})"
                    )
        except TimeoutError:
            self._abort()
            raise TimeoutError(
                f"no handshake response from {self.path} within {_seconds(self.timeout)} s"
            ) from None
        except BaseException:
            self._abort()
            raise

        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        response_headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            response_headers[name] = (
                f"{response_headers[name]}, {value}" if name in response_headers else value
            )
        version, _, status_rest = status_line.partition(" ")
        code, _, phrase = status_rest.partition(" ")
        if not version.startswith("HTTP/") or not code.isdigit():
            self._abort()
            raise WebSocketProtocolError(f"{self.path}: not an HTTP response: {status_line!r}")
        if int(code) != 101:
            body = self._read_body(response_headers, deadline)
            self._abort()
            raise HandshakeRefused(self.path, int(code), phrase, response_headers, body)

        self.response_headers = response_headers

        def tokens(name: str) -> list[str]:
            return [item.strip().lower() for item in response_headers.get(name, "").split(",")]

        problem = None
        if "websocket" not in tokens("upgrade"):
            problem = "no Upgrade: websocket header"
        elif "upgrade" not in tokens("connection"):
            problem = "no Connection: Upgrade header"
        elif response_headers.get("sec-websocket-accept") != accept_key(key):
            problem = "wrong Sec-WebSocket-Accept"
        elif "sec-websocket-extensions" in response_headers:
            problem = "an extension this client did not offer"
        else:
            agreed = response_headers.get("sec-websocket-protocol")
            if agreed is not None and agreed not in subprotocols:
                problem = f"subprotocol {agreed!r}, which this client did not offer"
            self.subprotocol = agreed
        if problem is not None:
            self._abort()
            raise WebSocketProtocolError(f"{self.path}: the 101 response has {problem}")

    def _read_body(self, headers: Mapping[str, str], deadline: float) -> bytes:
        """Read a refusal's body: by Content-Length, chunked, or up to the end (at most 64 KiB)."""
        with contextlib.suppress(OSError, TimeoutError):
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = bytearray()
                while len(body) < _MAX_BODY:
                    while b"\r\n" not in self._buffer:
                        if not self._recv(deadline):
                            return bytes(body)
                    size_line, _, rest = bytes(self._buffer).partition(b"\r\n")
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    while len(rest) < size + 2:
                        self._buffer = bytearray(rest)
                        if not self._recv(deadline):
                            return bytes(body + rest)
                        rest = bytes(self._buffer)
                    body += rest[:size]
                    self._buffer = bytearray(rest[size + 2 :])
                return bytes(body)
            length = headers.get("content-length")
            limit = min(int(length), _MAX_BODY) if length and length.isdigit() else _MAX_BODY
            while len(self._buffer) < limit and self._recv(deadline):
                pass
        return bytes(self._buffer[:_MAX_BODY])

    # ------------------------------------------------------------------
    # Reading

    @property
    def closed(self) -> bool:
        """Whether the connection has ended (:attr:`close_code` then says how)."""
        return self.close_code is not None

    def _deadline(self, timeout: float | None) -> tuple[float, float]:
        timeout = self.timeout if timeout is None else timeout
        return timeout, time.monotonic() + timeout

    def _recv(self, deadline: float) -> bool:
        """Read once into the buffer; ``False`` at the end of the stream.

        Raises ``TimeoutError`` at the deadline.
        """
        sock = self._sock
        if sock is None:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:  # socket.timeout too
            raise TimeoutError from None
        except OSError:
            data = b""
        self._buffer += data
        return bool(data)

    def _parse_frame(self) -> tuple[bool, int, bytes]:
        """Take one whole frame from the buffer; :class:`_Incomplete` when it is not all there."""
        buffer = self._buffer
        if len(buffer) < 2:
            raise _Incomplete
        first, second = buffer[0], buffer[1]
        if first & _RSV_BITS:
            self._fail(f"a frame with reserved bits set ({first:#04x})")
        if second & MASK_BIT:
            self._fail("a masked frame (servers must not mask)")
        length = second & LENGTH_MASK
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                raise _Incomplete
            length = int.from_bytes(buffer[2:4], "big")
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                raise _Incomplete
            length = int.from_bytes(buffer[2:10], "big")
            offset = 10
        if len(buffer) < offset + length:
            raise _Incomplete
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        return bool(first & FIN), first & OPCODE_MASK, payload

    def _read_frame(self, deadline: float) -> bool:
        """Read and handle one frame; ``False`` when the connection ended instead."""
        while True:
            try:
                fin, opcode, payload = self._parse_frame()
            except _Incomplete:
                if not self._recv(deadline):
                    self._lost()
                    return False
                continue
            self._handle_frame(fin, opcode, payload)
            return True

    def _handle_frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode >= Opcode.CLOSE:  # control frames
            if not fin or len(payload) > MAX_CONTROL_PAYLOAD:
                self._fail("a fragmented or oversized control frame")
            if opcode == Opcode.PING:
                if not self._close_sent:
                    self._send_frame(Opcode.PONG, payload)
            elif opcode == Opcode.CLOSE:
                self._on_close_frame(payload)
            elif opcode != Opcode.PONG:
                self._fail(f"reserved opcode {opcode:#x}")
            return
        if opcode == Opcode.CONTINUATION:
            if self._fragment_opcode is None:
                self._fail("a continuation frame with no message to continue")
            self._fragments.append(payload)
            if not fin:
                return
            opcode, payload = self._fragment_opcode, b"".join(self._fragments)
            self._fragment_opcode, self._fragments = None, []
        elif opcode in (Opcode.TEXT, Opcode.BINARY):
            if self._fragment_opcode is not None:
                self._fail("a new message before the fragmented one was finished")
            if not fin:
                self._fragment_opcode, self._fragments = opcode, [payload]
                return
        else:
            self._fail(f"reserved opcode {opcode:#x}")
        if self._close_sent:
            return  # data after our close frame is dropped
        if opcode == Opcode.TEXT:
            try:
                self._messages.append(codecs.decode(payload, "utf-8"))
            except UnicodeDecodeError:
                self._fail("a text message that is not valid UTF-8")
        else:
            self._messages.append(payload)

    def _on_close_frame(self, payload: bytes) -> None:
        if len(payload) == 1:
            self._fail("a close frame with a 1-byte payload")
        code: int = CloseCode.NO_STATUS_RCVD
        reason = ""
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                self._fail(f"a close frame with the invalid code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail("a close reason that is not valid UTF-8")
        self._close_received = True
        if not self._close_sent:
            # Echo the code (RFC 6455 section 5.5.1); 1005 means "none" and is not echoed.
            echo = None if code == CloseCode.NO_STATUS_RCVD else code
            self._close_sent = True
            with contextlib.suppress(OSError):
                self._send_frame(Opcode.CLOSE, encode_close_payload(echo))
        self.close_code, self.close_reason = code, reason
        self._finish()

    def _finish(self, wait: float = 1.0) -> None:
        """End the TCP connection, giving the server (which closes first) ``wait`` seconds."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.settimeout(wait)
            while sock.recv(1 << 16):
                pass
        with contextlib.suppress(OSError):
            sock.close()

    def _abort(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _lost(self) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = CloseCode.ABNORMAL_CLOSURE, ""
        self._abort()

    def _fail(self, what: str) -> NoReturn:
        """Fail the connection with 1002 and raise :class:`WebSocketProtocolError`."""
        if not self._close_sent:
            self._close_sent = True
            with contextlib.suppress(OSError):
                self._send_frame(
                    Opcode.CLOSE, encode_close_payload(CloseCode.PROTOCOL_ERROR, "protocol error")
                )
        self.close_code, self.close_reason = CloseCode.PROTOCOL_ERROR, what
        self._abort()
        raise WebSocketProtocolError(f"{self.path} sent {what}")

    def receive(self, timeout: float | None = None) -> str | bytes:
        """Return the next message: ``str`` for a text frame, ``bytes`` for a binary one.

        Waits up to ``timeout`` seconds (default :attr:`timeout`), then raises
        :class:`TimeoutError` ("no message from /chat/ within 1.0 s").  Once
        the connection has ended and every message received before its end
        has been returned, raises
        :class:`~django_websocket.exceptions.ConnectionClosed` saying with
        which close code and reason.
        """
        timeout, deadline = self._deadline(timeout)
        while not self._messages:
            if self.closed:
                raise ConnectionClosed(
                    f"no message from {self.path}: "
                    f"{_describe_close(self.close_code, self.close_reason)}",
                    self.close_code,
                    self.close_reason,
                )
            try:
                self._read_frame(deadline)
            except TimeoutError:
                raise TimeoutError(
                    f"no message from {self.path} within {_seconds(timeout)} s"
                ) from None
        return self._messages.popleft()

    def receive_text(self, timeout: float | None = None) -> str:
        """Like :meth:`receive`, but fail unless the message is text."""
        message = self.receive(timeout)
        if not isinstance(message, str):
            raise AssertionError(f"expected a text message from {self.path}, got {message!r:.200}")
        return message

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        """Like :meth:`receive`, but fail unless the message is binary."""
        message = self.receive(timeout)
        if not isinstance(message, bytes):
            raise AssertionError(
                f"expected a binary message from {self.path}, got {message!r:.200}"
            )
        return message

    def receive_json(self, timeout: float | None = None) -> Any:
        """Receive a message and decode it as JSON (text or UTF-8 binary)."""
        message = self.receive(timeout)
        try:
            return json.loads(message)
        except ValueError:
            raise AssertionError(
                f"the message from {self.path} is not JSON: {message!r:.200}"
            ) from None

    def receive_nothing(self, timeout: float = 0.1) -> bool:
        """Whether no message arrives within ``timeout`` seconds (a message is kept for later).

        ``assert client.receive_nothing()`` checks that the server stays quiet.
        A close from the server counts as nothing.
        """
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError):
            while not self._messages and not self.closed:
                self._read_frame(deadline)
        return not self._messages

    def wait_closed(self, timeout: float | None = None) -> int:
        """Wait for the server to close the connection; return :attr:`close_code`.

        Messages that arrive meanwhile are kept for :meth:`receive`.  Raises
        :class:`TimeoutError` when the connection is still open after
        ``timeout`` seconds (default :attr:`timeout`).
        """
        timeout, deadline = self._deadline(timeout)
        try:
            while not self.closed:
                self._read_frame(deadline)
        except TimeoutError:
            raise TimeoutError(
                f"{self.path} did not close the connection within {_seconds(timeout)} s"
            ) from None
        assert self.close_code is not None
        return self.close_code

    # ------------------------------------------------------------------
    # Writing

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise OSError("not connected")
        mask = os.urandom(4)
        first = FIN | opcode
        length = len(payload)
        if length < 126:
            header = bytes((first, MASK_BIT | length))
        elif length < 0x10000:
            header = _PACK_16(first, MASK_BIT | 126, length)
        else:
            header = _PACK_64(first, MASK_BIT | 127, length)
        sock.settimeout(self.timeout)
        sock.sendall(header + mask + apply_mask(payload, mask))

    def _check_open(self, action: str) -> None:
        if self.closed or self._close_sent:
            code = self.close_code
            raise ConnectionClosed(
                f"cannot {action} {self.path}: "
                + (
                    "the client has closed the connection"
                    if code is None
                    else _describe_close(code, self.close_reason)
                ),
                code,
                self.close_reason,
            )

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send a text message (``str``) or a binary one (bytes-like).

        Raises :class:`~django_websocket.exceptions.ConnectionClosed` once
        the connection is closing or closed.
        """
        if isinstance(data, str):
            opcode, payload = Opcode.TEXT, data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            opcode, payload = Opcode.BINARY, bytes(data)
        else:
            raise TypeError(
                f"send() takes str or bytes, not {type(data).__name__}; use send_json() for objects"
            )
        self._check_open("send to")
        try:
            self._send_frame(opcode, payload)
        except OSError as exc:
            # The server may have closed meanwhile: read its close frame to say how.
            with contextlib.suppress(Exception):
                self.receive_nothing(0.2)
            if not self.closed:
                self._lost()
            raise ConnectionClosed(
                f"cannot send to {self.path} ({exc}): "
                f"{_describe_close(self.close_code, self.close_reason)}",
                self.close_code,
                self.close_reason,
            ) from exc

    def send_json(self, obj: Any) -> None:
        """Send ``obj`` encoded as JSON in a text message."""
        self.send(json.dumps(obj))

    def ping(self, data: bytes = b"") -> None:
        """Send a ping; the server's pong is consumed by later reads."""
        self._check_open("ping")
        self._send_frame(Opcode.PING, bytes(data))

    def close(
        self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "", timeout: float | None = None
    ) -> None:
        """Close the connection: send a close frame and wait for the server's.

        Does nothing when the connection has already ended.  Waits up to
        ``timeout`` seconds (default :attr:`timeout`) for the server's close
        frame, then raises :class:`TimeoutError`; afterwards
        :attr:`close_code` is the code the server echoed.  Messages that
        arrived before the server's close frame are still returned by
        :meth:`receive`.  Raises ``ValueError`` for a code that may not be
        sent (such as 1005 or 1006).
        """
        if self.closed:
            return
        payload = encode_close_payload(code, reason)
        timeout, deadline = self._deadline(timeout)
        if not self._close_sent:
            self._close_sent = True
            with contextlib.suppress(OSError):  # the server is gone; reading tells how
                self._send_frame(Opcode.CLOSE, payload)
        try:
            while not self.closed:
                self._read_frame(deadline)
        except TimeoutError:
            self._lost()
            raise TimeoutError(
                f"{self.path} did not answer the close frame within {_seconds(timeout)} s"
            ) from None

    def __enter__(self) -> WebSocketClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # do not hide the test's own failure behind a closing problem
            with contextlib.suppress(Exception):
                self.close()
