"""Turn a Django request into a WebSocket: handshake, run the view, close, suppress.

This is the glue between Django and the server layer.  It runs inside the
view wrapper, after every middleware and every outer decorator, so auth,
sessions and permission checks have already had their say, and a refusal is
an ordinary HTTP response.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse
from django.utils.http import is_same_domain

from . import conf, groups, signals
from .database import session_hook
from .exceptions import ConnectionClosed
from .protocol import (
    CloseCode,
    DeflateConfig,
    HandshakePolicy,
    Reject,
    negotiate,
)
from .protocol.handshake import REQUEST_FIELDS, asks_for_websocket
from .server.handoff import SessionConfig, open_session
from .server.transport import Transport, find_transport, unavailable_reason
from .server.websocket import WebSocket

__all__ = [
    "UNSET",
    "IsWebSocket",
    "Options",
    "WebSocketFinished",
    "is_upgrade_request",
    "serve_websocket",
]

logger = logging.getLogger("django_websocket")
request_logger = logging.getLogger("django.request")

#: Marks a decorator option that was not given (the setting applies).
UNSET: Any = object()

UNSUPPORTED_BODY = (
    "501 Not Implemented: this server cannot hand its connections to WebSocket views.\n"
    "Serve the project with `python -m django_websocket`, `manage.py runserver` with "
    "django_websocket in INSTALLED_APPS, gunicorn -k gevent, uWSGI --gevent, or gevent's "
    "WSGIServer.\n"
)


class IsWebSocket:
    """``request.is_websocket``: call it, or use its truth value, to know if it is a WebSocket.

    Both ``request.is_websocket()`` (django-websocket 0.3) and
    ``if request.is_websocket:`` (dwebsocket's examples) give the right answer.
    """

    __slots__ = ("_request",)

    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    def __call__(self) -> bool:
        return getattr(self._request, "websocket", None) is not None

    def __bool__(self) -> bool:
        return self()

    def __repr__(self) -> str:
        return f"<is_websocket: {self()}>"


class WebSocketFinished(HttpResponse):
    """What a WebSocket view's wrapper returns once the session is over.

    Nothing of it reaches the client: under this package's server it is not
    written at all; under other servers the connection has been shut down
    so their write fails silently.
    """

    status_code = 101

    def __init__(self) -> None:
        super().__init__(b"", status=101)


class _ClosedByIteration(WebSocketFinished):
    """A :class:`WebSocketFinished` that closes itself once iterated to the end.

    gevent-websocket's handler iterates the application's response but never
    calls its ``close()``, so Django would never send ``request_finished``
    (nor close the request's database connections).  Closing happens once,
    however many times the server iterates or closes it.
    """

    _closed_once = False

    def __iter__(self) -> Iterator[bytes]:
        yield from ()
        self.close()

    def close(self) -> None:
        """Close once (runs Django's ``request_finished``)."""
        if not self._closed_once:
            self._closed_once = True
            super().close()


@dataclass(frozen=True)
class Options:
    """Per-view options of the decorators; ``UNSET`` fields fall back to settings."""

    subprotocols: Sequence[str] = ()
    max_message_size: Any = UNSET
    compression: Any = UNSET
    ping_interval: Any = UNSET
    ping_timeout: Any = UNSET
    close_timeout: Any = UNSET
    send_timeout: Any = UNSET
    max_queue: Any = UNSET
    origins: Any = UNSET
    close_db_connections: Any = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.subprotocols, str) or not all(
            isinstance(item, str) and item for item in self.subprotocols
        ):
            raise TypeError(f"subprotocols must be a list of strings, not {self.subprotocols!r}")
        for field, setting in _OPTION_SETTINGS.items():
            value = getattr(self, field)
            if value is not UNSET:
                conf.validate(setting, value)

    def get(self, field: str) -> Any:
        """The option's value, or the setting's when the option was not given."""
        value = getattr(self, field)
        return conf.get(_OPTION_SETTINGS[field]) if value is UNSET else value

    def session(self) -> SessionConfig:
        """The session's limits and timers: these options over the settings."""
        return SessionConfig(
            max_message_size=self.get("max_message_size"),
            close_timeout=float(self.get("close_timeout")),
            ping_interval=self.get("ping_interval"),
            ping_timeout=self.get("ping_timeout"),
            send_timeout=float(self.get("send_timeout")),
            max_queue=self.get("max_queue"),
            on_idle=session_hook() if self.get("close_db_connections") else None,
        )


_OPTION_SETTINGS = {
    "max_message_size": "WEBSOCKET_MAX_MESSAGE_SIZE",
    "compression": "WEBSOCKET_COMPRESSION",
    "ping_interval": "WEBSOCKET_PING_INTERVAL",
    "ping_timeout": "WEBSOCKET_PING_TIMEOUT",
    "close_timeout": "WEBSOCKET_CLOSE_TIMEOUT",
    "send_timeout": "WEBSOCKET_SEND_TIMEOUT",
    "max_queue": "WEBSOCKET_MAX_QUEUE",
    "origins": "WEBSOCKET_ALLOWED_ORIGINS",
    "close_db_connections": "WEBSOCKET_CLOSE_DB_CONNECTIONS",
}


#: What ``WEBSOCKET_COMPRESSION = True`` (the default) agrees to: the
#: protocol's defaults, chosen for memory per connection (see DeflateConfig).
_DEFAULT_DEFLATE = DeflateConfig()


def is_upgrade_request(request: HttpRequest) -> bool:
    """Whether the request asks for a WebSocket (``Upgrade: websocket``)."""
    return asks_for_websocket(str(request.META.get("HTTP_UPGRADE", "")))


# The WSGI environ keys of the header fields the handshake reads.
_HANDSHAKE_META = tuple(("HTTP_" + name.upper().replace("-", "_"), name) for name in REQUEST_FIELDS)


def _request_headers(meta: dict[str, Any]) -> list[tuple[str, str]]:
    headers = []
    for key, name in _HANDSHAKE_META:
        value = meta.get(key)
        if isinstance(value, str):
            headers.append((name, value))
    return headers


def _origin_checker(request: HttpRequest, extra: Sequence[str]) -> Callable[[str | None], bool]:
    """Allow no Origin, the request's own origin, CSRF_TRUSTED_ORIGINS and ``extra``."""

    def allowed(origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser: Origin protects browsers' users only
        trusted = [*getattr(settings, "CSRF_TRUSTED_ORIGINS", []), *extra]
        if "*" in trusted:
            return True
        try:
            parts = urlsplit(origin)
            own = f"{request.scheme}://{request.get_host()}"
        except ValueError:
            return False
        if origin.lower() == own.lower():
            return True
        host = parts.netloc.lower()
        for candidate in trusted:
            if candidate.lower() == origin.lower():
                return True
            if "*" in candidate:
                # Django's CSRF_TRUSTED_ORIGINS wildcard form: https://*.example.com
                trusted_parts = urlsplit(candidate)
                if trusted_parts.scheme == parts.scheme and is_same_domain(
                    host, trusted_parts.netloc.lower().replace("*", "", 1)
                ):
                    return True
        return False

    return allowed


def _refusal(reject: Reject) -> HttpResponse:
    response = HttpResponse(reject.body, status=reject.status, content_type="text/plain")
    for name, value in reject.headers:
        response[name] = value
    return response


def _unsupported(request: HttpRequest) -> HttpResponse:
    protocol = request.META.get("SERVER_PROTOCOL", "")
    server = request.META.get("SERVER_SOFTWARE", "this WSGI server")
    why = (
        f"{protocol} carries no socket to take over"
        if str(protocol).upper().startswith("HTTP/2")
        else unavailable_reason(request.META) or f"{server} does not expose the client socket"
    )
    logger.error(
        "WebSocket upgrade for %s refused with 501: %s. Remedy: serve WebSocket URLs with "
        "`python -m django_websocket`, `manage.py runserver` (django_websocket in "
        "INSTALLED_APPS), gunicorn -k gevent, uWSGI --gevent, or gevent.pywsgi.WSGIServer; "
        "behind an HTTP/2 "
        "proxy, forward WebSocket URLs over HTTP/1.1.",
        request.path,
        why,
    )
    response = HttpResponse(UNSUPPORTED_BODY, status=501, content_type="text/plain")
    # The line above is the one error to log; Django would add a generic
    # "Not Implemented" line for the 5xx unless told it has been logged.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def serve_websocket(
    request: HttpRequest,
    view: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    options: Options,
) -> HttpResponse:
    """Perform the handshake, run ``view`` with ``request.websocket`` and close.

    Returns an HTTP error response when the handshake is refused or the
    server cannot hand over its socket (the view is not run); otherwise a
    :class:`WebSocketFinished` that is never written to the client.
    """
    transport = find_transport(request.META)
    if transport is None:
        return _unsupported(request)
    if transport.already_upgraded:
        return _serve_upgraded(request, view, args, kwargs, options, transport)

    compression = options.get("compression")
    policy = HandshakePolicy(
        subprotocols=tuple(options.subprotocols),
        compression=_DEFAULT_DEFLATE if compression is True else compression or None,
        origin_allowed=_origin_checker(request, options.get("origins")),
    )
    result = negotiate(
        request.method or "GET",
        str(request.META.get("SERVER_PROTOCOL", "HTTP/1.1")),
        _request_headers(request.META),
        policy,
    )
    if isinstance(result, Reject):
        logger.warning(
            "WebSocket handshake for %s refused with %d: %s",
            request.path,
            result.status,
            result.reason,
        )
        return _refusal(result)

    websocket = open_session(
        transport,
        result.response,
        options.session(),
        subprotocol=result.subprotocol,
        deflate=result.deflate,
    )
    if websocket is None:
        return WebSocketFinished()
    return _run_view(request, view, args, kwargs, websocket)


def _serve_upgraded(
    request: HttpRequest,
    view: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    options: Options,
    transport: Transport,
) -> HttpResponse:
    """Run ``view`` on a connection the server has already upgraded (gevent-websocket).

    The server wrote its own 101 and negotiated no extension, so no handshake
    is written here; a refused Origin can only be answered with a close frame.
    """
    websocket = open_session(transport, None, options.session(), subprotocol=transport.subprotocol)
    assert websocket is not None  # nothing to write: it cannot fail
    origin = request.META.get("HTTP_ORIGIN")
    if not _origin_checker(request, options.get("origins"))(origin):
        logger.warning(
            "WebSocket for %s from origin %r closed with 1008: %s had already accepted "
            "the handshake",
            request.path,
            origin,
            transport.server,
        )
        websocket.finish(CloseCode.POLICY_VIOLATION, "origin not allowed")
        return _ClosedByIteration()
    _run_view(request, view, args, kwargs, websocket)
    return _ClosedByIteration()


def _run_view(
    request: HttpRequest,
    view: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    websocket: WebSocket,
) -> HttpResponse:
    """Run the view with ``request.websocket``, then close with a code saying how it ended.

    Around the view: the socket joins its session's groups (so that logout
    and ``groups.close_user`` reach it), and the session's signals are sent,
    ``websocket_disconnected`` after the socket is released, however it ended.
    """
    request.websocket = websocket  # type: ignore[attr-defined]
    code, reason = CloseCode.NORMAL_CLOSURE, ""
    session = signals.Session(request, view, websocket)
    try:
        try:
            groups.join_session_groups(request, websocket)
        except Exception:
            logger.exception("WebSocket for %s: could not join its session's groups", request.path)
        session.start()
        try:
            view(request, *args, **kwargs)
        except ConnectionClosed as exc:
            if not websocket.closed:
                raise  # another connection's: the view's own error
            # The peer left (or the connection was closed) under a send: the
            # session is over, which is no server error.
            logger.info(
                "WebSocket for %s ended with %s while the view sent: %s",
                request.path,
                websocket.close_code,
                exc,
            )
    except Exception:
        code, reason = CloseCode.INTERNAL_ERROR, "internal server error"
        request_logger.error(
            "Internal Server Error in WebSocket view: %s",
            request.path,
            exc_info=sys.exc_info(),
            extra={"status_code": 1011, "request": request},
        )
        got_request_exception.send(sender=None, request=request)
    except BaseException:
        # SystemExit, GreenletExit, KeyboardInterrupt: the worker is being
        # stopped under the view; tell the client it is going away.
        code, reason = CloseCode.GOING_AWAY, "server shutting down"
        raise
    finally:
        try:
            websocket.finish(code, reason)
        finally:
            session.end()
    return WebSocketFinished()
