"""The pytest-django fixture ``websocket_live_server``, written as a user would write them.

``test_testing.py`` runs this module under pytest-django in a process of its
own (``pytest -p django --ds project.settings``); the main run skips it.
"""

from __future__ import annotations

import os

import pytest

if not os.environ.get("DJANGO_WEBSOCKET_TESTING_RUN"):
    pytest.skip("run by test_testing.py under pytest-django", allow_module_level=True)

from django_websocket.testing import HandshakeRefused, LiveWebSocketServer

pytest_plugins = ["django_websocket.testing.pytest_plugin"]


def test_echo(websocket_live_server: LiveWebSocketServer) -> None:
    with websocket_live_server.connect("/echo/") as ws:
        ws.send("hello")
        assert ws.receive() == "hello"
        ws.send_json({"n": 1})
        assert ws.receive_json() == {"n": 1}


def test_login_with_the_client_fixture(
    websocket_live_server: LiveWebSocketServer, client: object, django_user_model: object
) -> None:
    user = django_user_model.objects.create(username="ann")  # type: ignore[attr-defined]
    client.force_login(user)  # type: ignore[attr-defined]
    with websocket_live_server.connect("/whoami/", cookies=client.cookies) as ws:  # type: ignore[attr-defined]
        assert ws.receive() == "ann"


def test_login_with_user(
    websocket_live_server: LiveWebSocketServer, django_user_model: object
) -> None:
    bob = django_user_model.objects.create(username="bob")  # type: ignore[attr-defined]
    with websocket_live_server.connect("/whoami/", user=bob) as ws:
        assert ws.receive() == "bob"


def test_refused(websocket_live_server: LiveWebSocketServer) -> None:
    with pytest.raises(HandshakeRefused, match=r"^403 Forbidden: origin 'http://evil\.example'"):
        websocket_live_server.connect("/echo/", origin="http://evil.example")


def test_database_is_transactional_and_flushed(
    websocket_live_server: LiveWebSocketServer, django_user_model: object
) -> None:
    # No user is left from the tests above: the tables were flushed.
    django_user_model.objects.create(username="only")  # type: ignore[attr-defined]
    with websocket_live_server.connect("/orm/") as ws:
        assert ws.receive_json() == {"in_atomic": False, "users": 1}


def test_server_close(websocket_live_server: LiveWebSocketServer) -> None:
    ws = websocket_live_server.connect("/server-close/")
    assert ws.receive() == "bye"
    assert ws.wait_closed() == 4001
    assert ws.close_reason == "done here"
