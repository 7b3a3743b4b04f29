"""Idle WebSockets hold no PostgreSQL connection (WEBSOCKET_CLOSE_DB_CONNECTIONS).

Real servers (the package's entrypoint and gunicorn -k gevent, greenlet per
connection; runserver --no-gevent, thread per connection) against a real
PostgreSQL server; what is counted is what an operator counts:
``pg_stat_activity``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from servers import (
    PostgresServer,
    ServerProcess,
    free_port,
    gunicorn_command,
    project_env,
)
from websockets.sync.client import ClientConnection, connect

SOCKETS = 20


def _entrypoint(port: int) -> list[str]:
    return [sys.executable, "-m", "django_websocket", f"127.0.0.1:{port}"]


def _gunicorn_gevent(port: int) -> list[str]:
    return gunicorn_command(port, "gevent", "--worker-connections", "100")


def _runserver_threads(port: int) -> list[str]:
    address = f"127.0.0.1:{port}"
    return [sys.executable, "-m", "django", "runserver", address, "--noreload", "--no-gevent"]


SERVERS = [
    pytest.param(_entrypoint, id="entrypoint"),
    pytest.param(_gunicorn_gevent, id="gunicorn-gevent"),
    pytest.param(_runserver_threads, id="runserver-threads"),
]


@contextlib.contextmanager
def _serving(
    command: Callable[[int], list[str]], postgres: PostgresServer, close: bool = True
) -> Iterator[ServerProcess]:
    port = free_port()
    env = project_env(
        TEST_DB_PATH=":memory:", TEST_CLOSE_DB_CONNECTIONS="1" if close else "0", **postgres.env()
    )
    proc = ServerProcess(command(port), port, env)
    try:
        yield proc
    finally:
        proc.stop()
    log = proc.log()
    assert "Traceback" not in log, log
    assert "ERROR" not in log, log


def _held(postgres: PostgresServer) -> list[str]:
    """The states of the server's connections to the test database (ours excluded)."""
    rows = postgres.execute(
        "SELECT state FROM pg_stat_activity "
        f"WHERE datname = '{postgres.NAME}' AND pid <> pg_backend_pid()"
    )
    return sorted(str(row[0]) for row in rows)


def _settles_at(postgres: PostgresServer, expected: int, timeout: float = 10.0) -> list[str]:
    """Wait until the server holds ``expected`` connections, then check it stays there."""
    deadline = time.monotonic() + timeout
    while len(held := _held(postgres)) != expected:
        assert time.monotonic() < deadline, f"{len(held)} connections held, not {expected}"
        time.sleep(0.05)
    time.sleep(0.5)
    held = _held(postgres)
    assert len(held) == expected, held
    return held


def _open_after_a_query(proc: ServerProcess, stack: contextlib.ExitStack, path: str) -> None:
    """Open ``SOCKETS`` sockets whose views have each run a query and now wait in receive()."""
    sockets: list[ClientConnection] = []
    for _ in range(SOCKETS):
        sockets.append(stack.enter_context(connect(proc.url(path), open_timeout=10)))
    for ws in sockets:
        ws.recv(timeout=10)  # the query's answer: the view has used its connection


@pytest.mark.parametrize("command", SERVERS)
@pytest.mark.parametrize("close", [True, False], ids=["default", "setting-off"])
def test_idle_sockets_hold_no_database_connection(
    postgres: PostgresServer, command: Callable[[int], list[str]], close: bool
) -> None:
    """20 sockets whose views ran a query, then wait: none held; 20 with the setting off."""
    with _serving(command, postgres, close=close) as proc:
        with contextlib.ExitStack() as stack:
            _open_after_a_query(proc, stack, "/orm/")
            held = _settles_at(postgres, 0 if close else SOCKETS)
            assert set(held) <= {"idle"}, held  # none left in a transaction
        _settles_at(postgres, 0)  # the sockets are gone: so are their connections


def test_the_decorator_option_keeps_the_connection(postgres: PostgresServer) -> None:
    with _serving(_entrypoint, postgres) as proc:
        with contextlib.ExitStack() as stack:
            _open_after_a_query(proc, stack, "/orm/keeps-connection/")
            _settles_at(postgres, SOCKETS)
            # One query answered per message, on the connection the view keeps.
            with connect(proc.url("/orm/each/")) as ws:
                ws.send("x")
                assert ws.recv(timeout=10).startswith("x:")
                _settles_at(postgres, SOCKETS)  # /orm/each/ let go of its own
        _settles_at(postgres, 0)


@pytest.mark.parametrize("command", SERVERS)
def test_a_transaction_survives_a_wait_in_receive(
    postgres: PostgresServer, command: Callable[[int], list[str]]
) -> None:
    """A view waiting inside transaction.atomic() keeps its connection and its transaction."""
    with _serving(command, postgres) as proc:
        with connect(proc.url("/orm/atomic-wait/")) as ws, connect(proc.url("/orm/")) as other:
            word, pid = str(ws.recv(timeout=10)).split()
            assert word == "waiting"
            other.recv(timeout=10)  # another view queried and now waits too
            assert _settles_at(postgres, 1) == ["idle in transaction"]
            ws.send("go on")
            assert ws.recv(timeout=10) == f"after {pid} True True"
            _settles_at(postgres, 0)  # the view waits again, its transaction over
        _settles_at(postgres, 0)
