"""Groups across processes through Redis: a real redis-server, two kinds of server processes.

One server is the package's entrypoint, the other gunicorn with two gevent
workers: three processes, each with its own pub/sub connection.  Clients
connect to each of them, and messages are sent from plain views, from a
management command and across a Redis restart.

Needs ``redis-server`` (Debian's ``redis-server`` package) and redis-py:
skipped without them locally, a failure in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import (
    TESTS_DIR,
    ServerProcess,
    free_port,
    gunicorn_command,
    project_env,
    wait_for_port,
)
from test_groups import (
    assert_silent,
    member,
    numbered,
    receive_until,
    send_from_view,
    wait_for,
)
from test_groups_close import Browser, closed_with, count, member_views_ended, still_open
from websockets.sync.client import ClientConnection

PREFIX = "dwtest"
REDIS_SERVER = shutil.which("redis-server")


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: the Redis tests must run)", pytrace=False)
    pytest.skip(what)


class RedisServer:
    """``redis-server`` on a loopback port, as a child process that a test may restart."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.proc, timeout=10)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("redis-py is not installed: pip install 'django-websocket-wsgi[redis]'")
    if REDIS_SERVER is None:
        _missing("redis-server is not installed: apt-get install redis-server")
    assert REDIS_SERVER is not None
    server = RedisServer(REDIS_SERVER)
    server.start()
    yield server
    server.stop()


def groups_setting(redis_server: RedisServer) -> str:
    return json.dumps({"BACKEND": "redis", "URL": redis_server.url, "PREFIX": PREFIX})


@pytest.fixture(scope="module")
def servers(
    db_path: str, redis_server: RedisServer
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The entrypoint and gunicorn (two gevent workers), both with the Redis backend."""
    env = project_env(TEST_DB_PATH=db_path, TEST_GROUPS=groups_setting(redis_server))
    entrypoint_port, gunicorn_port = free_port(), free_port()
    entrypoint = ServerProcess(
        [sys.executable, "-m", "django_websocket", f"127.0.0.1:{entrypoint_port}"],
        entrypoint_port,
        env,
    )
    try:
        gunicorn = ServerProcess(
            gunicorn_command(gunicorn_port, "gevent", "--graceful-timeout", "3", workers=2),
            gunicorn_port,
            env,
        )
    except Exception:
        entrypoint.stop()
        raise
    # The master listens before its workers are up: wait until both answer.
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:
        status, body = gunicorn.http_get("/groups/state/?g=boot")
        assert status == 200, body
        pids.add(json.loads(body)["pid"])
        time.sleep(0.02)
    yield entrypoint, gunicorn
    gunicorn.stop()
    entrypoint.stop()


def members_on_every_worker(
    stack: contextlib.ExitStack,
    server: ServerProcess,
    name: str,
    workers: int = 2,
    cookie: str | None = None,
) -> list[tuple[ClientConnection, int]]:
    """One member on each of gunicorn's workers (connections to a worker already seen close)."""
    clients: dict[int, ClientConnection] = {}
    for _ in range(40):
        connection = contextlib.ExitStack()
        ws, pid = connection.enter_context(member(server, name, cookie=cookie))
        if pid in clients:
            connection.close()
            continue
        clients[pid] = ws
        stack.enter_context(connection)
        if len(clients) == workers:
            return [(ws, pid) for pid, ws in clients.items()]
    raise AssertionError(f"40 connections all went to the same {len(clients)} worker(s)")


def test_one_message_reaches_members_in_three_processes_once_and_in_order(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    entrypoint, gunicorn = servers
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(member(entrypoint, "everyone")) for _ in range(2)]
        clients += members_on_every_worker(stack, gunicorn, "everyone")
        assert len({pid for _, pid in clients}) == 3

        # Two senders at once, from plain views of two different processes.
        senders = [
            threading.Thread(
                target=send_from_view, args=(entrypoint, "everyone"), kwargs=dict(n=100, tag="a")
            ),
            threading.Thread(
                target=send_from_view,
                args=(gunicorn, "everyone"),
                kwargs=dict(n=100, tag="b", binary=1),
            ),
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        for ws, _ in clients:
            received = receive_until(ws, {"a end", "b end"})
            assert numbered(received, "a") == list(range(100))
            assert numbered(received, "b") == list(range(100))
            binary = [m for m in received if isinstance(m, bytes)]
            assert binary == [f"b {i}".encode() for i in range(100)]  # bytes arrive as binary
            assert len(received) == 202
        assert_silent(*(ws for ws, _ in clients))


def test_one_subscription_per_process_only_while_it_has_members(
    servers: tuple[ServerProcess, ServerProcess], redis_server: RedisServer
) -> None:
    import redis

    entrypoint, gunicorn = servers
    client = redis.Redis.from_url(redis_server.url)
    channel = f"{PREFIX}:group:subs"

    def subscribers() -> int:
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])

    try:
        with contextlib.ExitStack() as stack:
            for _ in range(3):
                stack.enter_context(member(entrypoint, "subs"))
            assert subscribers() == 1  # three sockets, one process
            members_on_every_worker(stack, gunicorn, "subs")
            assert subscribers() == 3
            pubsub_clients = client.client_list(_type="pubsub")
            assert len(pubsub_clients) == 3, pubsub_clients
        wait_for(lambda: subscribers() == 0, what="unsubscribed once no member is left")
    finally:
        client.close()


def manage(
    redis_server: RedisServer, db_path: str, *args: str, returncode: int = 0
) -> subprocess.CompletedProcess:
    """Run a management command of the test project against this Redis; check its status."""
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=str(TESTS_DIR),
        env=project_env(TEST_DB_PATH=db_path, TEST_GROUPS=groups_setting(redis_server)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == returncode, result.stderr
    return result


def test_a_management_command_reaches_sockets_of_running_servers(
    servers: tuple[ServerProcess, ServerProcess], redis_server: RedisServer, db_path: str
) -> None:
    entrypoint, gunicorn = servers
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(member(entrypoint, "cmd"))]
        clients += members_on_every_worker(stack, gunicorn, "cmd")
        result = manage(redis_server, db_path, "groups_send", "cmd", "--n", "20", "--tag", "cmd")
        assert result.stdout.strip() == "sent 20 to cmd"
        for ws, _ in clients:
            received = receive_until(ws, {"cmd end"})
            assert received == [f"cmd {i}" for i in range(20)] + ["cmd end"]
        assert_silent(*(ws for ws, _ in clients))


def test_close_from_a_management_command_reaches_every_process(
    servers: tuple[ServerProcess, ServerProcess], redis_server: RedisServer, db_path: str
) -> None:
    entrypoint, gunicorn = servers
    starts = {entrypoint: len(entrypoint.log()), gunicorn: len(gunicorn.log())}
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(member(entrypoint, "to-close"))]
        clients += members_on_every_worker(stack, gunicorn, "to-close")
        others = [ws for ws, _ in members_on_every_worker(stack, gunicorn, "stays")]
        assert len({pid for _, pid in clients}) == 3
        wait_for(lambda: count(entrypoint, "to-close") == 3, what="the count of 3")
        result = manage(
            redis_server,
            db_path,
            "websocket_close_group",
            "to-close",
            "--code",
            "4000",
            "--reason",
            "room closed",
        )
        assert result.stdout.strip() == "closed group to-close with 4000 'room closed'"
        for ws, _ in clients:
            assert closed_with(ws) == (4000, "room closed")
        for ws in others:
            still_open(ws)
        wait_for(lambda: count(gunicorn, "to-close") == 0, what="the count to drop to 0")
        assert count(gunicorn, "stays") == 2

        # A bad code is refused before anything is published.
        command = ("websocket_close_group", "to-close", "--code", "1006")
        result = manage(redis_server, db_path, *command, returncode=1)
        assert "1006 may not be sent" in result.stderr
    # Every view saw its socket closed with the code, in both servers.
    wait_for(lambda: member_views_ended(entrypoint, 4000, starts[entrypoint]) == 1)
    wait_for(lambda: member_views_ended(gunicorn, 4000, starts[gunicorn]) == 2)
    for server in (entrypoint, gunicorn):
        assert "Traceback" not in server.log()[starts[server] :]


def test_logout_in_one_process_closes_that_sessions_sockets_in_every_process(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    entrypoint, gunicorn = servers
    alice = Browser(gunicorn).login("alice")
    bob = Browser(gunicorn).login("bob")
    with contextlib.ExitStack() as stack:
        tabs = [ws for ws, _ in members_on_every_worker(stack, gunicorn, "r", cookie=alice.cookie)]
        tabs.append(stack.enter_context(member(entrypoint, "r", cookie=alice.cookie))[0])
        bobs = [ws for ws, _ in members_on_every_worker(stack, gunicorn, "r", cookie=bob.cookie)]
        # The logout request is served by the entrypoint: a third process.
        status, body = entrypoint.http_get("/logout/", headers={"Cookie": alice.cookie})
        assert (status, body) == (200, b"logged out")
        for ws in tabs:
            assert closed_with(ws) == (4401, "logged out")
        for ws in bobs:
            still_open(ws)


def test_count_across_processes_follows_joins_and_leaves(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    entrypoint, gunicorn = servers
    assert count(gunicorn, "census") == 0
    with contextlib.ExitStack() as stack:
        first, _ = stack.enter_context(member(entrypoint, "census"))
        assert count(gunicorn, "census") == 1  # written before add() returned
        clients = members_on_every_worker(stack, gunicorn, "census")
        assert count(entrypoint, "census") == count(gunicorn, "census") == 3
        clients[0][0].send("leave census")
        assert clients[0][0].recv(timeout=5) == "left census"
        assert count(entrypoint, "census") == 2
        clients[0][0].send("join census")
        assert clients[0][0].recv(timeout=5) == "joined census"
        assert count(entrypoint, "census") == 3
        first.close()
        wait_for(lambda: count(gunicorn, "census") == 2, what="the closed client to leave")
    wait_for(lambda: count(entrypoint, "census") == 0, what="everyone to leave")


def test_a_killed_worker_stops_being_counted_within_count_ttl(
    db_path: str, redis_server: RedisServer
) -> None:
    ttl = 1.5
    setting = json.dumps(
        {"BACKEND": "redis", "URL": redis_server.url, "PREFIX": "dwkill", "COUNT_TTL": ttl}
    )
    port = free_port()
    gunicorn = ServerProcess(
        gunicorn_command(port, "gevent", "--graceful-timeout", "3", workers=2),
        port,
        project_env(TEST_DB_PATH=db_path, TEST_GROUPS=setting),
    )
    try:
        with contextlib.ExitStack() as stack:
            clients = members_on_every_worker(stack, gunicorn, "doomed")
            assert count(gunicorn, "doomed") == 2
            # Longer than the TTL: the heartbeat keeps the live workers counted.
            time.sleep(ttl * 2)
            assert count(gunicorn, "doomed") == 2
            (_, pid), (survivor, _) = clients
            os.kill(pid, signal.SIGKILL)  # no goodbye: its count stays in Redis
            killed_at = time.monotonic()
            wait_for(lambda: count(gunicorn, "doomed") == 1, ttl + 3, "the dead worker's count")
            assert time.monotonic() - killed_at <= ttl + 1.0
            still_open(survivor)
    finally:
        gunicorn.stop()


def count_in_log(server: ServerProcess, pattern: str, start: int) -> list[re.Match[str]]:
    return list(re.finditer(pattern, server.log()[start:]))


LOST = r"Redis pub/sub connection to \S+ lost"
# The test project logs messages without their level; the level is checked below, in
# test_threaded_process_resubscribes_after_a_restart_and_warns.
BACK = (
    r"Redis pub/sub connection back after (\d+\.\d) s; messages published in that "
    r"time to 1 group\(s\) with members here \(restart\) were not delivered"
)


def test_redis_restart_the_service_resumes_and_the_gap_is_logged(
    servers: tuple[ServerProcess, ServerProcess], redis_server: RedisServer
) -> None:
    entrypoint, gunicorn = servers
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(member(entrypoint, "restart"))]
        clients += members_on_every_worker(stack, gunicorn, "restart")
        send_from_view(entrypoint, "restart", n=5, tag="before")
        for ws, _ in clients:
            assert numbered(receive_until(ws, {"before end"}), "before") == list(range(5))

        starts = {entrypoint: len(entrypoint.log()), gunicorn: len(gunicorn.log())}
        redis_server.stop(signal.SIGKILL)  # a crash: no goodbye
        down_at = time.monotonic()
        wait_for(lambda: count_in_log(entrypoint, LOST, starts[entrypoint]), what="entrypoint")
        wait_for(lambda: len(count_in_log(gunicorn, LOST, starts[gunicorn])) == 2, what="workers")

        # While Redis is down, sending fails loudly and joining does not hang.
        status, body = entrypoint.http_get("/groups/send/?g=restart&n=1&tag=lost")
        assert status == 503 and b"could not publish to group 'restart'" in body
        joined_at = time.monotonic()
        clients.append(stack.enter_context(member(entrypoint, "restart")))
        assert time.monotonic() - joined_at < 2.0

        time.sleep(max(0.0, 1.0 - (time.monotonic() - down_at)))
        redis_server.start()

        # Each process reconnects, subscribes again, and says for how long it was deaf.
        wait_for(lambda: count_in_log(entrypoint, BACK, starts[entrypoint]), 15, "entrypoint")
        wait_for(lambda: len(count_in_log(gunicorn, BACK, starts[gunicorn])) == 2, 15, "workers")
        for server in (entrypoint, gunicorn):
            for match in count_in_log(server, BACK, starts[server]):
                assert float(match[1]) >= 1.0, match[0]

        # The memberships survived: everyone gets what is sent now, the late joiner too.
        send_from_view(gunicorn, "restart", n=50, tag="after")
        for ws, _ in clients:
            received = receive_until(ws, {"after end"})
            assert received == [f"after {i}" for i in range(50)] + ["after end"]
        assert_silent(*(ws for ws, _ in clients))


# ----------------------------------------------------------------------
# A process without gevent (threads: runserver --no-gevent, gunicorn gthread): the
# test process itself, with a real WebSocket over a socket pair.


def test_threaded_process_resubscribes_after_a_restart_and_warns(
    django_settings: None, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    import redis
    from django.test import override_settings
    from servers import FrameReader

    from django_websocket import groups
    from django_websocket.groups._redis import READER_THREAD_NAME
    from django_websocket.protocol import ServerConnection
    from django_websocket.server.transport import Transport
    from django_websocket.server.websocket import WebSocket

    server_side, client_side = socket.socketpair()
    client_side.settimeout(10)
    frames = FrameReader(client_side)
    websocket = WebSocket(
        Transport(server_side, "socketpair", threaded=True), ServerConnection(), close_timeout=0.2
    )
    client = redis.Redis.from_url(redis_server.url)
    channel = f"{PREFIX}-threads:group:threads"

    def texts(count: int) -> list[str]:
        received = []
        for _ in range(count):
            opcode, _, payload = frames.frame()
            assert opcode == 0x1
            received.append(payload.decode())
        return received

    def reader_threads() -> int:
        return sum(t.name == READER_THREAD_NAME for t in threading.enumerate())

    setting = {"BACKEND": "redis", "URL": redis_server.url, "PREFIX": f"{PREFIX}-threads"}
    try:
        with override_settings(WEBSOCKET_GROUPS=setting), caplog.at_level("INFO"):
            groups.add("threads", websocket)
            assert client.pubsub_numsub(channel) == [(channel.encode(), 1)]
            for i in range(20):
                groups.send("threads", f"before {i}")
            assert texts(20) == [f"before {i}" for i in range(20)]

            redis_server.stop(signal.SIGKILL)
            wait_for(lambda: "lost" in caplog.text, what="the lost connection")
            with pytest.raises(groups.BackendUnavailable, match="could not publish"):
                groups.send("threads", "nobody gets this")
            time.sleep(0.5)
            redis_server.start()
            wait_for(lambda: "back after" in caplog.text, 15, "the reconnection")
            for i in range(20):
                groups.send("threads", f"after {i}")
            assert texts(20) == [f"after {i}" for i in range(20)]

            # A second socket joins and leaves: the reader keeps running for the first.
            other_side, other_client = socket.socketpair()
            other = WebSocket(
                Transport(other_side, "socketpair", threaded=True),
                ServerConnection(),
                close_timeout=0.2,
            )
            groups.add("threads", other)
            other_client.close()
            other.finish()
            other_side.close()
            assert groups.local_members("threads") == [websocket]
            assert reader_threads() == 1

            websocket.finish()  # the view returned: the socket leaves its groups
            wait_for(lambda: client.pubsub_numsub(channel) == [(channel.encode(), 0)])
            assert groups.local_members("threads") == []
            # No member left in this process: the reader closes its connection and ends.
            wait_for(lambda: reader_threads() == 0, what="the reader to end")

            # The next member starts a new one, and gets what is sent from then on.
            server_side.close()
            client_side.close()
            server_side, client_side = socket.socketpair()
            client_side.settimeout(10)
            frames = FrameReader(client_side)
            websocket = WebSocket(
                Transport(server_side, "socketpair", threaded=True),
                ServerConnection(),
                close_timeout=0.2,
            )
            groups.add("threads", websocket)
            assert reader_threads() == 1
            groups.send("threads", "again")
            assert texts(1) == ["again"]
            websocket.finish()
            wait_for(lambda: reader_threads() == 0, what="the second reader to end")
    finally:
        client.close()
        client_side.close()
        server_side.close()
    records = {r.getMessage().split(";")[0]: r.levelname for r in caplog.records}
    back = [(m, level) for m, level in records.items() if "back after" in m]
    assert back and all(level == "WARNING" for _, level in back), records
    lost = [(m, level) for m, level in records.items() if " lost " in m]
    assert lost and all(level == "WARNING" for _, level in lost), records


def test_threaded_process_close_and_count_through_redis(
    django_settings: None, redis_server: RedisServer
) -> None:
    """Without gevent: the reader thread gets the close request, the member's thread closes."""
    import struct

    from django.test import override_settings
    from test_groups_close import frames_until_close, threaded_websocket

    from django_websocket import groups

    setting = {"BACKEND": "redis", "URL": redis_server.url, "PREFIX": f"{PREFIX}-tclose"}
    with override_settings(WEBSOCKET_GROUPS=setting), threaded_websocket() as (ws, reader, _):
        groups.add("tclose", ws)  # type: ignore[arg-type]
        assert groups.count("tclose") == 1
        groups.send("tclose", "before")
        groups.close("tclose", 4000, "bye")
        frames = frames_until_close(reader)
        assert frames == [(0x1, b"before"), (0x8, struct.pack("!H", 4000) + b"bye")]
        wait_for(lambda: groups.count("tclose") == 0, what="the count to drop")
        assert ws.closed  # type: ignore[attr-defined]


# ----------------------------------------------------------------------
# A real browser: headless Chromium logs out in one tab; its sockets on both workers close.

OPEN_SOCKET = """
var done = arguments[arguments.length - 1];
window.sockets = window.sockets || [];
var record = {pid: null, code: null, reason: null};
window.sockets.push(record);
var ws = new WebSocket("ws://" + location.host + "/groups/member/?g=browser-tabs");
ws.onmessage = function (event) {
  if (record.pid === null) { record.pid = JSON.parse(event.data).pid; done(record.pid); }
};
ws.onclose = function (event) { record.code = event.code; record.reason = event.reason; };
"""


@pytest.mark.browser
def test_logout_in_a_browser_tab_closes_its_sockets_on_both_workers(
    servers: tuple[ServerProcess, ServerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legacy.test_legacy_browser import CHROMIUM_FLAGS, _browser_or_skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, chromedriver = _browser_or_skip()
    _, gunicorn = servers
    bob = Browser(gunicorn).login("bob")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "driver.log"))
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    driver = webdriver.Chrome(options=options, service=service)
    try:
        with contextlib.ExitStack() as stack:
            others = [
                ws
                for ws, _ in members_on_every_worker(
                    stack, gunicorn, "browser-tabs", cookie=bob.cookie
                )
            ]
            driver.get(gunicorn.url("/login/?user=alice", "http"))
            assert "logged in" in driver.page_source
            pids: set[int] = set()
            for _ in range(40):  # each worker takes connections as they come: open until both have
                pids.add(driver.execute_async_script(OPEN_SOCKET))
                if len(pids) == 2:
                    break
            assert len(pids) == 2, pids
            first_tab = driver.current_window_handle

            driver.switch_to.new_window("tab")  # same browser, same session
            driver.get(gunicorn.url("/logout/", "http"))
            assert "logged out" in driver.page_source
            driver.switch_to.window(first_tab)

            def closed() -> list[tuple[object, object, object]]:
                sockets = driver.execute_script("return window.sockets;")
                return [(s["pid"], s["code"], s["reason"]) for s in sockets]

            WebDriverWait(driver, 10, poll_frequency=0.05).until(
                lambda _: all(code is not None for _, code, _ in closed()), "sockets still open"
            )
            assert {(code, reason) for _, code, reason in closed()} == {(4401, "logged out")}
            assert {pid for pid, _, _ in closed()} == pids  # on both workers
            for ws in others:  # another user's sockets on the same workers
                still_open(ws)
    finally:
        driver.quit()
