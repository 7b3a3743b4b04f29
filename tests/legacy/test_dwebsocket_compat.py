"""``django_websocket.compat.dwebsocket``: the example's dwebsocket-style app, end to end."""

from __future__ import annotations

import importlib
import logging
import warnings

import pytest
import websocket as websocket_client  # the websocket-client package
from servers import ServerProcess
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from .conftest import UWSGI_FACTORY, Visitor, wait_for_log

ECHO_END = "dw echo: iteration ended with None, is_closed()=True"


# ----------------------------------------------------------------------
# Module layout and decorators, in-process


def test_module_paths_match_dwebsocket() -> None:
    package = importlib.import_module("django_websocket.compat.dwebsocket")
    decorators = importlib.import_module("django_websocket.compat.dwebsocket.decorators")
    middleware = importlib.import_module("django_websocket.compat.dwebsocket.middleware")
    websocket = importlib.import_module("django_websocket.compat.dwebsocket.websocket")
    from django_websocket.middleware import WebSocketMiddleware as NativeMiddleware

    assert package.accept_websocket is decorators.accept_websocket
    assert package.require_websocket is decorators.require_websocket
    assert package.WebSocket is websocket.WebSocket
    assert issubclass(middleware.WebSocketMiddleware, NativeMiddleware)


def test_decorators_set_dwebsocket_attributes() -> None:
    from django_websocket.compat.dwebsocket import accept_websocket, require_websocket
    from django_websocket.decorators import MARKER

    def view(request):  # pragma: no cover - never called
        return None

    accepting = accept_websocket(view)
    requiring = require_websocket(view)
    assert (accepting.accept_websocket, accepting.require_websocket) == (True, False)
    assert (requiring.accept_websocket, requiring.require_websocket) == (True, True)
    assert getattr(accepting, MARKER) == "accept"
    assert getattr(requiring, MARKER) == "require"
    assert accepting.__name__ == "view"
    with pytest.raises(TypeError, match="takes a view function"):
        accept_websocket("not a view")


@pytest.mark.usefixtures("django_settings")
def test_factory_class_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.test import override_settings

    from django_websocket.compat.dwebsocket import _settings

    monkeypatch.setattr(_settings, "_warned", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _settings.warn_about_factory_class() is False  # not set
        with override_settings(
            WEBSOCKET_FACTORY_CLASS="dwebsocket.backends.default.factory.WebSocketFactory"
        ):
            assert _settings.warn_about_factory_class() is False  # the default backend
    caplog.set_level(logging.WARNING, logger="django_websocket")
    with override_settings(WEBSOCKET_FACTORY_CLASS=UWSGI_FACTORY):
        with pytest.warns(RuntimeWarning, match="is ignored: custom WebSocket factories"):
            assert _settings.warn_about_factory_class() is True
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _settings.warn_about_factory_class() is False  # once per process
    assert [r.getMessage().count(UWSGI_FACTORY) for r in caplog.records] == [1]


# ----------------------------------------------------------------------
# Under django-websocket's own middleware (the example's default settings)


def test_echo_messages_are_bytes_and_always_come_back_as_text(
    legacy_server: ServerProcess,
) -> None:
    ends = legacy_server.log().count(ECHO_END)
    with connect(legacy_server.url("/dw/echo/")) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"binary in")
        assert ws.recv(timeout=5) == "binary in"  # dwebsocket's send() only sends text
    # The client closed: iteration yielded its final None, with is_closed() true.
    assert wait_for_log(legacy_server, ECHO_END, ends + 1).count(ECHO_END) == ends + 1


def test_echo_of_bytes_that_are_not_utf8_fails_the_view(legacy_server: ServerProcess) -> None:
    with connect(legacy_server.url("/dw/echo/")) as ws:
        ws.send(b"\xff\xfe")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 1011
    log = wait_for_log(legacy_server, "these bytes are not (invalid start byte at position 0)")
    assert "Internal Server Error in WebSocket view: /dw/echo/" in log


def test_dwebsocket_calls(legacy_server: ServerProcess) -> None:
    log_before = legacy_server.log()
    before = log_before.count("dw tour: is_closed()=True after close()")
    with connect(legacy_server.url("/dw/tour/")) as ws:
        assert ws.recv(timeout=5) == "bytes go out as text"  # bytes sent as a text frame
        assert ws.recv(timeout=5) == "7"
        assert ws.recv(timeout=5) == "timeout:None"  # wait(timeout=0.2) with nothing sent
        ws.send("héllo")
        assert ws.recv(timeout=5) == "wait:b'h\\xc3\\xa9llo'"  # text arrives as UTF-8 bytes
        ws.send(b"\x00\xff")
        ws.send("two")
        assert ws.recv(timeout=5) == "has:True count:2"
        assert ws.recv(timeout=5) == "read:b'\\x00\\xff' b'two' b'-'"
        assert ws.recv(timeout=5) == "is_closed:False"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)  # nothing after the close: send() after close() was dropped
    assert (ws.close_code, ws.close_reason) == (4000, "tour over")  # close(code, bytes reason)
    log = wait_for_log(legacy_server, "dw tour: is_closed()=True after close()", before + 1)
    assert "Traceback" not in log[len(log_before) :]


def test_dwebsocket_chat(legacy_server: ServerProcess) -> None:
    status, page = legacy_server.http_get("/dw/")
    assert status == 200 and b"dwebsocket-style chat" in page  # is_websocket is falsy
    ann = Visitor(legacy_server)
    ann.choose_name("ann")
    url = legacy_server.url("/dw/")
    with connect(url, additional_headers={"Cookie": ann.cookie}) as a:
        assert a.recv(timeout=5) == "* ann joined"
        b = websocket_client.create_connection(url, timeout=5)  # no session: anonymous
        try:
            assert b.recv() == "* anonymous joined"
            assert a.recv(timeout=5) == "* anonymous joined"
            a.send("hi all")
            assert a.recv(timeout=5) == "ann: hi all"
            assert b.recv() == "ann: hi all"
            b.send_binary(b"from anon")  # bytes either way: binary is welcome too
            assert b.recv() == "anonymous: from anon"
            assert a.recv(timeout=5) == "anonymous: from anon"
            with pytest.raises(TimeoutError):
                a.recv(timeout=0.3)
        finally:
            b.close()
        assert a.recv(timeout=5) == "* anonymous left"


def test_native_middleware_honours_flag_attributes_too(legacy_server: ServerProcess) -> None:
    # django-websocket's own middleware reads the 0.3/dwebsocket attributes as
    # well, so the upgrade is accepted; the view then gets the native API.
    status, body = legacy_server.http_get("/dw/flagged-required/")
    assert status == 400 and b"only accepts WebSocket" in body
    assert legacy_server.http_get("/dw/flagged/") == (200, b"flagged: plain request")
    with connect(legacy_server.url("/dw/flagged-required/")) as ws:
        assert ws.recv(timeout=5) == b"required and flagged"


# ----------------------------------------------------------------------
# Under the dwebsocket middleware, with WEBSOCKET_FACTORY_CLASS set


def test_middleware_serves_views_flagged_accept_websocket(
    dwebsocket_server: ServerProcess,
) -> None:
    assert dwebsocket_server.http_get("/dw/flagged/") == (200, b"flagged: plain request")
    with connect(dwebsocket_server.url("/dw/flagged/")) as ws:
        ws.send("x")  # arrives as bytes: b"flagged got " + message works
        assert ws.recv(timeout=5) == "flagged got x"


def test_middleware_refuses_plain_requests_to_views_flagged_require_websocket(
    dwebsocket_server: ServerProcess,
) -> None:
    status, body = dwebsocket_server.http_get("/dw/flagged-required/")
    assert status == 400 and b"only accepts WebSocket" in body
    with connect(dwebsocket_server.url("/dw/flagged-required/")) as ws:
        assert ws.recv(timeout=5) == "required and flagged"


def test_middleware_refuses_upgrades_to_other_views(dwebsocket_server: ServerProcess) -> None:
    assert dwebsocket_server.http_get("/health/") == (200, b"ok is_websocket=False")
    with pytest.raises(InvalidStatus) as info:
        connect(dwebsocket_server.url("/health/"))
    assert info.value.response.status_code == 400


def test_middleware_leaves_decorated_views_to_their_decorators(
    dwebsocket_server: ServerProcess,
) -> None:
    with connect(dwebsocket_server.url("/dw/echo/")) as ws:  # dwebsocket decorator
        ws.send(b"abc")
        assert ws.recv(timeout=5) == "abc"
    with connect(dwebsocket_server.url("/echo/")) as ws:  # django-websocket decorator
        ws.send(b"abc")
        assert ws.recv(timeout=5) == b"abc"  # its own semantics: binary stays binary


def test_custom_factory_class_warned_about_once(dwebsocket_server: ServerProcess) -> None:
    for _ in range(3):
        with connect(dwebsocket_server.url("/dw/echo/")) as ws:
            ws.send("x")
            ws.recv(timeout=5)
    log = dwebsocket_server.log()
    line = f"WARNING django_websocket: WEBSOCKET_FACTORY_CLASS = '{UWSGI_FACTORY}' is ignored"
    assert log.count(line) == 1, log
