"""dwebsocket's ``accept_websocket`` and ``require_websocket``, over django-websocket's own.

The views they wrap get dwebsocket's ``request.websocket``
(:class:`~django_websocket.compat.dwebsocket.websocket.WebSocket`); the
handshake, the 400 for a plain request to a ``require_websocket`` view and
everything after are django-websocket's.  As in dwebsocket, the wrapped
view carries ``accept_websocket``/``require_websocket`` attributes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.http import HttpRequest

from ... import decorators as native_decorators
from ...server.websocket import WebSocket as NativeWebSocket
from .websocket import WebSocket

__all__ = ["accept_websocket", "adapt_view", "require_websocket"]

View = TypeVar("View", bound=Callable[..., Any])


def adapt_view(view: View) -> View:
    """Wrap ``view`` so that it sees ``request.websocket`` as a dwebsocket-style WebSocket.

    Plain requests (``request.websocket`` is ``None``) and requests already
    adapted pass through unchanged.
    """

    @functools.wraps(view)
    def adapted(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        websocket = getattr(request, "websocket", None)
        if isinstance(websocket, NativeWebSocket):
            request.websocket = WebSocket(websocket)  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return cast(View, adapted)


def _decorate(func: View, required: bool) -> View:
    if not callable(func):
        name = "require_websocket" if required else "accept_websocket"
        raise TypeError(f"{name} takes a view function, not {func!r}")
    native = native_decorators.require_websocket if required else native_decorators.accept_websocket
    wrapper = native(adapt_view(func))
    wrapper.accept_websocket = True
    wrapper.require_websocket = required or getattr(func, "require_websocket", False)
    return cast(View, wrapper)


def accept_websocket(func: View) -> View:
    """Let ``func`` serve plain HTTP requests and WebSockets (dwebsocket's decorator).

    For a WebSocket, ``request.websocket`` is dwebsocket-style (messages as
    ``bytes``, a final ``None`` when iterating); otherwise it is ``None``.
    Whether the view returns ``None`` or a response does not matter for a
    WebSocket.
    """
    return _decorate(func, required=False)


def require_websocket(func: View) -> View:
    """Like :func:`accept_websocket`, but a plain HTTP request gets 400 Bad Request."""
    return _decorate(func, required=True)
