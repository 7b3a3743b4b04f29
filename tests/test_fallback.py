"""Where the socket cannot be taken, nothing breaks: a clear HTTP error and a logged remedy."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from servers import ServerProcess, free_port, project_env, raw_connect
from websockets.sync.client import connect

UPGRADE_HEADERS = {
    "HTTP_UPGRADE": "websocket",
    "HTTP_CONNECTION": "Upgrade",
    "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
    "HTTP_SEC_WEBSOCKET_VERSION": "13",
}


@pytest.fixture(scope="module")
def django_client(django_settings: None):
    from django.test import Client

    return Client()


def test_test_client_upgrade_gets_501_and_view_not_run(django_client, caplog) -> None:
    from project.testapp import views

    views.EVENTS.clear()
    with caplog.at_level("ERROR", logger="django_websocket"):
        response = django_client.get("/echo/", **UPGRADE_HEADERS)
    assert response.status_code == 501
    assert b"python -m django_websocket" in response.content
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "does not expose the client socket" in errors[0].getMessage()
    assert "Remedy" in errors[0].getMessage()


def test_test_client_plain_requests_unaffected(django_client) -> None:
    assert django_client.get("/both/").content == b"plain http"
    assert django_client.get("/echo/").status_code == 400
    assert django_client.get("/plain/").content == b"plain ok"


def test_http2_request_gets_501_naming_http2(django_client, caplog) -> None:
    with caplog.at_level("ERROR", logger="django_websocket"):
        response = django_client.get("/echo/", SERVER_PROTOCOL="HTTP/2.0", **UPGRADE_HEADERS)
    assert response.status_code == 501
    assert "HTTP/2.0 carries no socket" in caplog.records[-1].getMessage()


def test_is_websocket_false_for_plain_requests(django_client) -> None:
    response = django_client.get("/undecorated/")
    assert response.content == b"plain undecorated"


def _run_server(kind: str, db_path: str) -> Iterator[ServerProcess]:
    """One of tests/run_server.py's server kinds, for a module's tests."""
    port = free_port()
    proc = ServerProcess(
        [sys.executable, "run_server.py", kind, str(port)], port, project_env(TEST_DB_PATH=db_path)
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def hidden_socket_server(db_path: str) -> Iterator[ServerProcess]:
    yield from _run_server("hidden-socket", db_path)


def test_real_server_hiding_its_socket(hidden_socket_server: ServerProcess) -> None:
    sock, head, rest = raw_connect(hidden_socket_server.port, "/echo/")
    body = rest
    with sock:
        sock.settimeout(5)
        while b"gevent's WSGIServer" not in body:
            chunk = sock.recv(4096)
            assert chunk, body
            body += chunk
    assert head.startswith(b"HTTP/1.1 501 ")
    assert b"cannot hand its connections to WebSocket views" in body
    # Plain HTTP on the same server is unaffected.
    assert hidden_socket_server.http_get("/plain/") == (200, b"plain ok")
    assert hidden_socket_server.http_get("/both/") == (200, b"plain http")
    log = hidden_socket_server.log()
    assert "hidden-socket/1.0 does not expose the client socket" in log
    assert "Not Implemented: /echo/" not in log  # no second, remedy-less error line
    assert "Traceback" not in log


@pytest.fixture(scope="module")
def stock_gevent_server(db_path: str) -> Iterator[ServerProcess]:
    yield from _run_server("stock-gevent", db_path)


def test_stock_gevent_server_echo(stock_gevent_server: ServerProcess) -> None:
    with connect(stock_gevent_server.url("/echo/")) as ws:
        ws.send("through gevent's own WSGIServer")
        assert ws.recv() == "through gevent's own WSGIServer"
