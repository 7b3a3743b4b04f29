"""The django-websocket 0.3 style app of the legacy example, served by the package's entrypoint."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import websocket as websocket_client  # the websocket-client package
from servers import ServerProcess, raw_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from .conftest import Visitor


def room_path() -> str:
    return f"/chat/room-{uuid.uuid4().hex[:8]}/"


def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=5))


def assert_nothing_more(ws: ClientConnection, wait: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        ws.recv(timeout=wait)


def message(user: str, text: str) -> dict[str, Any]:
    return {"type": "message", "user": user, "text": text}


# ----------------------------------------------------------------------
# Echo


@pytest.mark.parametrize(
    "payload",
    ["hello", "ünïcödé ✓", "", b"\x00\xffbinary", b""],
    ids=["text", "unicode", "empty-text", "binary", "empty-binary"],
)
def test_echo_returns_text_and_binary_unchanged(
    legacy_server: ServerProcess, payload: str | bytes
) -> None:
    with connect(legacy_server.url("/echo/")) as ws:
        ws.send(payload)
        assert ws.recv(timeout=5) == payload


def test_echo_with_websocket_client(legacy_server: ServerProcess) -> None:
    ws = websocket_client.create_connection(legacy_server.url("/echo/"), timeout=10)
    try:
        ws.send("text")
        assert ws.recv_data() == (websocket_client.ABNF.OPCODE_TEXT, b"text")
        ws.send_binary(b"\x01\x02")
        assert ws.recv_data() == (websocket_client.ABNF.OPCODE_BINARY, b"\x01\x02")
    finally:
        ws.close()


def test_require_websocket_refuses_plain_get(legacy_server: ServerProcess) -> None:
    status, body = legacy_server.http_get("/echo/")
    assert status == 400
    assert b"only accepts WebSocket" in body


def handshake_response(port: int, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """Send a handshake request; return the status, Sec-WebSocket-Version and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/echo/", headers=headers)
        response = connection.getresponse()
        version = response.getheader("Sec-WebSocket-Version", "")
        return response.status, version, response.read()
    finally:
        connection.close()


def test_hixie76_handshake_of_0_3_era_browsers_is_refused(legacy_server: ServerProcess) -> None:
    # What django-websocket 0.3 spoke, and what pre-2012 browsers sent: not served any more.
    status, _, body = handshake_response(
        legacy_server.port,
        {
            "Upgrade": "WebSocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key1": "4 @1  46546xW%0l 1 5",
            "Sec-WebSocket-Key2": "12998 5 Y3 1  .P00",
        },
    )
    assert status == 400
    assert b"Sec-WebSocket-Key" in body


def test_draft_hybi_version_gets_426(legacy_server: ServerProcess) -> None:
    # Firefox 6-10 and Chrome 14-15 sent draft protocol versions 7 and 8.
    status, version, _ = handshake_response(
        legacy_server.port,
        {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "8",
        },
    )
    assert (status, version) == (426, "13")


# ----------------------------------------------------------------------
# The rest of the 0.3 API, and the middleware


def test_legacy_calls(legacy_server: ServerProcess) -> None:
    before = legacy_server.log().count("tour: closed=True after close()")
    with connect(legacy_server.url("/legacy/")) as ws:
        assert ws.recv(timeout=5) == "True"  # send(request.is_websocket()): str() of a bool
        assert ws.recv(timeout=5) == "42"  # send(42)
        ws.send("first")
        assert ws.recv(timeout=5) == "wait:first"
        for letter in "abc":
            ws.send(letter)
        assert ws.recv(timeout=5) == "has:True count:3"
        assert ws.recv(timeout=5) == "read:a,b,c"
        assert ws.recv(timeout=5) == "read:nothing"
        assert ws.recv(timeout=5) == "closed:False"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 1000
    time.sleep(0.1)
    assert legacy_server.log().count("tour: closed=True after close()") == before + 1


def test_count_messages_sees_messages_arriving_between_polls(
    legacy_server: ServerProcess,
) -> None:
    # The tour polls count_messages() until it reaches 3; messages that arrive
    # in separate packets after the first poll must still be counted.
    with connect(legacy_server.url("/legacy/")) as ws:
        assert ws.recv(timeout=5) == "True"
        assert ws.recv(timeout=5) == "42"
        ws.send("first")
        assert ws.recv(timeout=5) == "wait:first"
        ws.send("a")
        time.sleep(0.1)  # the view polls and finds one message
        ws.send("b")
        time.sleep(0.05)
        ws.send("c")
        assert ws.recv(timeout=3) == "has:True count:3"
        assert ws.recv(timeout=5) == "read:a,b,c"


def test_attribute_accepted_view_served_by_middleware(legacy_server: ServerProcess) -> None:
    assert legacy_server.http_get("/shout/") == (200, b"shout: plain request")
    with connect(legacy_server.url("/shout/")) as ws:
        ws.send("quiet please")
        assert ws.recv(timeout=5) == "QUIET PLEASE"


def test_undecorated_view_refuses_upgrade_with_400(legacy_server: ServerProcess) -> None:
    assert legacy_server.http_get("/health/") == (200, b"ok is_websocket=False")
    with pytest.raises(InvalidStatus) as info:
        connect(legacy_server.url("/health/"))
    assert info.value.response.status_code == 400
    assert b"does not accept WebSocket" in info.value.response.body


# ----------------------------------------------------------------------
# Names from the session


def test_chat_needs_a_name_first(legacy_server: ServerProcess) -> None:
    status, final, page = Visitor(legacy_server).request("/")
    assert (status, final) == (200, "/name/")
    assert 'id="name-form"' in page
    sock, head, _ = raw_connect(legacy_server.port, "/chat/lobby/")
    sock.close()
    assert head.startswith(b"HTTP/1.1 302 ")  # login_required runs before the upgrade
    assert b"Location: /name/?next=/chat/lobby/" in head


def test_choose_name_logs_in_and_shows_the_page(legacy_server: ServerProcess) -> None:
    person = Visitor(legacy_server)
    status, final, page = person.choose_name("cleo", "/chat/kitchen/")
    assert (status, final) == (200, "/chat/kitchen/")
    assert '<b id="me">cleo</b>' in page
    assert "sessionid=" in person.cookie


def test_choose_name_rejects_bad_names(legacy_server: ServerProcess) -> None:
    status, final, page = Visitor(legacy_server).choose_name("no spaces <b>")
    assert (status, final) == (200, "/name/")
    assert "Letters, digits and" in page
    assert 'value="no spaces &lt;b&gt;"' in page  # shown again, escaped


# ----------------------------------------------------------------------
# The chat room


def test_two_clients_chat_each_message_arrives_once(
    legacy_server: ServerProcess, visitor: Callable[[str], Visitor]
) -> None:
    ann, ben = visitor("ann"), visitor("ben")
    url = legacy_server.url(room_path())
    with connect(url, additional_headers={"Cookie": ann.cookie}) as a:
        assert recv_json(a) == {"type": "join", "user": "ann", "count": 1}
        # websocket-client sends an Origin header (the page's own): it passes the check.
        b = websocket_client.create_connection(url, cookie=ben.cookie, timeout=5)
        try:
            joined = {"type": "join", "user": "ben", "count": 2}
            assert json.loads(b.recv()) == joined
            assert recv_json(a) == joined

            a.send("hello ben")
            assert recv_json(a) == message("ann", "hello ben")
            assert json.loads(b.recv()) == message("ann", "hello ben")
            b.send("  hi ann  ")
            assert json.loads(b.recv()) == message("ben", "hi ann")
            assert recv_json(a) == message("ben", "hi ann")

            assert_nothing_more(a)
            b.settimeout(0.3)
            with pytest.raises(websocket_client.WebSocketTimeoutException):
                b.recv()
        finally:
            b.close()
        assert recv_json(a) == {"type": "leave", "user": "ben", "count": 1}
        a.send("alone now")
        assert recv_json(a) == message("ann", "alone now")


def test_rooms_are_separate(
    legacy_server: ServerProcess, visitor: Callable[[str], Visitor]
) -> None:
    ann, ben = visitor("ann"), visitor("ben")
    with (
        connect(legacy_server.url(room_path()), additional_headers={"Cookie": ann.cookie}) as a,
        connect(legacy_server.url(room_path()), additional_headers={"Cookie": ben.cookie}) as b,
    ):
        assert recv_json(a)["count"] == 1
        assert recv_json(b)["count"] == 1
        a.send("only for my room")
        assert recv_json(a) == message("ann", "only for my room")
        assert_nothing_more(b)


def test_vanished_client_leaves_the_room_and_the_server_stays_healthy(
    legacy_server: ServerProcess, visitor: Callable[[str], Visitor]
) -> None:
    ann, ben = visitor("ann"), visitor("ben")
    path = room_path()
    log_before = len(legacy_server.log())
    with connect(legacy_server.url(path), additional_headers={"Cookie": ann.cookie}) as a:
        assert recv_json(a)["type"] == "join"
        sock, head, _ = raw_connect(legacy_server.port, path, {"Cookie": ben.cookie})
        assert head.startswith(b"HTTP/1.1 101 ")
        assert recv_json(a) == {"type": "join", "user": "ben", "count": 2}
        # Ben's machine disappears: a reset, no close frame.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        assert recv_json(a) == {"type": "leave", "user": "ben", "count": 1}
        a.send("still here")
        assert recv_json(a) == message("ann", "still here")
    assert legacy_server.http_get("/health/") == (200, b"ok is_websocket=False")
    new_lines = legacy_server.log()[log_before:]
    assert "Traceback" not in new_lines and "ERROR" not in new_lines, new_lines


def test_other_sites_cannot_use_the_session_cookie(
    legacy_server: ServerProcess, visitor: Callable[[str], Visitor]
) -> None:
    ann = visitor("ann")
    with pytest.raises(InvalidStatus) as info:
        connect(
            legacy_server.url(room_path()),
            additional_headers={"Cookie": ann.cookie},
            origin="http://evil.example",  # type: ignore[arg-type]
        )
    assert info.value.response.status_code == 403


def test_binary_messages_are_ignored_by_the_chat(
    legacy_server: ServerProcess, visitor: Callable[[str], Visitor]
) -> None:
    ann = visitor("ann")
    with connect(legacy_server.url(room_path()), additional_headers={"Cookie": ann.cookie}) as a:
        recv_json(a)
        a.send(b"\x00binary")
        a.send("text")
        assert recv_json(a) == message("ann", "text")
