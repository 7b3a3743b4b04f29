"""Groups with the default in-process backend: real server process, real sockets, real clients.

Also the API's argument checks and the ``WEBSOCKET_GROUPS`` setting's
validation, in the test process itself.  The Redis backend is in
``test_groups_redis.py``, which reuses the helpers here.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from servers import KEY, FrameReader, ServerProcess, start_entrypoint
from websockets.sync.client import ClientConnection, connect

CLOSE, TEXT, BINARY = 0x8, 0x1, 0x2

# A small queue bound, so that a client that stops reading is found out quickly.
MAX_QUEUE = 50


# ----------------------------------------------------------------------
# Helpers shared with test_groups_redis.py


def member_path(*names: str) -> str:
    return "/groups/member/?" + urllib.parse.urlencode([("g", name) for name in names])


@contextlib.contextmanager
def member(
    server: ServerProcess, *names: str, cookie: str | None = None
) -> Iterator[tuple[ClientConnection, int]]:
    """A client in groups ``names``, and the id of the server process that serves it.

    ``cookie``: a ``Cookie`` header to send (a logged-in session's).
    """
    headers = {"Cookie": cookie} if cookie else None
    with connect(
        server.url(member_path(*names)),
        max_queue=None,
        open_timeout=10,
        additional_headers=headers,
    ) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["joined"] == list(names)
        yield ws, hello["pid"]


def receive_until(ws: ClientConnection, ends: set[str], timeout: float = 15.0) -> list[str | bytes]:
    """Everything received until each message in ``ends`` has arrived (those included)."""
    deadline = time.monotonic() + timeout
    waiting = set(ends)
    received: list[str | bytes] = []
    while waiting:
        message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        received.append(message)
        waiting.discard(message)  # type: ignore[arg-type]
    return received


def assert_silent(*clients: ClientConnection, wait: float = 0.3) -> None:
    """Nothing more arrives within ``wait`` seconds (no duplicate, nothing from elsewhere)."""
    time.sleep(wait)
    for ws in clients:
        with pytest.raises(TimeoutError):
            message = ws.recv(timeout=0)
            pytest.fail(f"unexpected message {message!r}")


def numbered(received: list[str | bytes], tag: str) -> list[int]:
    """The numbers of the messages ``"TAG i"`` (text or bytes) in the order received."""
    numbers = []
    for message in received:
        text = message.decode() if isinstance(message, bytes) else message
        parts = text.split(" ")
        if parts[0] == tag and parts[1] != "end":
            numbers.append(int(parts[1]))
    return numbers


def send_from_view(server: ServerProcess, group: str, **params: str | int) -> dict[str, object]:
    """Ask a plain Django view of ``server`` to send numbered messages to ``group``."""
    query = urllib.parse.urlencode({"g": group, **params})
    status, body = server.http_get(f"/groups/send/?{query}")
    assert status == 200, body
    result: dict[str, object] = json.loads(body)
    return result


def local_members(server: ServerProcess, group: str) -> int:
    status, body = server.http_get(f"/groups/state/?g={group}")
    assert status == 200, body
    count: int = json.loads(body)["local"]
    return count


def wait_for(condition: object, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_for_log(
    server: ServerProcess, pattern: str, timeout: float = 10.0, start: int = 0
) -> re.Match[str]:
    """Wait for ``pattern`` in the server's output after its first ``start`` characters."""
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(pattern, server.log()[start:])
        if match is not None:
            return match
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} not in the server's log:\n{server.log()[-3000:]}")
        time.sleep(0.05)


class RawMember:
    """A member on a raw socket with a small receive buffer, read only when the test says."""

    def __init__(self, port: int, *names: str, rcvbuf: int = 4096) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        request = (
            f"GET {member_path(*names)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        self.sock = sock
        self.reader = FrameReader(sock, rest)
        opcode, _, payload = self.reader.frame()
        assert opcode == TEXT
        self.pid = json.loads(payload)["pid"]

    def frames_until_end(self, timeout: float = 10.0) -> list[tuple[int, bytes]]:
        """Read every frame until a close frame or the end of the connection."""
        self.sock.settimeout(timeout)
        frames = []
        try:
            while True:
                opcode, _, payload = self.reader.frame()
                frames.append((opcode, payload))
                if opcode == CLOSE:
                    return frames
        except (EOFError, ConnectionResetError):
            return frames

    def close(self) -> None:
        self.sock.close()


# ----------------------------------------------------------------------
# The API's argument checks, in the test process


@pytest.mark.parametrize("name", ["a", "room.42", "chat-room_1.x", "A" * 100, "-._"])
def test_valid_group_names(name: str) -> None:
    from django_websocket import groups

    assert groups.validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a b", "room/1", "room:1", "ünï", "A" * 101, "tab\t", "new\nline"]
)
def test_invalid_group_names_raise_value_error(django_settings: None, name: str) -> None:
    from django_websocket import groups

    with pytest.raises(ValueError, match="invalid group name"):
        groups.validate_name(name)
    with pytest.raises(ValueError, match="invalid group name"):
        groups.send(name, "hello")


@pytest.mark.parametrize("name", [None, 42, b"room", ["room"]])
def test_non_string_group_names_raise_type_error(django_settings: None, name: object) -> None:
    from django_websocket import groups

    with pytest.raises(TypeError, match="group name must be a str"):
        groups.send(name, "hello")  # type: ignore[arg-type]


@pytest.mark.parametrize("message", [None, 42, 1.5, {"a": 1}, ["x"]])
def test_messages_other_than_str_and_bytes_raise_type_error(
    django_settings: None, message: object
) -> None:
    from django_websocket import groups

    with pytest.raises(TypeError, match=r"str \(sent as text\) or bytes"):
        groups.send("room", message)  # type: ignore[arg-type]


def test_only_websockets_can_join(django_settings: None) -> None:
    from django_websocket import groups

    for thing in (object(), "ws", None):
        with pytest.raises(TypeError, match=r"request\.websocket"):
            groups.add("room", thing)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"request\.websocket"):
            groups.discard("room", thing)  # type: ignore[arg-type]


def test_send_to_a_group_without_members_does_nothing(django_settings: None) -> None:
    from django_websocket import groups

    groups.send("nobody-here", "hello")
    groups.send("nobody-here", bytearray(b"bytes-like too"))
    assert groups.local_members("nobody-here") == []


@pytest.mark.parametrize(
    "value, error",
    [
        ([], "must be a dict"),
        ({"BACKEND": "memcached"}, "'inprocess' or 'redis'"),
        ({"BAKEND": "redis"}, "unknown keys \\['BAKEND'\\]"),
        ({"BACKEND": "redis", "URL": "http://x"}, "redis://, rediss:// or unix://"),
        ({"PREFIX": ""}, "non-empty ASCII"),
        ({"PREFIX": "has space"}, "non-empty ASCII"),
        ({"MAX_QUEUE": 0}, "MAX_QUEUE'\\] must be an integer >= 1"),
        ({"MAX_QUEUE": None}, "MAX_QUEUE'\\] must be an integer >= 1"),
        ({"MAX_QUEUE": True}, "MAX_QUEUE'\\] must be an integer >= 1"),
        ({"MAX_QUEUE_BYTES": -1}, "None or an integer >= 1"),
        ({"OPTIONS": {1: 2}}, "OPTIONS"),
    ],
)
def test_settings_validation(value: object, error: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from django_websocket import conf

    with pytest.raises(ImproperlyConfigured, match=error):
        conf.validate("WEBSOCKET_GROUPS", value)


def test_valid_settings() -> None:
    from django_websocket import conf

    for value in (
        {},
        {"BACKEND": "inprocess", "MAX_QUEUE": 10, "MAX_QUEUE_BYTES": None},
        {
            "BACKEND": "redis",
            "URL": "rediss://user:pw@redis.example:6380/2",
            "PREFIX": "site-a",
            "OPTIONS": {"socket_connect_timeout": 1},
        },
    ):
        assert conf.validate("WEBSOCKET_GROUPS", value) is value


def test_settings_are_read_when_used(django_settings: None) -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from django_websocket import groups

    with (
        override_settings(WEBSOCKET_GROUPS={"BACKEND": "nope"}),
        pytest.raises(ImproperlyConfigured),
    ):
        groups.send("room", "hello")


def test_system_check_reports_a_bad_setting(django_settings: None) -> None:
    from django.test import override_settings

    from django_websocket import checks

    with override_settings(WEBSOCKET_GROUPS={"BACKEND": "redis", "URL": "localhost"}):
        errors = checks.check_settings()
    assert [e.id for e in errors] == ["django_websocket.E001"]
    assert "WEBSOCKET_GROUPS['URL']" in errors[0].msg


def test_lazy_export() -> None:
    import django_websocket
    from django_websocket import groups

    assert django_websocket.groups is groups
    assert "groups" in django_websocket.__all__


def test_a_socket_of_a_gevent_hub_in_another_thread_gets_messages_sent_from_this_one(
    django_settings: None,
) -> None:
    """Like the live test server: gevent serves in a thread of its own, the test sends."""
    import gevent
    import gevent.socket

    from django_websocket import groups
    from django_websocket.protocol import ServerConnection
    from django_websocket.server.transport import Transport
    from django_websocket.server.websocket import WebSocket

    server_side, client_side = socket.socketpair()
    client_side.settimeout(10)
    joined, stop = threading.Event(), threading.Event()

    def serve() -> None:  # this thread's own hub runs the WebSocket and its drains
        sock = gevent.socket.socket(fileno=server_side.detach())
        websocket = WebSocket(Transport(sock, "thread-hub", threaded=False), ServerConnection())
        websocket.close_timeout = 0.2
        groups.add("thread-hub", websocket)
        joined.set()
        while not stop.is_set():
            gevent.sleep(0.01)
        websocket.finish()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert joined.wait(5)
        for i in range(100):
            groups.send("thread-hub", f"m {i}")  # from the main thread: no hub runs here
        reader = FrameReader(client_side)
        assert [reader.frame() for _ in range(100)] == [
            (TEXT, True, f"m {i}".encode()) for i in range(100)
        ]
    finally:
        stop.set()
        thread.join(5)
        client_side.close()
    assert groups.local_members("thread-hub") == []  # left when the session ended


# ----------------------------------------------------------------------
# End to end, in-process backend


@pytest.fixture(scope="module")
def server(db_path: str) -> Iterator[ServerProcess]:
    """The package's entrypoint with the in-process backend and a small queue bound."""
    proc = start_entrypoint(db_path, TEST_GROUPS=json.dumps({"MAX_QUEUE": MAX_QUEUE}))
    yield proc
    proc.stop()


def test_a_plain_view_reaches_every_member_once_in_order(server: ServerProcess) -> None:
    with (
        member(server, "room") as (a, _),
        member(server, "room", "other") as (b, _),
        member(server, "room") as (c, _),
        member(server, "elsewhere") as (outsider, _),
    ):
        # More messages than the queue bound: a client that keeps up never nears it.
        send_from_view(server, "room", n=MAX_QUEUE * 4, tag="m")
        for ws in (a, b, c):
            received = receive_until(ws, {"m end"})
            assert received[-1] == "m end"
            assert numbered(received, "m") == list(range(MAX_QUEUE * 4))
            assert len(received) == MAX_QUEUE * 4 + 1
        assert_silent(a, b, c)
        send_from_view(server, "elsewhere", n=1, tag="own")
        assert receive_until(outsider, {"own end"}) == ["own 0", "own end"]


def test_str_is_sent_as_text_and_bytes_as_binary(server: ServerProcess) -> None:
    with member(server, "types") as (ws, _):
        send_from_view(server, "types", n=3, tag="bin", binary=1)
        assert receive_until(ws, {"bin end"}) == [b"bin 0", b"bin 1", b"bin 2", "bin end"]


def test_two_senders_each_keep_their_order(server: ServerProcess) -> None:
    with member(server, "pair") as (a, _), member(server, "pair") as (b, _):
        senders = [
            threading.Thread(
                target=send_from_view, args=(server, "pair"), kwargs=dict(n=200, tag=tag)
            )
            for tag in ("x", "y")
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        for ws in (a, b):
            received = receive_until(ws, {"x end", "y end"})
            assert numbered(received, "x") == list(range(200))
            assert numbered(received, "y") == list(range(200))
            assert len(received) == 402
        assert_silent(a, b)


def test_a_member_sends_to_its_group_and_a_background_task_does_too(
    server: ServerProcess,
) -> None:
    with member(server, "talk") as (a, _), member(server, "talk") as (b, _):
        a.send("send talk hello from a")
        assert a.recv(timeout=5) == "hello from a"
        assert b.recv(timeout=5) == "hello from a"
        send_from_view(server, "talk", n=2, tag="bg", background=1)
        for ws in (a, b):
            assert receive_until(ws, {"bg end"}) == ["bg 0", "bg 1", "bg end"]


def test_leave_join_and_automatic_discard_when_the_session_ends(server: ServerProcess) -> None:
    with member(server, "lifecycle") as (ws, _):
        assert local_members(server, "lifecycle") == 1
        ws.send("leave lifecycle")
        assert ws.recv(timeout=5) == "left lifecycle"
        assert local_members(server, "lifecycle") == 0
        send_from_view(server, "lifecycle", n=1, tag="gone")
        assert_silent(ws)
        ws.send("join lifecycle")
        assert ws.recv(timeout=5) == "joined lifecycle"
        ws.send("join lifecycle")  # idempotent
        assert ws.recv(timeout=5) == "joined lifecycle"
        assert local_members(server, "lifecycle") == 1
    # The client closed: the view ended and its socket left the group by itself.
    wait_for(lambda: local_members(server, "lifecycle") == 0, what="automatic discard")

    # A client that vanishes (a reset, no close frame) leaves too.
    raw = RawMember(server.port, "lifecycle")
    wait_for(lambda: local_members(server, "lifecycle") == 1, what="the raw member")
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    wait_for(lambda: local_members(server, "lifecycle") == 0, what="discard after a reset")
    send_from_view(server, "lifecycle", n=1, tag="after")  # nobody left: nothing breaks


def test_idle_members_and_ended_sessions_leave_no_greenlet_behind(server: ServerProcess) -> None:
    from django_websocket.groups._hub import DRAIN_IDLE_TIMEOUT

    def greenlets() -> int:
        status, body = server.http_get("/debug/state/")
        assert status == 200, body
        count: int = json.loads(body)["greenlets"]
        return count

    before = greenlets()
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(member(server, "leak", "leak2"))[0] for _ in range(20)]
        views = greenlets() - before
        assert views >= 20  # each view's greenlet
        send_from_view(server, "leak", n=10, tag="m")
        send_from_view(server, "leak2", n=10, tag="n")
        # While messages come, each member socket has one drain greenlet (whatever
        # the number of its groups); idle, it has none.
        assert before + views + 20 <= greenlets() <= before + views + 20 + 2
        for ws in clients:
            received = receive_until(ws, {"m end", "n end"})
            assert numbered(received, "m") == numbered(received, "n") == list(range(10))
        wait_for(
            lambda: greenlets() <= before + views,
            timeout=DRAIN_IDLE_TIMEOUT + 5,
            what="idle drains to end",
        )
        assert local_members(server, "leak") == local_members(server, "leak2") == 20
        send_from_view(server, "leak", n=3, tag="again")  # a new drain each, as needed
        for ws in clients:
            assert numbered(receive_until(ws, {"again end"}), "again") == [0, 1, 2]
    wait_for(lambda: local_members(server, "leak") == 0, what="the members to leave")
    wait_for(lambda: greenlets() <= before, what="the greenlets to end")


def test_invalid_name_from_a_view(server: ServerProcess) -> None:
    with member(server, "x") as (ws, _):
        ws.send("bad-name")
        assert ws.recv(timeout=5).startswith("ValueError: invalid group name 'no spaces allowed'")


def _timed_fan_out(server: ServerProcess, clients: list[ClientConnection], tag: str) -> float:
    """Send 2,000 messages of 4 KiB from a view; the time until every client has them all."""
    started = time.monotonic()
    result = send_from_view(server, "fast", n=2000, tag=tag, pad=4096)
    assert float(result["seconds"]) < 5.0  # type: ignore[arg-type]
    for ws in clients:
        received = receive_until(ws, {f"{tag} end"}, timeout=30)
        assert numbered(received, tag) == list(range(2000))
    return time.monotonic() - started


def test_a_slow_client_is_closed_with_1013_and_does_not_slow_the_others(
    server: ServerProcess,
) -> None:
    with member(server, "fast") as (a, _), member(server, "fast") as (b, _):
        baseline = _timed_fan_out(server, [a, b], "warm")
        slow = RawMember(server.port, "fast")  # joins, then reads nothing
        log_start = len(server.log())
        try:
            wait_for(lambda: local_members(server, "fast") == 3, what="the slow member")
            with_slow = _timed_fan_out(server, [a, b], "m")
            # The others got 8 MiB each at their usual pace while the slow one stalled.
            assert with_slow < max(5 * baseline, 3.0), (baseline, with_slow)
            wait_for_log(
                server, r"closing a WebSocket with 1013: \d+ messages were waiting", start=log_start
            )
            assert local_members(server, "fast") == 2
            # Now it reads: what the kernel buffered, in order, then the close frame.
            frames = slow.frames_until_end()
        finally:
            slow.close()
        opcode, payload = frames[-1]
        assert opcode == CLOSE, frames[-3:]
        assert struct.unpack("!H", payload[:2])[0] == 1013
        assert payload[2:] == b"too slow for its group messages"
        texts = [data.decode() for op, data in frames[:-1] if op == TEXT]
        got = numbered(texts, "m")
        assert got == list(range(len(got))) and len(got) < 2000, got[-3:]
        # The others are still members and still served.
        send_from_view(server, "fast", n=1, tag="still")
        for ws in (a, b):
            assert receive_until(ws, {"still end"}) == ["still 0", "still end"]


def test_a_client_that_never_reads_again_is_cut_off(server: ServerProcess) -> None:
    slow = RawMember(server.port, "stalled")
    try:
        log_start = len(server.log())
        send_from_view(server, "stalled", n=2000, tag="m", pad=4096)
        wait_for(lambda: local_members(server, "stalled") == 0, what="eviction")
        # WEBSOCKET_CLOSE_TIMEOUT is 2 s in the test project: then the connection is cut.
        wait_for_log(server, r"took no data for 2\.0 s .*connection aborted", start=log_start)
        frames = slow.frames_until_end()
        assert all(opcode == TEXT for opcode, _ in frames)  # no close frame could be sent
    finally:
        slow.close()
