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
from conftest import missing
from servers import (
    PostgresServer,
    ServerProcess,
    free_port,
    gunicorn_command,
    project_env,
)
from websockets.exceptions import ConnectionClosed
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
    command: Callable[[int], list[str]],
    postgres: PostgresServer,
    close: bool = True,
    clean_log: bool = True,
    **env: str,
) -> Iterator[ServerProcess]:
    port = free_port()
    close_setting = "1" if close else "0"
    environ = project_env(
        TEST_DB_PATH=":memory:", TEST_CLOSE_DB_CONNECTIONS=close_setting, **postgres.env(), **env
    )
    proc = ServerProcess(command(port), port, environ)
    try:
        yield proc
    finally:
        proc.stop()
    if clean_log:
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


@pytest.mark.parametrize("command", SERVERS)
def test_a_view_that_queries_after_waiting_lets_go_at_its_next_wait(
    postgres: PostgresServer, command: Callable[[int], list[str]]
) -> None:
    """/orm/each/ waits first (holding nothing), then queries per message, then waits again."""
    with _serving(command, postgres) as proc, contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(proc.url("/orm/each/"))) for _ in range(5)]
        _settles_at(postgres, 0)
        for round_ in range(3):
            for ws in sockets:
                ws.send(str(round_))
            for ws in sockets:
                assert str(ws.recv(timeout=10)).startswith(f"{round_}:")
            _settles_at(postgres, 0)


def test_conn_max_age_above_zero_keeps_waiting_views_connections(
    postgres: PostgresServer,
) -> None:
    """As CAVEATS.md says: a connection younger than CONN_MAX_AGE is not obsolete yet."""
    with _serving(_entrypoint, postgres, TEST_CONN_MAX_AGE="60") as proc:
        with contextlib.ExitStack() as stack:
            _open_after_a_query(proc, stack, "/orm/")
            _settles_at(postgres, SOCKETS)
        _settles_at(postgres, 0)  # closed when the sockets (and their greenlets) end


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


def _needs_djangos_pool() -> None:
    import django

    if django.VERSION < (5, 1):
        pytest.skip("Django's connection pool needs Django 5.1")
    try:
        import psycopg_pool  # noqa: F401
    except ImportError:
        missing("psycopg_pool is not installed: pip install psycopg-pool")


def test_with_djangos_pool_waiting_views_hand_their_connections_back(
    postgres: PostgresServer,
) -> None:
    """20 sockets share a pool of at most 4 connections: each view's goes back as it waits."""
    _needs_djangos_pool()
    serving = _serving(_entrypoint, postgres, TEST_DB_POOL="1")
    with serving as proc, contextlib.ExitStack() as stack:
        _open_after_a_query(proc, stack, "/orm/")  # all 20 answered: none starved
        held = _held(postgres)
        assert 1 <= len(held) <= 4, held
        assert set(held) <= {"idle"}, held
        with connect(proc.url("/orm/each/")) as ws:
            for i in range(5):
                ws.send(str(i))
                assert str(ws.recv(timeout=10)).startswith(f"{i}:")


def test_with_djangos_pool_and_the_setting_off_idle_views_starve_the_pool(
    postgres: PostgresServer,
) -> None:
    """What CAVEATS.md warns of: 4 idle sockets hold the pool; the fifth view fails (1011)."""
    _needs_djangos_pool()
    serving = _serving(_entrypoint, postgres, close=False, clean_log=False, TEST_DB_POOL="1")
    with serving as proc, contextlib.ExitStack() as stack:
        for _ in range(4):
            ws = stack.enter_context(connect(proc.url("/orm/")))
            ws.recv(timeout=10)
        with connect(proc.url("/orm/")) as fifth:
            with pytest.raises(ConnectionClosed):
                fifth.recv(timeout=10)  # the pool's 2 s timeout, then the view raises
            assert fifth.close_code == 1011
    assert "PoolTimeout" in proc.log()
