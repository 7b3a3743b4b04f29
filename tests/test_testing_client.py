"""django_websocket.testing.WebSocketClient against a scripted raw-socket server.

The live server never sends some frames (fragments, pings, masked or broken
frames); a server written byte by byte here does, to check the client's own
framing: masking, fragmentation, ping answers, the closing handshake and its
refusal to accept frames that break RFC 6455.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie

import pytest

from django_websocket.testing import (
    ConnectionClosed,
    HandshakeRefused,
    WebSocketClient,
    WebSocketProtocolError,
)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Script = Callable[[socket.socket, dict[str, str]], None]


def server_frame(opcode: int, payload: bytes, *, fin: bool = True, first_extra: int = 0) -> bytes:
    first = opcode | (0x80 if fin else 0) | first_extra
    if len(payload) < 126:
        return bytes((first, len(payload))) + payload
    return struct.pack("!BBH", first, 126, len(payload)) + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection ended after {len(data)} of {n} bytes")
        data += chunk
    return data


def client_frame(sock: socket.socket) -> tuple[bool, int, bytes]:
    """Read one client frame; it must be masked.  Returns (fin, opcode, unmasked payload)."""
    first, second = read_exact(sock, 2)
    assert second & 0x80, "client frames must be masked"
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", read_exact(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", read_exact(sock, 8))[0]
    mask = read_exact(sock, 4)
    masked = read_exact(sock, length)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(masked))
    return bool(first & 0x80), first & 0x0F, payload


def accept(sock: socket.socket, request: dict[str, str], extra: str = "") -> None:
    digest = hashlib.sha1(request["sec-websocket-key"].encode() + GUID).digest()
    sock.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {base64.b64encode(digest).decode()}\r\n{extra}\r\n"
        ).encode()
    )


class ScriptedServer:
    """Accepts one connection, reads the request, and runs ``script`` in a thread."""

    def __init__(self, script: Script) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request: dict[str, str] = {}
        self.request_line = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/ws/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _run(self, script: Script) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
                self.request_line, *lines = head.split("\r\n")
                for line in lines:
                    name, _, value = line.partition(":")
                    self.request[name.strip().lower()] = value.strip()
                script(conn, self.request)
        except BaseException as exc:
            self.error = exc
        finally:
            self.listener.close()

    def join(self) -> None:
        self.thread.join(5)
        assert not self.thread.is_alive(), "the scripted server is still running"
        if self.error is not None:
            raise self.error


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.join()


def expect_close(sock: socket.socket, code: int | None) -> None:
    """Read the client's close frame and check its code (``None``: an empty payload)."""
    fin, opcode, payload = client_frame(sock)
    assert (fin, opcode) == (True, 0x8)
    assert payload[:2] == (b"" if code is None else code.to_bytes(2, "big"))


# ----------------------------------------------------------------------
# Handshake


def test_request_headers(scripted: Callable[[Script], ScriptedServer]) -> None:
    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request, "Sec-WebSocket-Protocol: two\r\n")
        sock.sendall(server_frame(0x8, close_payload(1000)))
        expect_close(sock, 1000)

    server = scripted(script)
    cookies = SimpleCookie()
    cookies["sessionid"] = "abc"
    ws = WebSocketClient(
        server.url("/ws/?room=1"),
        subprotocols=["one", "two"],
        headers=[("X-Extra", "yes")],
        origin="http://example.com",
        cookies=cookies,
    )
    assert ws.subprotocol == "two"
    assert ws.response_headers["sec-websocket-protocol"] == "two"
    assert ws.wait_closed() == 1000
    server.join()
    assert server.request_line == "GET /ws/?room=1 HTTP/1.1"
    request = server.request
    assert request["host"] == f"127.0.0.1:{server.port}"
    assert request["upgrade"] == "websocket"
    assert request["connection"] == "Upgrade"
    assert request["sec-websocket-version"] == "13"
    assert len(base64.b64decode(request["sec-websocket-key"])) == 16
    assert request["sec-websocket-protocol"] == "one, two"
    assert request["origin"] == "http://example.com"
    assert request["cookie"] == "sessionid=abc"
    assert request["x-extra"] == "yes"


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n",
            "wrong Sec-WebSocket-Accept",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
            "no Upgrade: websocket header",
        ),
        ("SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"),
    ],
    ids=["accept", "upgrade", "not-http"],
)
def test_bad_101_response(
    scripted: Callable[[Script], ScriptedServer], response: str, problem: str
) -> None:
    server = scripted(lambda sock, request: sock.sendall(response.encode()))
    with pytest.raises(WebSocketProtocolError, match=problem):
        WebSocketClient(server.url())


def test_subprotocol_not_offered(scripted: Callable[[Script], ScriptedServer]) -> None:
    server = scripted(lambda sock, request: accept(sock, request, "Sec-WebSocket-Protocol: x\r\n"))
    with pytest.raises(WebSocketProtocolError, match="subprotocol 'x', which this client did not"):
        WebSocketClient(server.url(), subprotocols=["y"])


def test_refusal_with_chunked_body(scripted: Callable[[Script], ScriptedServer]) -> None:
    def script(sock: socket.socket, request: dict[str, str]) -> None:
        sock.sendall(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"5\r\nno en\r\n5;ext=1\r\ntry!\n\r\n0\r\n\r\n"
        )

    server = scripted(script)
    with pytest.raises(HandshakeRefused) as info:
        WebSocketClient(server.url("/room/"))
    assert info.value.body == b"no entry!\n"
    assert str(info.value) == "403 Forbidden: no entry! (handshake for /room/)"


def test_refusal_with_html_body(scripted: Callable[[Script], ScriptedServer]) -> None:
    body = (
        b"<html><head><title>Oops</title><style>h1 {}</style></head>"
        b"<body><h1>Server Error</h1>\n<p>Try later.</p></body></html>"
    )

    def script(sock: socket.socket, request: dict[str, str]) -> None:
        sock.sendall(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    server = scripted(script)
    with pytest.raises(HandshakeRefused) as info:
        WebSocketClient(server.url())
    assert info.value.status == 500
    assert str(info.value) == (
        "500 Internal Server Error: Server Error Try later. (handshake for /ws/)"
    )


def test_handshake_timeout(scripted: Callable[[Script], ScriptedServer]) -> None:
    done = threading.Event()
    server = scripted(lambda sock, request: done.wait(5))
    with pytest.raises(TimeoutError, match=r"^no handshake response from /ws/ within 0\.2 s$"):
        WebSocketClient(server.url(), timeout=0.2)
    done.set()


def test_only_ws_urls() -> None:
    with pytest.raises(ValueError, match="expected a ws:// URL"):
        WebSocketClient("http://127.0.0.1:1/")


# ----------------------------------------------------------------------
# Frames


def test_client_frames_are_masked_with_minimal_lengths(
    scripted: Callable[[Script], ScriptedServer],
) -> None:
    received: list[tuple[bool, int, bytes]] = []

    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request)
        for _ in range(4):
            received.append(client_frame(sock))
        sock.sendall(server_frame(0x8, close_payload(1000)))
        expect_close(sock, 1000)

    server = scripted(script)
    with WebSocketClient(server.url()) as ws:
        ws.send("héllo")
        ws.send(b"\x01" * 200)  # 16-bit length
        ws.send(bytearray(b"\x02" * 70000))  # 64-bit length
        ws.send_json({"a": [1, None]})
        assert ws.wait_closed() == 1000
    server.join()
    assert received == [
        (True, 0x1, "héllo".encode()),
        (True, 0x2, b"\x01" * 200),
        (True, 0x2, b"\x02" * 70000),
        (True, 0x1, b'{"a": [1, null]}'),
    ]


def test_fragments_and_pings(scripted: Callable[[Script], ScriptedServer]) -> None:
    pongs: list[tuple[bool, int, bytes]] = []

    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request)
        sock.sendall(
            server_frame(0x1, "hé".encode()[:2], fin=False)
            + server_frame(0x9, b"are you there")  # a ping between fragments
            + server_frame(0x0, "hé".encode()[2:], fin=False)
            + server_frame(0x0, b"llo")
            + server_frame(0xA, b"unsolicited pong")
            + server_frame(0x2, b"\x00", fin=False)
            + server_frame(0x0, b"\xff")
        )
        pongs.append(client_frame(sock))
        sock.sendall(server_frame(0x8, close_payload(1001, "bye")))
        expect_close(sock, 1001)

    server = scripted(script)
    ws = WebSocketClient(server.url())
    assert ws.receive_text() == "héllo"
    assert ws.receive_bytes() == b"\x00\xff"
    assert ws.wait_closed() == 1001
    assert ws.close_reason == "bye"
    server.join()
    assert pongs == [(True, 0xA, b"are you there")]


def test_close_without_status_code(scripted: Callable[[Script], ScriptedServer]) -> None:
    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request)
        sock.sendall(server_frame(0x1, b"last") + server_frame(0x8, b""))
        expect_close(sock, None)  # 1005 is not echoed

    server = scripted(script)
    ws = WebSocketClient(server.url())
    assert ws.receive() == "last"
    with pytest.raises(ConnectionClosed, match=r"without a status code \(1005\)") as info:
        ws.receive()
    assert info.value.code == 1005
    server.join()


def test_connection_lost(scripted: Callable[[Script], ScriptedServer]) -> None:
    server = scripted(lambda sock, request: accept(sock, request))
    ws = WebSocketClient(server.url())
    with pytest.raises(ConnectionClosed, match=r"lost without a close frame \(1006\)"):
        ws.receive()
    assert ws.close_code == 1006
    with pytest.raises(ConnectionClosed, match="cannot send to /ws/"):
        ws.send("x")


@pytest.mark.parametrize(
    ("frames", "problem"),
    [
        (bytes((0x81, 0x81)) + b"\x00\x00\x00\x00a", "a masked frame"),
        (server_frame(0x1, b"x", first_extra=0x40), "a frame with reserved bits set"),
        (server_frame(0x1, b"\xff\xfe"), "a text message that is not valid UTF-8"),
        (server_frame(0x0, b"x"), "a continuation frame with no message"),
        (server_frame(0x1, b"a", fin=False) + server_frame(0x1, b"b"), "a new message before"),
        (server_frame(0x3, b""), "reserved opcode 0x3"),
        (server_frame(0x9, b"x", fin=False), "a fragmented or oversized control frame"),
        (server_frame(0x8, b"\x03"), "a close frame with a 1-byte payload"),
        (server_frame(0x8, close_payload(1005)), "a close frame with the invalid code 1005"),
    ],
    ids=[
        "masked",
        "rsv",
        "utf8",
        "orphan-continuation",
        "interleaved",
        "opcode",
        "fragmented-ping",
        "short-close",
        "bad-code",
    ],
)
def test_protocol_errors(
    scripted: Callable[[Script], ScriptedServer], frames: bytes, problem: str
) -> None:
    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request)
        sock.sendall(frames)
        expect_close(sock, 1002)

    server = scripted(script)
    ws = WebSocketClient(server.url())
    with pytest.raises(WebSocketProtocolError, match=f"^/ws/ sent {problem}"):
        ws.receive()
    assert ws.close_code == 1002
    server.join()


def test_close_timeout(scripted: Callable[[Script], ScriptedServer]) -> None:
    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request)
        expect_close(sock, 4000)
        sock.recv(1)  # never answers; returns when the client gives up

    server = scripted(script)
    ws = WebSocketClient(server.url())
    with pytest.raises(TimeoutError, match=r"^/ws/ did not answer the close frame within 0\.2 s$"):
        ws.close(4000, "done", timeout=0.2)
    assert ws.close_code == 1006
    ws.close()  # already ended: nothing to do
    server.join()


def test_wait_closed_timeout_keeps_messages(scripted: Callable[[Script], ScriptedServer]) -> None:
    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request)
        sock.sendall(server_frame(0x1, b"kept"))
        expect_close(sock, 1000)
        sock.sendall(server_frame(0x8, close_payload(1000)))

    server = scripted(script)
    ws = WebSocketClient(server.url())
    with pytest.raises(TimeoutError, match=r"^/ws/ did not close the connection within 0\.25 s$"):
        ws.wait_closed(timeout=0.25)
    assert ws.receive() == "kept"
    ws.close()
    assert ws.close_code == 1000
    server.join()


def test_receive_type_checks_and_send_types(scripted: Callable[[Script], ScriptedServer]) -> None:
    def script(sock: socket.socket, request: dict[str, str]) -> None:
        accept(sock, request)
        sock.sendall(server_frame(0x2, b"\x01") + server_frame(0x1, b"text"))
        expect_close(sock, 1000)
        sock.sendall(server_frame(0x8, close_payload(1000)))

    server = scripted(script)
    with WebSocketClient(server.url()) as ws:
        with pytest.raises(
            AssertionError, match=r"expected a text message from /ws/, got b'\\x01'"
        ):
            ws.receive_text()
        with pytest.raises(AssertionError, match="expected a binary message from /ws/, got 'text'"):
            ws.receive_bytes()
        with pytest.raises(TypeError, match="send\\(\\) takes str or bytes, not int"):
            ws.send(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="may not be sent"):
            ws.close(1006)
    server.join()
