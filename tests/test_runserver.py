"""``manage.py runserver`` serves WebSockets: under gevent by default, threaded with --no-gevent."""

from __future__ import annotations

import contextlib
import sys
import time

import pytest
from servers import (
    FrameReader,
    PostgresServer,
    ServerProcess,
    client_frame,
    free_port,
    project_env,
    raw_connect,
)
from websockets.sync.client import connect


def _runserver(db_path: str, *options: str, env: dict[str, str] | None = None) -> ServerProcess:
    port = free_port()
    return ServerProcess(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", *options],
        port,
        project_env(TEST_DB_PATH=db_path, **(env or {})),
    )


@pytest.mark.parametrize("options", [("--noreload",), ()], ids=["noreload", "autoreload"])
def test_runserver_gevent(db_path: str, options: tuple[str, ...]) -> None:
    proc = _runserver(db_path, *options)
    try:
        with connect(proc.url("/echo/")) as ws:
            ws.send("via runserver")
            assert ws.recv() == "via runserver"
        assert proc.http_get("/plain/") == (200, b"plain ok")
        time.sleep(0.3)
        log = proc.log()
        assert '"GET /echo/ HTTP/1.1" 101' in log
        assert "one thread per connection" not in log  # gevent, not threads
    finally:
        proc.stop()


def test_runserver_no_gevent_threaded(db_path: str) -> None:
    proc = _runserver(db_path, "--noreload", "--no-gevent")
    try:
        sock, head, rest = raw_connect(proc.port, "/echo/")
        reader = FrameReader(sock, rest)
        with sock:
            assert head.startswith(b"HTTP/1.1 101 ")
            sock.sendall(client_frame(0x1, b"threaded"))
            assert reader.frame() == (0x1, True, b"threaded")
            sock.sendall(client_frame(0x8, (1000).to_bytes(2, "big")))
            assert reader.frame() == (0x8, True, (1000).to_bytes(2, "big"))
            assert reader.rest_until_eof() == b""  # nothing after the close frame
        assert proc.http_get("/plain/") == (200, b"plain ok")
        time.sleep(0.3)
        log = proc.log()
        assert log.count("one thread per connection") == 1
        assert "Traceback" not in log
    finally:
        proc.stop()


def _open_connections(proc: ServerProcess, postgres: PostgresServer | None) -> int:
    """How many database connections the server holds open now."""
    if postgres is not None:
        rows = postgres.execute(
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE datname = '{postgres.NAME}' AND pid <> pg_backend_pid()"
        )
        return int(rows[0][0])  # type: ignore[call-overload]
    status, body = proc.http_get("/debug/database-files/")
    assert status == 200, body
    return int(body)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.parametrize("options", [("--noreload",), ()], ids=["noreload", "autoreload"])
def test_runserver_gevent_gives_each_greenlet_its_own_database_connection(
    request: pytest.FixtureRequest, db_path: str, options: tuple[str, ...], database: str
) -> None:
    """Three WebSocket sessions and plain views query the database, interleaved.

    A file SQLite database, and PostgreSQL through psycopg 3 (which waits
    cooperatively under gevent).  Each greenlet gets its own connection (no
    "DatabaseWrapper objects created in a thread can only be used in that
    same thread"), and every connection is closed once its request or
    session ends.  The sessions keep their connections while they wait
    (WEBSOCKET_CLOSE_DB_CONNECTIONS off), so that three are open at once;
    tests/test_database_connections.py covers letting go of them.
    """
    postgres: PostgresServer | None = None
    if database == "postgres":
        postgres = request.getfixturevalue("postgres")
    env = {"TEST_CLOSE_DB_CONNECTIONS": "0", **(postgres.env() if postgres else {})}
    proc = _runserver(db_path, *options, env=env)
    try:
        with contextlib.ExitStack() as stack:
            sockets = [stack.enter_context(connect(proc.url("/orm/each/"))) for _ in range(3)]
            for round_ in range(3):
                for i, ws in enumerate(sockets):
                    ws.send(f"{i}.{round_}")
                for i, ws in enumerate(sockets):
                    answer = ws.recv(timeout=10)
                    assert isinstance(answer, str) and answer.startswith(f"{i}.{round_}:"), answer
                status, body = proc.http_get("/orm/plain/")
                assert status == 200 and body.startswith(b"users:"), (status, body)
            assert _open_connections(proc, postgres) >= 3  # one per session, at least
        deadline = time.monotonic() + 10
        while _open_connections(proc, postgres) != 0:
            assert time.monotonic() < deadline, "database connections left open"
            time.sleep(0.1)
        log = proc.log()
        assert "can only be used in that same thread" not in log, log
        assert "Traceback" not in log, log
    finally:
        proc.stop()
