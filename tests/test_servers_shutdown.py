"""Graceful shutdown, end to end: the entrypoint, gunicorn (with this package's hooks), uWSGI.

On SIGTERM (or SIGINT) every open WebSocket receives every message its view
sent before the signal, then a close frame with 1001; each view sees the
close; the process exits 0 within its grace period.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from servers import (
    TESTS_DIR,
    UWSGI,
    UWSGI_MISSING,
    FrameReader,
    ServerProcess,
    client_frame,
    free_port,
    gunicorn_command,
    missing,
    open_ws,
    project_env,
    uwsgi_command,
)
from test_servers import error_lines

TEXT, CLOSE = 0x1, 0x8
GOING_AWAY = (1001).to_bytes(2, "big") + b"server shutting down"


def entrypoint(db_path: str, shutdown_timeout: float) -> ServerProcess:
    """``python -m django_websocket`` with ``--settings`` and ``--shutdown-timeout``."""
    port = free_port()
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "django_websocket",
            f"127.0.0.1:{port}",
            "--settings",
            "project.settings",
            "--shutdown-timeout",
            str(shutdown_timeout),
        ],
        port,
        project_env(TEST_DB_PATH=db_path, DJANGO_SETTINGS_MODULE=""),
    )


def websocket_state(server: ServerProcess) -> dict[str, int]:
    """The test view's count of open WebSocket views and of stream bursts sent."""
    status, body = server.http_get("/debug/websockets/")
    assert status == 200
    return json.loads(body)


def open_streams(
    server: ServerProcess, count: int, messages: int
) -> list[tuple[socket.socket, FrameReader]]:
    """Open ``count`` WebSockets whose views each send ``messages`` messages at once.

    Returns once every message has reached the client's socket buffer (seen
    with ``MSG_PEEK``), but none has been read: they were all sent before
    any signal the test sends next.
    """
    expected = sum(2 + len(f"message {i}") for i in range(messages))
    clients = [open_ws(server.port, f"/stream/?n={messages}") for _ in range(count)]
    deadline = time.monotonic() + 20
    for sock, reader in clients:
        while len(reader.buffer) < expected:
            if len(reader.buffer) + len(sock.recv(65536, socket.MSG_PEEK)) >= expected:
                break
            assert time.monotonic() < deadline, "the views did not all send their messages"
            time.sleep(0.01)
    return clients


def assert_all_messages_then_going_away(
    clients: list[tuple[socket.socket, FrameReader]], messages: int
) -> None:
    """Each client gets all its messages, then 1001; it answers; then nothing but EOF."""
    for sock, reader in clients:
        for i in range(messages):
            assert reader.frame() == (TEXT, True, f"message {i}".encode())
        assert reader.frame() == (CLOSE, True, GOING_AWAY)
        sock.sendall(client_frame(CLOSE, GOING_AWAY[:2]))
    for sock, reader in clients:
        with sock:
            assert reader.rest_until_eof(timeout=10) == b""


def wait_exit(server: ServerProcess, timeout: float) -> tuple[int, float]:
    """Wait for the process to exit; return its status and how long that took."""
    started = time.monotonic()
    try:
        code = server.proc.wait(timeout)
    except Exception:
        server.proc.kill()
        raise
    return code, time.monotonic() - started


# ----------------------------------------------------------------------
# The package's entrypoint


def test_entrypoint_closes_200_websockets_with_1001_and_exits_0(db_path: str) -> None:
    """200 clients: every message sent before SIGTERM, then 1001; every view sees it; exit 0."""
    server = entrypoint(db_path, shutdown_timeout=8)
    try:
        clients = open_streams(server, 200, messages=5)
        assert websocket_state(server)["open"] == 200
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # It stops accepting at once.
        deadline = signalled + 2
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < deadline, "still accepting after SIGTERM"
            time.sleep(0.02)
        assert_all_messages_then_going_away(clients, messages=5)
        code, _ = wait_exit(server, 8)
        assert code == 0
        assert time.monotonic() - signalled < 8  # within the shutdown timeout
    finally:
        server.stop()
    log = server.log()
    assert "Shutting down: closing 200 open WebSocket(s)" in log
    assert log.count("stream view saw the close: code 1001") == 200  # every view saw it
    assert "still running" not in log
    assert error_lines(log) == [], log


def test_entrypoint_stops_a_view_that_ignores_the_close_at_the_timeout(db_path: str) -> None:
    """A view still running at the shutdown timeout is stopped; its WebSocket closed properly."""
    server = entrypoint(db_path, shutdown_timeout=1.5)
    try:
        lingering = open_ws(server.port, "/linger/")
        streaming = open_streams(server, 1, messages=2)
        assert websocket_state(server)["open"] == 2
        server.proc.send_signal(signal.SIGINT)
        sock, reader = lingering
        with sock:
            # The connection is closed properly even though its view keeps running.
            assert reader.frame() == (CLOSE, True, GOING_AWAY)
            sock.sendall(client_frame(CLOSE, GOING_AWAY[:2]))
            assert reader.rest_until_eof() == b""
        assert_all_messages_then_going_away(streaming, messages=2)
        code, waited = wait_exit(server, 10)
        assert code == 0
        # Within the 1.5 s shutdown timeout (plus the interpreter's own exit).
        assert 0.5 < waited < 2.5, waited
    finally:
        server.stop()
    log = server.log()
    assert "1 WebSocket view(s) still running at the 1.5 s shutdown timeout; stopping them" in log
    assert "WebSocket view for /linger/ stopped at shutdown" in log
    assert error_lines(log) == [], log


def test_entrypoint_finishes_http_requests_in_flight_and_ends_idle_keepalive(
    db_path: str,
) -> None:
    """An HTTP request in flight gets its response; an idle keep-alive connection ends at once."""
    server = entrypoint(db_path, shutdown_timeout=5)
    try:
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        idle.sendall(b"GET /plain/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = b""
        while not response.endswith(b"plain ok"):
            chunk = idle.recv(4096)
            assert chunk, response
            response += chunk
        assert b"Connection: close" not in response  # kept alive, now idle

        slow: dict[str, object] = {}

        def slow_request() -> None:
            with urllib.request.urlopen(server.url("/slow/?s=1", "http"), timeout=10) as resp:
                slow["result"] = (resp.status, resp.read())

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.3)  # the slow request is in its view
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        with idle:
            idle.settimeout(3)
            assert idle.recv(4096) == b""  # the idle connection is ended at once
        assert time.monotonic() - signalled < 1.5
        thread.join(10)
        assert slow["result"] == (200, b"slow done")
        code, _ = wait_exit(server, 10)
        assert code == 0
        assert time.monotonic() - signalled < 3.5  # not the whole 5 s
    finally:
        server.stop()
    assert error_lines(server.log()) == [], server.log()


# ----------------------------------------------------------------------
# gunicorn workers, with django_websocket.server.gunicorn_hooks in the config file

GUNICORN_CONF = str(TESTS_DIR / "gunicorn_conf_websockets.py")


@pytest.mark.parametrize(
    ("worker_class", "options", "connections", "signum"),
    [
        ("gevent", ("--worker-connections", "100"), 20, signal.SIGTERM),
        ("gevent", ("--worker-connections", "100"), 20, signal.SIGINT),
        ("gthread", ("--threads", "4"), 3, signal.SIGTERM),
        ("sync", (), 1, signal.SIGTERM),
    ],
    ids=["gevent-SIGTERM", "gevent-SIGINT", "gthread-SIGTERM", "sync-SIGTERM"],
)
def test_gunicorn_hooks_close_websockets_with_1001(
    db_path: str, worker_class: str, options: tuple[str, ...], connections: int, signum: int
) -> None:
    """With the hooks, gunicorn workers close WebSockets with 1001 on SIGTERM and SIGINT."""
    port = free_port()
    server = ServerProcess(
        gunicorn_command(port, worker_class, "--config", GUNICORN_CONF, *options),
        port,
        project_env(TEST_DB_PATH=db_path),
    )
    try:
        clients = open_streams(server, connections, messages=3)
        server.proc.send_signal(signum)
        signalled = time.monotonic()
        assert_all_messages_then_going_away(clients, messages=3)
        code, _ = wait_exit(server, 10)
        assert code == 0
        # graceful_timeout is 5 s in the config; the views end long before.
        assert time.monotonic() - signalled < 4
    finally:
        server.stop()
    log = server.log()
    assert f"Closing {connections} open WebSocket(s) with 1001 (going away)" in log, log
    assert log.count("stream view saw the close: code 1001") == connections, log
    assert error_lines(log) == [], log


# ----------------------------------------------------------------------
# A client that stops reading does not hold the shutdown


def _start(kind: str, db_path: str) -> ServerProcess:
    if kind == "entrypoint":
        return entrypoint(db_path, shutdown_timeout=8)
    port = free_port()
    return ServerProcess(
        gunicorn_command(port, "gevent", "--config", GUNICORN_CONF),
        port,
        project_env(TEST_DB_PATH=db_path),
    )


@pytest.mark.parametrize(
    ("kind", "within"),
    [("entrypoint", 5.0), ("gunicorn-gevent", 4.5)],
    ids=["entrypoint", "gunicorn-gevent"],
)
def test_shutdown_aborts_a_client_that_does_not_read(
    db_path: str, kind: str, within: float
) -> None:
    """One client stops reading while its view sends: it cannot even take the close frame.

    The others still get every message and 1001; that one's connection is
    cut once the close timeout (2 s in the test settings; gunicorn: at most
    half its 5 s graceful timeout) has passed, and the process exits well
    within its bound (--shutdown-timeout 8; graceful_timeout 5) instead of
    waiting it out.
    """
    server = _start(kind, db_path)
    try:
        stuck, _ = open_ws(server.port, "/firehose/")
        clients = open_streams(server, 3, messages=2)
        time.sleep(1)  # the firehose view fills the buffers and blocks in send
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert_all_messages_then_going_away(clients, messages=2)
        code, _ = wait_exit(server, 15)
        waited = time.monotonic() - signalled
        assert code == 0
        assert waited < within, waited  # the abort, not the whole bound, ended it
        with stuck:
            stuck.settimeout(10)
            tail = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := stuck.recv(1 << 20):
                    tail = (tail + chunk)[-64:]  # the view's messages, then the end
            assert b"server shutting down" not in tail  # it never got to the close frame
    finally:
        server.stop()
    log = server.log()
    assert "firehose view ended" in log, log
    assert log.count("stream view saw the close: code 1001") == 3, log
    if kind == "entrypoint":
        assert "Aborting 1 WebSocket(s) not closed within 2.0 s of the close frame" in log, log
    assert error_lines(log) == [], log


# ----------------------------------------------------------------------
# uWSGI's gevent loop, from the ini file docs/deployment.md shows


@pytest.mark.parametrize(
    ("router", "stop"),
    [(False, "SIGTERM"), (False, "SIGINT"), (True, "fifo-q")],
    ids=["http-socket-SIGTERM", "http-socket-SIGINT", "router-fifo-q"],
)
def test_uwsgi_gevent_closes_websockets_with_1001(
    db_path: str, tmp_path: Path, router: bool, stop: str
) -> None:
    """A stopping uWSGI worker closes every WebSocket with 1001 after its messages; exit 0.

    With the HTTP router in front, the master kills the router at once on
    SIGTERM or SIGINT, so only the master FIFO's graceful stop (``q``) lets
    the close frames through (docs/deployment.md).
    """
    if UWSGI is None:
        missing(UWSGI_MISSING)
    fifo = tmp_path / "master.fifo"
    port = free_port()
    server = ServerProcess(
        uwsgi_command(port, "gevent", "router" if router else "http-socket", master_fifo=str(fifo)),
        port,
        project_env(TEST_DB_PATH=db_path),
    )
    try:
        clients = open_streams(server, 5, messages=3)
        signalled = time.monotonic()
        if stop == "fifo-q":
            fifo.write_text("q")
        else:
            server.proc.send_signal(getattr(signal, stop))
        assert_all_messages_then_going_away(clients, messages=3)
        code, _ = wait_exit(server, 10)
        assert code == 0
        assert time.monotonic() - signalled < 4
    finally:
        server.stop()
    log = server.log()
    assert "uWSGI worker stopping: closing 5 open WebSocket(s) with 1001" in log, log
    assert log.count("stream view saw the close: code 1001") == 5, log
    assert error_lines(log) == [], log


def test_uwsgi_gevent_reload_closes_websockets_with_1001_and_serves_again(db_path: str) -> None:
    """SIGHUP (a graceful reload): WebSockets get 1001, then the new worker serves WebSockets."""
    if UWSGI is None:
        missing(UWSGI_MISSING)
    port = free_port()
    server = ServerProcess(uwsgi_command(port, "gevent"), port, project_env(TEST_DB_PATH=db_path))
    try:
        clients = open_streams(server, 3, messages=2)
        server.proc.send_signal(signal.SIGHUP)
        assert_all_messages_then_going_away(clients, messages=2)
        deadline = time.monotonic() + 15
        while True:  # the reloaded worker serves again
            try:
                again = open_streams(server, 1, messages=1)
                break
            except (OSError, AssertionError, EOFError):
                assert time.monotonic() < deadline, server.log()
                time.sleep(0.2)
        sock, reader = again[0]
        with sock:
            assert reader.frame() == (TEXT, True, b"message 0")
        assert server.proc.poll() is None
    finally:
        server.stop()
    log = server.log()
    assert log.count("stream view saw the close: code 1001") == 3, log
    assert error_lines(log) == [], log


def test_uwsgi_threads_stop_drops_websockets_without_a_close_frame(db_path: str) -> None:
    """The documented limit of uWSGI's threads (CAVEATS.md): on SIGTERM the worker ends from C
    without running Python, so open WebSockets drop (1006), quickly and without an error line."""
    if UWSGI is None:
        missing(UWSGI_MISSING)
    port = free_port()
    server = ServerProcess(uwsgi_command(port, "threads"), port, project_env(TEST_DB_PATH=db_path))
    try:
        clients = open_streams(server, 2, messages=2)
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        for sock, reader in clients:
            with sock:
                for i in range(2):
                    assert reader.frame() == (TEXT, True, f"message {i}".encode())
                with contextlib.suppress(ConnectionResetError):
                    assert reader.rest_until_eof(timeout=5) == b""  # no close frame
        code, _ = wait_exit(server, 10)
        assert code == 0
        assert time.monotonic() - signalled < 4
    finally:
        server.stop()
    log = server.log()
    assert "saw the close" not in log, log
    assert error_lines(log) == [], log
