"""WebSocketLiveServerTestCase against the test project, written as a user would write them.

``test_testing.py`` runs this module three ways, each in a process of its own:
plain pytest, pytest-django, and ``python -m django test test_testing_cases``
(from ``tests/``, with ``DJANGO_SETTINGS_MODULE=project.settings``).  The
main pytest run skips it, since pytest-django (when installed but not
configured) would meddle with Django test cases there.
"""

from __future__ import annotations

import os
import sys
import time
import unittest
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import include, path

from django_websocket import require_websocket
from django_websocket.testing import (
    ConnectionClosed,
    HandshakeRefused,
    WebSocketLiveServerTestCase,
)

if "pytest" in sys.modules:
    import pytest

    if not os.environ.get("DJANGO_WEBSOCKET_TESTING_RUN"):
        pytest.skip(
            "run by test_testing.py (plain pytest, pytest-django, manage.py test)",
            allow_module_level=True,
        )

    @pytest.fixture(scope="module", autouse=True)
    def _test_databases(request: pytest.FixtureRequest) -> Iterator[None]:
        """Under plain pytest, make the test databases as ``manage.py test`` does."""
        if request.config.pluginmanager.hasplugin("django"):
            yield  # pytest-django makes them
            return
        import django
        from django.test.utils import (
            setup_databases,
            setup_test_environment,
            teardown_databases,
            teardown_test_environment,
        )

        django.setup()
        setup_test_environment()
        config = setup_databases(verbosity=0, interactive=False)
        yield
        teardown_databases(config, verbosity=0)
        teardown_test_environment()


@require_websocket
def ignores_close(request: Any) -> None:
    """Keep running (cooperatively) after the client has gone."""
    import gevent

    for _ in request.websocket:
        pass
    gevent.sleep(30)


@require_websocket
def header(request: Any) -> None:
    """Send back the X-Test request header."""
    request.websocket.send(request.META.get("HTTP_X_TEST", "(missing)"))


urlpatterns = [
    path("ignores-close/", ignores_close),
    path("header/", header),
    path("", include("project.urls")),
]


class MessageTests(WebSocketLiveServerTestCase):
    def test_echo(self) -> None:
        with self.websocket_connect("/echo/") as ws:
            ws.send("hello")
            self.assertEqual(ws.receive(), "hello")
            ws.send(b"\x00\x01")
            self.assertEqual(ws.receive(), b"\x00\x01")
            self.assertTrue(ws.receive_nothing(0.1))

    def test_json_helpers(self) -> None:
        with self.websocket_connect("/echo/") as ws:
            ws.send_json({"type": "message", "text": "hi", "n": [1, 2]})
            self.assertEqual(ws.receive_json(), {"type": "message", "text": "hi", "n": [1, 2]})
            ws.send("not json")
            with self.assertRaisesMessage(
                AssertionError, "the message from /echo/ is not JSON: 'not json'"
            ):
                ws.receive_json()

    def test_subprotocol(self) -> None:
        with self.websocket_connect("/subprotocol/", subprotocols=["chat.v1", "chat.v2"]) as ws:
            self.assertEqual(ws.subprotocol, "chat.v2")  # the server's preference
            self.assertEqual(ws.receive(), "chat.v2")
        with self.websocket_connect("/subprotocol/") as ws:
            self.assertIsNone(ws.subprotocol)
            self.assertEqual(ws.receive(), "none")

    def test_timeout_says_what_was_awaited(self) -> None:
        with self.websocket_connect("/subprotocol/") as ws:
            ws.receive()
            started = time.monotonic()
            with self.assertRaisesMessage(
                TimeoutError, "no message from /subprotocol/ within 0.3 s"
            ):
                ws.receive(timeout=0.3)
            self.assertGreaterEqual(time.monotonic() - started, 0.3)


class CloseTests(WebSocketLiveServerTestCase):
    def test_server_close_code_and_reason(self) -> None:
        ws = self.websocket_connect("/server-close/")
        self.assertEqual(ws.receive(), "bye")  # sent before the close frame
        with self.assertRaisesMessage(
            ConnectionClosed,
            "no message from /server-close/: the connection was closed with 4001 'done here'",
        ) as info:
            ws.receive()
        self.assertEqual((info.exception.code, info.exception.reason), (4001, "done here"))
        self.assertEqual((ws.close_code, ws.close_reason), (4001, "done here"))
        with self.assertRaisesMessage(ConnectionClosed, "cannot send to /server-close/"):
            ws.send("too late")

    def test_view_return_closes_with_1000(self) -> None:
        ws = self.websocket_connect("/returns-at-once/")
        self.assertEqual(ws.receive(), "hello")
        self.assertEqual(ws.wait_closed(), 1000)

    def test_view_error_closes_with_1011(self) -> None:
        with self.assertLogs("django.request", "ERROR") as logs:
            ws = self.websocket_connect("/boom/")
            self.assertEqual(ws.receive(), "about to fail")
            self.assertEqual(ws.wait_closed(), 1011)
        self.assertEqual(ws.close_reason, "internal server error")
        self.assertIn("view failure after the upgrade", "\n".join(logs.output))

    def test_client_close_code_reaches_the_view(self) -> None:
        from project.testapp import views

        views.EVENTS.clear()
        ws = self.websocket_connect("/close-callback/")
        ws.close(4000, "client done")
        self.assertEqual(ws.close_code, 4000)  # the server's echo
        self.assertEqual(self.live_websocket_server.wait_for_views(), [])
        self.assertIn(["closed", 4000], views.EVENTS)

    def test_context_manager_closes_with_1000(self) -> None:
        with self.websocket_connect("/echo/") as ws:
            self.assertFalse(ws.closed)
        self.assertTrue(ws.closed)
        self.assertEqual(ws.close_code, 1000)


class HandshakeTests(WebSocketLiveServerTestCase):
    def test_refused_origin_is_readable(self) -> None:
        with self.assertRaises(HandshakeRefused) as info:
            self.websocket_connect("/echo/", origin="http://evil.example")
        self.assertEqual(info.exception.status, 403)
        self.assertEqual(
            str(info.exception),
            "403 Forbidden: origin 'http://evil.example' is not allowed (handshake for /echo/)",
        )

    def test_same_origin_is_allowed(self) -> None:
        with self.websocket_connect("/echo/", origin=self.live_server_url) as ws:
            ws.send("same origin")
            self.assertEqual(ws.receive(), "same origin")

    def test_not_found(self) -> None:
        with self.assertRaisesMessage(HandshakeRefused, "404 Not Found"):
            self.websocket_connect("/no-such-view/")

    def test_plain_view_refuses_upgrade(self) -> None:
        with self.assertRaises(HandshakeRefused) as info:
            self.websocket_connect("/plain/")
        self.assertEqual(info.exception.status, 400)

    @override_settings(WEBSOCKET_ALLOWED_ORIGINS=["http://evil.example"])
    def test_override_settings_reaches_the_server(self) -> None:
        with self.websocket_connect("/echo/", origin="http://evil.example") as ws:
            ws.send("allowed now")
            self.assertEqual(ws.receive(), "allowed now")

    @override_settings(ROOT_URLCONF=__name__)
    def test_extra_headers(self) -> None:
        with self.websocket_connect("/header/", headers={"X-Test": "sent"}) as ws:
            self.assertEqual(ws.receive(), "sent")


class LoginAndDatabaseTests(WebSocketLiveServerTestCase):
    def test_force_login_on_self_client(self) -> None:
        user = get_user_model().objects.create(username="ann")
        self.client.force_login(user)
        with self.websocket_connect("/whoami/") as ws:
            self.assertEqual(ws.receive(), "ann")

    def test_user_argument(self) -> None:
        bob = get_user_model().objects.create(username="bob")
        with self.websocket_connect("/whoami/", user=bob) as ws:
            self.assertEqual(ws.receive(), "bob")
        # self.client stayed anonymous: login_required redirects.
        with self.assertRaisesMessage(HandshakeRefused, "302 Found"):
            self.websocket_connect("/whoami/")

    def test_data_created_in_the_test_is_visible_to_views(self) -> None:
        User = get_user_model()
        User.objects.create(username="one")
        User.objects.create(username="two")
        with self.websocket_connect("/orm/") as ws:
            self.assertEqual(ws.receive_json(), {"in_atomic": False, "users": 2})

    def test_tables_are_flushed_between_tests(self) -> None:
        # Runs after the two above (tests run in alphabetical order): none of their users is left.
        get_user_model().objects.create(username="only")
        with self.websocket_connect("/orm/") as ws:
            self.assertEqual(ws.receive_json()["users"], 1)


class LingeringViewTests(WebSocketLiveServerTestCase):
    def test_a_view_still_running_fails_the_test(self) -> None:
        @override_settings(ROOT_URLCONF=__name__)
        class Inner(WebSocketLiveServerTestCase):
            websocket_timeout = 0.3

            def test_leaves_a_view_running(self) -> None:
                self.websocket_connect("/ignores-close/")

        result = unittest.TestResult()
        unittest.TestSuite([Inner("test_leaves_a_view_running")]).run(result)
        self.assertEqual(result.failures, [])
        self.assertEqual(len(result.errors), 1, result.errors)
        self.assertIn(
            "WebSocket view(s) still running 0.3 s after the test closed its connections: "
            "/ignores-close/",
            result.errors[0][1],
        )
