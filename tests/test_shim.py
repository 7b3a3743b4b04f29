"""End to end: the package's server process on a loopback port, real clients, real sockets."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest
import websocket as websocket_client  # the websocket-client package
from servers import (
    FrameReader,
    ServerProcess,
    client_frame,
    open_ws,
    raw_connect,
    start_entrypoint,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

CLOSE = 0x8
TEXT = 0x1


def close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()


# ----------------------------------------------------------------------
# Echo through two independent client libraries


@pytest.mark.parametrize(
    "message",
    ["hello", "", "ünïcödé ✓", b"", b"\x00\xff binary", b"x" * (1 << 20)],
    ids=["text", "empty-text", "unicode", "empty-binary", "binary", "1MiB"],
)
def test_echo_websockets_client(server: ServerProcess, message: str | bytes) -> None:
    with connect(server.url("/echo/"), max_size=None) as ws:
        ws.send(message)
        assert ws.recv() == message


def test_echo_websocket_client_library(server: ServerProcess) -> None:
    ws = websocket_client.create_connection(server.url("/echo/"), timeout=10)
    try:
        ws.send("text via websocket-client")
        assert ws.recv() == "text via websocket-client"
        ws.send_binary(b"\x01\x02\x03")
        opcode, data = ws.recv_data()
        assert (opcode, data) == (websocket_client.ABNF.OPCODE_BINARY, b"\x01\x02\x03")
    finally:
        ws.close()


def test_many_messages_in_order(server: ServerProcess) -> None:
    with connect(server.url("/echo/")) as ws:
        for i in range(500):
            ws.send(f"message {i}")
        assert [ws.recv() for _ in range(500)] == [f"message {i}" for i in range(500)]


def test_compression_negotiated_and_used(server: ServerProcess) -> None:
    with connect(server.url("/echo/"), compression="deflate") as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        text = "compressible " * 2000
        ws.send(text)
        assert ws.recv() == text


def test_compression_off_per_view(server: ServerProcess) -> None:
    with connect(server.url("/subprotocol/"), compression="deflate") as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


# ----------------------------------------------------------------------
# Handshake outcomes


def test_subprotocol_server_preference(server: ServerProcess) -> None:
    with connect(server.url("/subprotocol/"), subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.recv() == "chat.v2"


def test_subprotocol_none_matching(server: ServerProcess) -> None:
    sock, head, rest = raw_connect(server.port, "/subprotocol/", {"Sec-WebSocket-Protocol": "x, y"})
    with sock:
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"sec-websocket-protocol" not in head.lower()
        assert FrameReader(sock, rest).frame() == (TEXT, True, b"none")


def test_plain_request_to_require_websocket_is_400(server: ServerProcess) -> None:
    status, body = server.http_get("/echo/")
    assert status == 400
    assert b"only accepts WebSocket" in body


def test_accept_websocket_serves_both(server: ServerProcess) -> None:
    assert server.http_get("/both/") == (200, b"plain http")
    with connect(server.url("/both/")) as ws:
        assert ws.recv() == "websocket"


def test_bad_version_is_426(server: ServerProcess) -> None:
    sock, head, _ = raw_connect(server.port, "/echo/", {"Sec-WebSocket-Version": "8"})
    sock.close()
    # raw_connect already sent version 13; a second header makes it "13, 8".
    assert head.startswith(b"HTTP/1.1 426 ")
    assert b"Sec-WebSocket-Version: 13" in head


def test_bad_key_is_400(server: ServerProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with sock:
        sock.sendall(
            b"GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:{port}",  # the request's own origin
        "https://trusted.example",  # CSRF_TRUSTED_ORIGINS
        "https://sub.wild.example",  # CSRF_TRUSTED_ORIGINS wildcard
        "http://allowed.example",  # WEBSOCKET_ALLOWED_ORIGINS
        None,  # non-browser clients send no Origin
    ],
)
def test_origin_allowed(server: ServerProcess, origin: str | None) -> None:
    headers = {} if origin is None else {"Origin": origin.format(port=server.port)}
    sock, head, _ = raw_connect(server.port, "/echo/", headers)
    sock.close()
    assert head.startswith(b"HTTP/1.1 101 ")


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "https://127.0.0.1:{port}", "http://trusted.example", "null"]
)
def test_origin_refused(server: ServerProcess, origin: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(server.url("/echo/"), origin=origin.format(port=server.port))  # type: ignore[arg-type]
    assert info.value.response.status_code == 403


# ----------------------------------------------------------------------
# Django integration: auth before the upgrade, sessions, signals, transactions


def _login_cookie(server: ServerProcess, user: str) -> str:
    with urllib.request.urlopen(server.url(f"/login/?user={user}", "http"), timeout=10) as resp:
        cookies = resp.headers.get_all("Set-Cookie")
    session = next(c for c in cookies if c.startswith("sessionid="))
    return session.split(";", 1)[0]


def test_login_required_refuses_before_upgrade(server: ServerProcess) -> None:
    sock, head, _rest = raw_connect(server.port, "/whoami/")
    sock.close()
    assert head.startswith(b"HTTP/1.1 302 ")
    assert b"Location: /accounts/login/?next=/whoami/" in head


def test_login_required_sees_user_after_login(server: ServerProcess) -> None:
    cookie = _login_cookie(server, "alice")
    with connect(server.url("/whoami/"), additional_headers={"Cookie": cookie}) as ws:
        assert ws.recv() == "alice"


def test_request_finished_once_db_closed_and_not_atomic(server: ServerProcess) -> None:
    server.http_get("/reset/")
    with connect(server.url("/orm/")) as ws:
        state = json.loads(ws.recv())
    assert state["in_atomic"] is False  # ATOMIC_REQUESTS = True in the test settings
    time.sleep(0.2)
    status, body = server.http_get("/events/")
    assert status == 200
    events = json.loads(body)
    # /reset/'s own request_finished, then exactly one for the WebSocket request.
    assert events == [["request_finished", True], ["request_finished", True]]


def test_view_exception_closes_1011_and_server_keeps_serving(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/boom/")
    with sock:
        assert reader.frame() == (TEXT, True, b"about to fail")
        opcode, _, payload = reader.frame()
        assert opcode == CLOSE and int.from_bytes(payload[:2], "big") == 1011
        sock.sendall(client_frame(CLOSE, payload[:2]))
        assert reader.rest_until_eof() == b""
    time.sleep(0.2)
    log = server.log()
    assert "Internal Server Error in WebSocket view: /boom/" in log
    assert "RuntimeError: view failure after the upgrade" in log
    assert server.http_get("/plain/") == (200, b"plain ok")


# ----------------------------------------------------------------------
# Nothing after the close frame, and the connection ends


def test_client_initiated_close_nothing_follows(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/echo/")
    with sock:
        sock.sendall(client_frame(TEXT, b"ping?"))
        assert reader.frame() == (TEXT, True, b"ping?")
        sock.sendall(client_frame(CLOSE, close_payload(1000, "client done")))
        assert reader.frame() == (CLOSE, True, close_payload(1000))
        assert reader.rest_until_eof() == b""


def test_server_initiated_close_nothing_follows(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/server-close/")
    with sock:
        assert reader.frame() == (TEXT, True, b"bye")
        assert reader.frame() == (CLOSE, True, close_payload(4001, "done here"))
        sock.sendall(client_frame(CLOSE, close_payload(4001)))
        assert reader.rest_until_eof() == b""


def test_view_returning_closes_1000_nothing_follows(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/returns-at-once/")
    with sock:
        assert reader.frame() == (TEXT, True, b"hello")
        assert reader.frame() == (CLOSE, True, close_payload(1000))
        sock.sendall(client_frame(CLOSE, close_payload(1000)))
        assert reader.rest_until_eof() == b""


def test_peer_that_never_answers_close_is_dropped_after_close_timeout(
    server: ServerProcess,
) -> None:
    sock, reader = open_ws(server.port, "/returns-at-once/")
    with sock:
        assert reader.frame() == (TEXT, True, b"hello")
        assert reader.frame()[0] == CLOSE
        started = time.monotonic()
        assert reader.rest_until_eof(timeout=10) == b""
        assert time.monotonic() - started < 4  # WEBSOCKET_CLOSE_TIMEOUT is 2 s


def test_abrupt_disconnect_leaves_server_healthy(server: ServerProcess) -> None:
    log_before = len(server.log())
    for _ in range(20):
        sock, _reader = open_ws(server.port, "/echo/")
        sock.sendall(client_frame(TEXT, b"x" * 1000)[:500])  # half a frame, then vanish
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST
    with connect(server.url("/echo/")) as ws:
        ws.send("still here")
        assert ws.recv() == "still here"
    time.sleep(0.2)
    new_lines = server.log()[log_before:]
    assert "Traceback" not in new_lines and "Error" not in new_lines, new_lines


def test_protocol_violation_fails_with_1002_and_logs(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/echo/")
    with sock:
        sock.sendall(client_frame(TEXT, b"before") + b"\x81\x05hello")  # second one unmasked
        assert reader.frame() == (TEXT, True, b"before")
        opcode, _, payload = reader.frame()
        assert opcode == CLOSE and int.from_bytes(payload[:2], "big") == 1002
        assert reader.rest_until_eof() == b""
    time.sleep(0.2)
    assert "failed with 1002: client frame is not masked" in server.log()


def test_invalid_utf8_fails_with_1007(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/echo/")
    with sock:
        sock.sendall(client_frame(TEXT, b"\xce\xba\xff"))
        opcode, _, payload = reader.frame()
        assert opcode == CLOSE and int.from_bytes(payload[:2], "big") == 1007


def test_oversized_message_fails_with_1009(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/echo/")
    with sock:
        # Only the header of a 5 MiB frame: the limit (4 MiB) is decided on it.
        sock.sendall(b"\x82\xff" + (5 << 20).to_bytes(8, "big") + b"\x00\x00\x00\x00")
        opcode, _, payload = reader.frame()
        assert opcode == CLOSE and int.from_bytes(payload[:2], "big") == 1009


# ----------------------------------------------------------------------
# Legacy API and middleware


def test_legacy_api(server: ServerProcess) -> None:
    with connect(server.url("/legacy/")) as ws:
        assert ws.recv() == "42"  # send(non_str) goes through str()
        ws.send("first")
        assert ws.recv() == "wait:first"
        ws.send("second")
        ws.send("third")
        assert ws.recv() == "has:True count:2"
        assert ws.recv() == "read:second"
        assert ws.recv() == "read:third"
        with pytest.raises(ConnectionClosed):
            ws.recv()
        assert ws.close_code == 1000


def test_undecorated_view_refused_without_accept_all(server: ServerProcess) -> None:
    assert server.http_get("/undecorated/") == (200, b"plain undecorated")
    with pytest.raises(InvalidStatus) as info:
        connect(server.url("/undecorated/"))
    assert info.value.response.status_code == 400


@pytest.fixture(scope="module")
def accept_all_server(db_path: str):
    proc = start_entrypoint(db_path, TEST_ACCEPT_ALL="1")
    yield proc
    proc.stop()


def test_undecorated_view_served_with_accept_all(accept_all_server: ServerProcess) -> None:
    with connect(accept_all_server.url("/undecorated/")) as ws:
        assert ws.recv() == "undecorated"
    # A decorated view is still hand-shaken once, by its decorator.
    with connect(accept_all_server.url("/echo/")) as ws:
        ws.send("once")
        assert ws.recv() == "once"


# ----------------------------------------------------------------------
# Keepalive


def test_keepalive_ping_timeout_closes_1011(server: ServerProcess) -> None:
    sock, reader = open_ws(server.port, "/keepalive/")
    with sock:
        started = time.monotonic()
        opcode, _, payload = reader.frame()
        assert opcode == 0x9 and len(payload) == 4  # the server's ping; we do not answer
        opcode, _, payload = reader.frame()
        assert opcode == CLOSE and int.from_bytes(payload[:2], "big") == 1011
        assert time.monotonic() - started < 3
        assert reader.rest_until_eof() == b""


def test_keepalive_answered_keeps_connection(server: ServerProcess) -> None:
    with connect(server.url("/keepalive/")) as ws:  # answers pings automatically
        time.sleep(1.5)  # five ping intervals
        ws.send("still")
        assert ws.recv() == "still:None"


# ----------------------------------------------------------------------
# Nothing leaks


def _state(server: ServerProcess) -> dict[str, int]:
    status, body = server.http_get("/debug/state/")
    assert status == 200
    return json.loads(body)


def test_thousand_sequential_connections_leak_nothing(server: ServerProcess) -> None:
    with connect(server.url("/echo/")) as ws:  # warm up lazily created objects
        ws.send("warm")
        ws.recv()
    time.sleep(0.3)
    before = _state(server)
    for i in range(1000):
        with connect(server.url("/echo/"), compression=None) as ws:
            ws.send(str(i))
            assert ws.recv() == str(i)
    time.sleep(0.5)
    after = _state(server)
    assert after["fds"] <= before["fds"] + 2, (before, after)
    assert after["greenlets"] <= before["greenlets"] + 2, (before, after)


def test_close_callbacks_run_once_after_the_session(server: ServerProcess) -> None:
    server.http_get("/reset/")
    with connect(server.url("/close-callback/")) as ws:
        ws.close(4002)
    time.sleep(0.3)
    status, body = server.http_get("/events/")
    assert status == 200
    events = [e for e in json.loads(body) if e[0] == "closed"]
    assert events == [["closed", 4002]]
