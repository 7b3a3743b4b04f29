"""``python -m django_websocket`` facing clients directly: timeouts, limits and bad input.

Each test starts the entrypoint as a real process on a loopback port with
the limits under test, talks to it over raw sockets (for bytes third-party
clients never send) or the ``websockets`` client, and reads its log: bad
input is answered and logged at INFO, never with a traceback or an ERROR
line.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator

import pytest
from servers import (
    KEY,
    FrameReader,
    ServerProcess,
    client_frame,
    free_port,
    open_ws,
    project_env,
    read_response_head,
)
from test_servers import error_lines
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

TEXT = 0x1


def entrypoint(db_path: str, *options: str, nofile: int | None = None) -> ServerProcess:
    """The entrypoint with ``options``; ``nofile`` lowers its descriptor limit first."""
    port = free_port()
    command = [sys.executable, "-m", "django_websocket", f"127.0.0.1:{port}", *options]
    if nofile is not None:
        command = [
            sys.executable,
            "-c",
            "import resource, runpy, sys\n"
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile}))\n"
            "sys.argv = ['django_websocket', *sys.argv[1:]]\n"
            "runpy.run_module('django_websocket', run_name='__main__')\n",
            *command[3:],
        ]
    return ServerProcess(command, port, project_env(TEST_DB_PATH=db_path))


@contextlib.contextmanager
def running(db_path: str, *options: str, nofile: int | None = None) -> Iterator[ServerProcess]:
    server = entrypoint(db_path, *options, nofile=nofile)
    try:
        yield server
    finally:
        server.stop()


def until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Read until the server ends the connection; return what came and how long it took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data, time.monotonic() - started


def assert_clean(log: str) -> None:
    assert "Traceback" not in log, log
    assert error_lines(log) == [], log


# ----------------------------------------------------------------------
# Item 2: slow clients and too many of them


def test_silent_dribbling_and_idle_connections_are_closed_within_their_timeouts(
    db_path: str,
) -> None:
    """A silent client and one that dribbles its head are cut at the header timeout.

    The dribbler, who had started a request, gets 408; a keep-alive
    connection idle after a complete request is closed at the keep-alive
    timeout.  gevent's own server keeps all three open forever.
    """
    with running(db_path, "--header-timeout", "1", "--keepalive-timeout", "1") as server:
        silent = socket.create_connection(("127.0.0.1", server.port))
        dribbler = socket.create_connection(("127.0.0.1", server.port))
        idle = socket.create_connection(("127.0.0.1", server.port))
        with silent, dribbler, idle:
            idle.sendall(b"GET /plain/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head, _ = read_response_head(idle)
            assert head.startswith(b"HTTP/1.1 200 "), head
            started = time.monotonic()
            dribbler.sendall(b"GET /plain/ HTTP/1.1\r\n")
            answer = b""
            dribbler.settimeout(0.25)
            while time.monotonic() - started < 8:
                try:
                    dribbler.sendall(b"X-Slow: a\r\n")
                    chunk = dribbler.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                answer += chunk
            dribbled = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert dribbled < 4, dribbled  # 1 s, generously
            assert until_closed(silent, 8)[0] == b""
            _, waited = until_closed(idle, 8)
            assert waited < 4, waited
    log = server.log()
    assert "no complete request head within 1.0 s" in log, log
    assert_clean(log)


def test_connections_beyond_the_bound_get_503_and_one_warning(db_path: str) -> None:
    """With --max-connections 4, a fifth client gets 503 (WebSocket or plain), cleanly."""
    with running(db_path, "--max-connections", "4") as server:
        started = time.monotonic()
        held = [open_ws(server.port, "/echo/") for _ in range(4)]
        try:
            for _ in range(3):
                with (
                    pytest.raises(InvalidStatus) as refused,
                    connect(server.url("/echo/"), open_timeout=10),
                ):
                    pass
                assert refused.value.response.status_code == 503
            assert server.http_get("/plain/")[0] == 503
        finally:
            for sock, _ in held[:1]:
                sock.close()
        deadline = time.monotonic() + 10
        while server.http_get("/plain/") != (200, b"plain ok"):
            assert time.monotonic() < deadline, "still refusing after a connection ended"
            time.sleep(0.1)
        for sock, _ in held[1:]:
            sock.close()
        intervals = 1 + int((time.monotonic() - started) // 10)  # one WARNING per 10 s
    log = server.log()
    assert "Refusing new connections with 503: 4 open, the limit is 4" in log, log
    assert 1 <= log.count("Refusing new connections") <= intervals, log
    assert_clean(log)


def test_default_bound_comes_from_the_descriptor_limit(db_path: str) -> None:
    """With ulimit -n 160 the bound is (160 - 100) / 2 = 30: the 31st WebSocket gets 503."""
    with running(db_path, nofile=160) as server:
        deadline = time.monotonic() + 10  # the line follows the listening socket
        while "at most 30 connections" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        held = []
        try:
            for _ in range(30):
                held.append(open_ws(server.port, "/echo/"))
            with pytest.raises(AssertionError, match="503"):
                held.append(open_ws(server.port, "/echo/"))
            sock, reader = held[0]
            sock.sendall(client_frame(TEXT, b"still served"))
            assert reader.frame() == (TEXT, True, b"still served")
        finally:
            for sock, _ in held:
                sock.close()
    assert_clean(server.log())


def test_out_of_descriptors_pauses_accepting_with_one_warning(db_path: str) -> None:
    """Past the descriptor limit: one WARNING instead of a traceback per accept, then recovery."""
    with running(db_path, "--max-connections", "1000", nofile=64) as server:
        clients = []
        try:
            for _ in range(80):
                clients.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            time.sleep(0.5)
        finally:
            for sock in clients:
                sock.close()
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError):
                if server.http_get("/plain/") == (200, b"plain ok"):
                    break
            assert time.monotonic() < deadline, "not serving again"
            time.sleep(0.2)
    log = server.log()
    assert log.count("Cannot accept connections") == 1, log
    assert "Traceback" not in log, log


# ----------------------------------------------------------------------
# Item 3: garbage gets an answer and an INFO line


def _raw_request(port: int, request: bytes) -> tuple[bytes, bytes]:
    """Send ``request``; return the response head and whatever follows until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(request)
        head, rest = read_response_head(sock)
        more, _ = until_closed(sock, 10)
        return head, rest + more


def test_too_many_or_too_large_header_fields_get_431(db_path: str) -> None:
    """200 header fields, or one of 100 KB: 431 and the connection closed, an INFO line each."""
    many = b"".join(b"X-Field-%d: value\r\n" % i for i in range(200))
    large = b"X-Large: " + b"a" * 100_000 + b"\r\n"
    with running(db_path) as server:
        for fields in (many, large):
            head, _ = _raw_request(
                server.port, b"GET /plain/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n"
            )
            assert head.startswith(b"HTTP/1.1 431 "), head
            assert b"Connection: close" in head
        head, _ = _raw_request(server.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 414 "), head
        head, _ = _raw_request(server.port, b"NOT HTTP AT ALL\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), head
        assert server.http_get("/plain/") == (200, b"plain ok")
    log = server.log()
    assert "with 431: more than 99 header fields" in log
    assert "with 431: a header line longer than 8190 bytes" in log
    assert "with 414" in log and "with 400" in log
    assert_clean(log)


def test_connection_is_closed_after_a_refused_handshake(db_path: str) -> None:
    """Frames sent right behind a refused handshake are never parsed as the next request."""
    handshake = (
        b"GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\n"
        b"Sec-WebSocket-Version: 8\r\n\r\n"
    )
    with running(db_path) as server:
        head, rest = _raw_request(server.port, handshake + client_frame(TEXT, b"x" * 300))
        assert head.startswith(b"HTTP/1.1 426 "), head
        assert b"Connection: close" in head
        assert b"HTTP/1.1" not in rest  # one response only, then the end
    log = server.log()
    assert "Invalid HTTP method" not in log, log
    assert_clean(log)


# ----------------------------------------------------------------------
# Item 4: the handshake's token-list rules


def test_token_list_upgrade_and_connection_headers_get_101(db_path: str) -> None:
    """``Upgrade: websocket, foo`` with ``Connection: keep-alive, Upgrade`` is a valid handshake."""
    handshake = (
        b"GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket, foo\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with (
        running(db_path) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(handshake)
        head, rest = read_response_head(sock)
        assert head.startswith(b"HTTP/1.1 101 "), head
        reader = FrameReader(sock, rest)
        sock.sendall(client_frame(TEXT, b"token lists"))
        assert reader.frame() == (TEXT, True, b"token lists")
    assert_clean(server.log())
