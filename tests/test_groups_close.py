"""Closing and counting group members from anywhere, and closing a session's sockets on logout.

In-process backend: the package's entrypoint on a loopback port, real clients
(``websockets``), real HTTP logins and logouts with the session cookie.  The
argument checks and the I/O under threads run in the test process over a
socket pair.  The same calls across processes and hosts (Redis, two gunicorn
workers) are in ``test_groups_redis.py``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar

import pytest
from servers import FrameReader, ServerProcess, start_entrypoint
from test_groups import assert_silent, member, receive_until, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

CLOSE, TEXT = 0x8, 0x1


# ----------------------------------------------------------------------
# Helpers shared with test_groups_redis.py


def count(server: ServerProcess, group: str) -> int:
    status, body = server.http_get(f"/groups/count/?g={group}")
    assert status == 200, body
    value: int = json.loads(body)["count"]
    return value


def closed_with(ws: ClientConnection, timeout: float = 10.0) -> tuple[int | None, str]:
    """Read until the server closes; the close code and reason it sent (no message may come)."""
    with pytest.raises(ConnectionClosed) as info:
        message = ws.recv(timeout=timeout)
        pytest.fail(f"a message came instead of the close: {message!r}")
    rcvd = info.value.rcvd
    assert rcvd is not None, "the connection ended without a close frame"
    return rcvd.code, rcvd.reason


def still_open(ws: ClientConnection) -> None:
    """The connection still works both ways: the member view answers a command."""
    ws.send("join still-open")
    assert ws.recv(timeout=5) == "joined still-open"


class Browser:
    """An HTTP client with its own cookie jar: one browser's session."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        with self.opener.open(self.server.url(path, "http"), timeout=10) as response:
            assert response.status == 200
            text: str = response.read().decode()
            return text

    def login(self, user: str) -> Browser:
        assert self.get(f"/login/?user={urllib.parse.quote(user)}") == "logged in"
        return self

    def logout(self) -> None:
        assert self.get("/logout/") == "logged out"

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def member_views_ended(server: ServerProcess, code: int, start: int = 0) -> int:
    """How many member views logged that their loop ended with ``code``."""
    return len(
        re.findall(rf"groups member view ended: pid=\d+ close_code={code} ", server.log()[start:])
    )


# ----------------------------------------------------------------------
# Argument checks, in the test process


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1010, 1015, 1016, 2000, 2999, 5000, 65535, -1]
)
def test_codes_a_server_may_not_send_raise_value_error(django_settings: None, code: int) -> None:
    from django_websocket import groups

    with pytest.raises(ValueError):
        groups.close("room", code)
    with pytest.raises(ValueError):
        groups.close_user(42, code)


@pytest.mark.parametrize("code", [1000, 1001, 1008, 1011, 1012, 1013, 3000, 4000, 4999])
def test_codes_a_server_may_send_are_accepted(django_settings: None, code: int) -> None:
    from django_websocket import groups

    groups.close("nobody-here", code, "ok")  # no member: nothing happens


def test_reason_is_at_most_123_bytes_of_utf8(django_settings: None) -> None:
    from django_websocket import groups

    groups.close("nobody-here", 4000, "é" * 61 + "a")  # 123 bytes
    with pytest.raises(ValueError, match="123 bytes"):
        groups.close("nobody-here", 4000, "é" * 62)  # 124 bytes, 62 characters


@pytest.mark.parametrize("code, reason", [("1000", ""), (True, ""), (1000.0, ""), (1000, b"x")])
def test_wrong_types_raise_type_error(django_settings: None, code: object, reason: object) -> None:
    from django_websocket import groups

    with pytest.raises(TypeError):
        groups.close("room", code, reason)  # type: ignore[arg-type]


def test_names_are_checked_and_internal_names_are_out_of_reach(django_settings: None) -> None:
    from django_websocket import groups

    with pytest.raises(ValueError, match="invalid group name"):
        groups.close("session:abc")
    with pytest.raises(ValueError, match="invalid group name"):
        groups.count("user:1")
    with pytest.raises(ValueError, match="saved user"):
        groups.close_user(None)
    assert groups.count("nobody-here") == 0


def test_setting_validation() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from django_websocket import conf

    for bad in ("yes", 1, None):
        with pytest.raises(ImproperlyConfigured, match="WEBSOCKET_CLOSE_ON_LOGOUT"):
            conf.validate("WEBSOCKET_CLOSE_ON_LOGOUT", bad)
    for bad in (0, -1, "5", True):
        with pytest.raises(ImproperlyConfigured, match="COUNT_TTL"):
            conf.validate("WEBSOCKET_GROUPS", {"COUNT_TTL": bad})
    assert conf.validate("WEBSOCKET_GROUPS", {"COUNT_TTL": 0.5}) == {"COUNT_TTL": 0.5}


def test_the_redis_wire_format_of_a_close_request() -> None:
    from django_websocket.groups._hub import CloseRequest
    from django_websocket.groups._redis import decode, encode

    data = encode(CloseRequest(4000, "salle fermée"))
    assert data == b"c\x0f\xa0" + "salle fermée".encode()
    decoded = decode(data)
    assert isinstance(decoded, CloseRequest)
    assert (decoded.code, decoded.reason) == (4000, "salle fermée")
    for bad in (b"c", b"c\x0f", b"c\x0f\xa0\xff"):
        with pytest.raises(ValueError):
            decode(bad)


def test_the_command_says_when_it_cannot_reach_any_server(django_settings: None) -> None:
    import io

    from django.core.management import CommandError, call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("websocket_close_group", "room", "--code", "4000", stdout=out, stderr=err)
    assert out.getvalue() == "closed group room with 4000\n"
    assert "in-process backend: a command reaches no server's sockets" in err.getvalue()
    with pytest.raises(CommandError, match="1005 may not be sent"):
        call_command("websocket_close_group", "room", "--code", "1005")
    with pytest.raises(CommandError, match="123 bytes"):
        call_command("websocket_close_group", "room", "--reason", "x" * 124)


# ----------------------------------------------------------------------
# Threads: a view sending without pause while another thread closes its group


class _Session:
    """A stand-in for ``request.session``: the two things the groups read."""

    def __init__(self, key: str, user_pk: str) -> None:
        self.session_key = key
        self._data = {"_auth_user_id": user_pk}

    def get(self, key: str, default: object = None) -> object:
        return self._data.get(key, default)


class _Request:
    def __init__(self, session: _Session) -> None:
        self.session = session


@contextlib.contextmanager
def threaded_websocket() -> Iterator[tuple[object, FrameReader, socket.socket]]:
    from django_websocket.protocol import ServerConnection
    from django_websocket.server.transport import Transport
    from django_websocket.server.websocket import WebSocket

    server_side, client_side = socket.socketpair()
    client_side.settimeout(10)
    websocket = WebSocket(
        Transport(server_side, "socketpair", threaded=True), ServerConnection(), close_timeout=0.5
    )
    try:
        yield websocket, FrameReader(client_side), client_side
    finally:
        websocket.finish()
        client_side.close()
        server_side.close()


def frames_until_close(reader: FrameReader) -> list[tuple[int, bytes]]:
    frames = []
    while True:
        opcode, fin, payload = reader.frame()
        assert fin
        frames.append((opcode, payload))
        if opcode == CLOSE:
            return frames


def test_close_from_another_thread_never_interleaves_with_the_views_sends(
    django_settings: None,
) -> None:
    from django_websocket import ConnectionClosed as Closed
    from django_websocket import groups

    with threaded_websocket() as (websocket, reader, _):
        groups.add("threads-close", websocket)  # type: ignore[arg-type]
        sent = [0]
        stop = threading.Event()

        def view() -> None:  # sends as fast as it can until its socket is closed
            try:
                while not stop.is_set():
                    websocket.send(f"m {sent[0]} " + "x" * 3000)  # type: ignore[attr-defined]
                    sent[0] += 1
            except Closed:
                pass

        sender = threading.Thread(target=view)
        sender.start()
        collected: list[tuple[int, bytes]] = []
        reading = threading.Thread(target=lambda: collected.extend(frames_until_close(reader)))
        reading.start()
        wait_for(lambda: sent[0] > 200, what="the view to be sending")
        groups.close("threads-close", 4000, "room closed")
        reading.join(10)
        stop.set()
        sender.join(10)
        assert not reading.is_alive() and not sender.is_alive()
        # Every frame is whole (FrameReader would fail on interleaved bytes), in order,
        # and the close frame comes last with the code and reason.
        texts = [payload.split(b" ")[1] for opcode, payload in collected[:-1]]
        assert all(opcode == TEXT for opcode, _ in collected[:-1])
        assert [int(t) for t in texts] == list(range(len(texts)))
        assert collected[-1] == (CLOSE, struct.pack("!H", 4000) + b"room closed")
        assert websocket.closed  # type: ignore[attr-defined]
        assert groups.local_members("threads-close") == []


def test_logout_receiver_closes_the_sessions_sockets_unless_turned_off(
    django_settings: None,
) -> None:
    from django.contrib.auth.signals import user_logged_out
    from django.test import override_settings

    from django_websocket import groups

    with (
        threaded_websocket() as (mine, my_reader, my_client),
        threaded_websocket() as (
            other,
            other_reader,
            other_client,
        ),
    ):
        session, other_session = _Session("k" * 32, "7"), _Session("j" * 32, "8")
        groups.join_session_groups(_Request(session), mine)  # type: ignore[arg-type]
        groups.join_session_groups(_Request(other_session), other)  # type: ignore[arg-type]

        with override_settings(WEBSOCKET_CLOSE_ON_LOGOUT=False):
            user_logged_out.send(sender=None, request=_Request(session), user=None)
        my_client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            my_reader.frame()  # nothing: turned off
        my_client.settimeout(10)

        user_logged_out.send(sender=None, request=_Request(session), user=None)
        opcode, _, payload = my_reader.frame()
        assert (opcode, payload) == (CLOSE, struct.pack("!H", 4401) + b"logged out")
        other_client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            other_reader.frame()  # another session's socket: untouched
        assert not other.closed  # type: ignore[attr-defined]


# ----------------------------------------------------------------------
# End to end, in-process backend


@pytest.fixture(scope="module")
def server(db_path: str) -> Iterator[ServerProcess]:
    proc = start_entrypoint(db_path)
    yield proc
    proc.stop()


def test_close_reaches_every_member_after_what_was_sent_and_the_views_see_it(
    server: ServerProcess,
) -> None:
    start = len(server.log())
    with contextlib.ExitStack() as stack:
        members = [stack.enter_context(member(server, "closing"))[0] for _ in range(3)]
        outsider, _ = stack.enter_context(member(server, "closing-other"))
        assert count(server, "closing") == 3
        status, body = server.http_get("/groups/send/?g=closing&n=2&tag=bye")
        assert status == 200, body
        status, body = server.http_get("/groups/close/?g=closing&code=4000&reason=room+closed")
        assert (status, body) == (200, b"closed")
        assert count(server, "closing") == 0  # they left at once
        for ws in members:
            assert receive_until(ws, {"bye end"}) == ["bye 0", "bye 1", "bye end"]
            assert closed_with(ws) == (4000, "room closed")
        still_open(outsider)
        assert_silent(outsider)
    # Each view's loop ended (receive() returned None) with the code, and the session ended.
    wait_for(lambda: member_views_ended(server, 4000, start) == 3, what="the views to end")
    assert "Traceback" not in server.log()[start:]
    assert "ERROR" not in server.log()[start:]


def test_an_invalid_code_sends_nothing(server: ServerProcess) -> None:
    with member(server, "invalid-close") as (ws, _):
        status, body = server.http_get("/groups/close/?g=invalid-close&code=1005")
        assert status == 400 and b"1005" in body
        still_open(ws)
        assert count(server, "invalid-close") == 1


def test_close_while_the_view_sends_on_the_same_socket(server: ServerProcess) -> None:
    with member(server, "busy") as (ws, _):
        ws.send("spam 100000")
        assert ws.recv(timeout=5).startswith("spam 0 ")
        status, _ = server.http_get("/groups/close/?g=busy&code=4001&reason=enough")
        assert status == 200
        received = 1
        with pytest.raises(ConnectionClosed) as info:
            while True:
                message = ws.recv(timeout=10)
                assert message.startswith(f"spam {received} ")  # whole and in order
                received += 1
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "enough")
        assert received < 100000


def test_count_follows_joins_leaves_and_ends(server: ServerProcess) -> None:
    assert count(server, "counted") == 0
    with member(server, "counted") as (a, _):
        assert count(server, "counted") == 1
        with member(server, "counted", "also") as (b, _):
            assert count(server, "counted") == 2
            assert count(server, "also") == 1
            b.send("leave counted")
            assert b.recv(timeout=5) == "left counted"
            assert count(server, "counted") == 1
            a.send("join counted")  # idempotent: still one
            assert a.recv(timeout=5) == "joined counted"
            assert count(server, "counted") == 1
        wait_for(lambda: count(server, "also") == 0, what="b's session to end")
    wait_for(lambda: count(server, "counted") == 0, what="a's session to end")


def test_logout_closes_that_sessions_sockets_only(server: ServerProcess) -> None:
    alice = Browser(server).login("alice")
    alice_phone = Browser(server).login("alice")  # the same user, another session
    bob = Browser(server).login("bob")
    with contextlib.ExitStack() as stack:
        tabs = [stack.enter_context(member(server, "lobby", cookie=alice.cookie))[0] for _ in "ab"]
        phone, _ = stack.enter_context(member(server, "lobby", cookie=alice_phone.cookie))
        other, _ = stack.enter_context(member(server, "lobby", cookie=bob.cookie))
        anonymous, _ = stack.enter_context(member(server, "lobby"))
        assert count(server, "lobby") == 5

        alice.logout()
        for ws in tabs:
            assert closed_with(ws) == (4401, "logged out")
        for ws in (phone, other, anonymous):
            still_open(ws)
        assert count(server, "lobby") == 3

        # "This user, everywhere": alice's remaining session, not bob's.
        status, _ = server.http_get("/groups/close-user/?user=alice")
        assert status == 200
        assert closed_with(phone) == (4403, "banned")
        for ws in (other, anonymous):
            still_open(ws)
