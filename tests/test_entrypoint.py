"""The entrypoint's command line: ``python -m django_websocket``, ``django-websocket-wsgi``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from servers import TESTS_DIR, ServerProcess, free_port, project_env
from websockets.sync.client import connect

from django_websocket.__main__ import SCRIPT, parse_addrport


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8000", ("127.0.0.1", 8000)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("localhost:9000", ("localhost", 9000)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_parse_addrport(value: str, expected: tuple[str, int]) -> None:
    assert parse_addrport(value) == expected


@pytest.mark.parametrize("value", ["", "abc", "1.2.3.4:", ":80", "70000", "host:port", "[::1]"])
def test_parse_addrport_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_addrport(value)


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django_websocket", *args],
        cwd=str(TESTS_DIR),
        env=project_env(TEST_DB_PATH=":memory:", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_address_is_a_usage_error() -> None:
    result = _run("not-a-port")
    assert result.returncode == 2
    assert "'not-a-port' is not PORT or ADDR:PORT" in result.stderr


def test_missing_settings_is_a_usage_error() -> None:
    result = _run("8000", DJANGO_SETTINGS_MODULE="")
    assert result.returncode == 2
    assert "no settings" in result.stderr


def test_port_in_use_exits_1_with_a_message() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_serves(db_path: str) -> None:
    script = Path(sys.executable).parent / SCRIPT
    assert SCRIPT == "django-websocket-wsgi"  # the distribution's own name
    assert script.exists(), f"the {SCRIPT} console script is not installed"
    port = free_port()
    proc = ServerProcess(
        [str(script), f"127.0.0.1:{port}", "--settings", "project.settings"],
        port,
        project_env(TEST_DB_PATH=db_path),
    )
    try:
        with connect(proc.url("/echo/")) as ws:
            ws.send("console script")
            assert ws.recv() == "console script"
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize(
    ("debug", "options", "served"),
    [
        ("1", (), True),
        ("1", ("--nostatic",), False),
        ("0", (), False),
        ("0", ("--insecure",), True),
    ],
    ids=["debug", "debug-nostatic", "no-debug", "no-debug-insecure"],
)
def test_static_files_as_runserver_serves_them(
    db_path: str, debug: str, options: tuple[str, ...], served: bool
) -> None:
    """With staticfiles installed: STATIC_URL is served in DEBUG (or with --insecure), as by
    runserver, and WebSockets still pass through."""
    port = free_port()
    proc = ServerProcess(
        [sys.executable, "-m", "django_websocket", f"127.0.0.1:{port}", *options],
        port,
        project_env(TEST_DB_PATH=db_path, TEST_STATIC="1", TEST_DEBUG=debug),
    )
    try:
        status, body = proc.http_get("/static/testapp/hello.txt")
        if served:
            assert (status, body) == (200, b"hello from a static file\n")
        else:
            assert status == 404
        with connect(proc.url("/echo/")) as ws:
            ws.send("through the static handler")
            assert ws.recv() == "through the static handler"
    finally:
        assert proc.stop() == 0
