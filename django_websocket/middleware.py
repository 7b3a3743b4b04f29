"""``WebSocketMiddleware``: the django-websocket 0.3 and dwebsocket middleware, for ``MIDDLEWARE``.

It gives every request ``request.websocket`` (``None`` unless a WebSocket
was accepted) and ``request.is_websocket``.  An upgrade request to a view
without ``@accept_websocket``/``@require_websocket`` is served as a
WebSocket when ``WEBSOCKET_ACCEPT_ALL`` is true and refused with 400
otherwise.  Decorated views are left to their decorator, so the two never
hand-shake twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from . import conf
from .decorators import MARKER
from .upgrade import IsWebSocket, Options, is_upgrade_request, serve_websocket

__all__ = ["WebSocketMiddleware"]

REFUSE_BODY = "400 Bad Request: this URL does not accept WebSocket connections.\n"


class WebSocketMiddleware:
    """Sets ``request.websocket``/``request.is_websocket`` and honours ``WEBSOCKET_ACCEPT_ALL``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._options = Options()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Give the request its WebSocket attributes, then run the rest of the chain."""
        request.websocket = None  # type: ignore[attr-defined]
        request.is_websocket = IsWebSocket(request)  # type: ignore[attr-defined]
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        """Serve or refuse upgrade requests to views that are not decorated."""
        if not is_upgrade_request(request) or getattr(view_func, MARKER, None):
            return None
        if conf.get("WEBSOCKET_ACCEPT_ALL"):
            return serve_websocket(request, view_func, view_args, view_kwargs, self._options)
        return HttpResponseBadRequest(REFUSE_BODY, content_type="text/plain")
