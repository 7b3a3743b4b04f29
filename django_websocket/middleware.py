"""``WebSocketMiddleware``: the django-websocket 0.3 and dwebsocket middleware, for ``MIDDLEWARE``.

It gives every request ``request.websocket`` (``None`` unless a WebSocket
was accepted) and ``request.is_websocket``.  An upgrade request to a view
without ``@accept_websocket``/``@require_websocket`` is served as a
WebSocket when ``WEBSOCKET_ACCEPT_ALL`` is true or the view has a true
``accept_websocket`` attribute (the 0.3 way), and refused with 400
otherwise.  Decorated views are left to their decorator, so the two never
hand-shake twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from . import conf
from .decorators import MARKER, REQUIRE_BODY
from .upgrade import IsWebSocket, Options, is_upgrade_request, serve_websocket

__all__ = ["WebSocketMiddleware"]

REFUSE_BODY = "400 Bad Request: this URL does not accept WebSocket connections.\n"

logger = logging.getLogger("django_websocket")
_warned_app_missing = False


def _warn_if_app_missing() -> None:
    """The middleware without the app works, but quietly loses two things; say so once.

    (A system check cannot: checks are only registered by the installed app.)
    """
    global _warned_app_missing
    if _warned_app_missing or apps.is_installed("django_websocket"):
        return
    _warned_app_missing = True
    logger.warning(
        "django_websocket.middleware.WebSocketMiddleware is in MIDDLEWARE but "
        "'django_websocket' is not in INSTALLED_APPS: manage.py runserver will not serve "
        "WebSockets under gevent and the package's system checks do not run. Add "
        "'django_websocket' to INSTALLED_APPS, before django.contrib.staticfiles."
    )


class WebSocketMiddleware:
    """Sets ``request.websocket``/``request.is_websocket`` and honours ``WEBSOCKET_ACCEPT_ALL``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._options = Options()
        _warn_if_app_missing()

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
        """Serve or refuse requests to views that are not decorated.

        As in django-websocket 0.3, a view can also opt in with attributes
        instead of decorators: ``view.accept_websocket = True`` lets its
        upgrade requests through, and ``view.require_websocket = True``
        refuses its plain requests with 400.
        """
        if getattr(view_func, MARKER, None):
            return None  # the decorator decides
        if not is_upgrade_request(request):
            if getattr(view_func, "require_websocket", False):
                return HttpResponseBadRequest(REQUIRE_BODY, content_type="text/plain")
            return None
        if conf.get("WEBSOCKET_ACCEPT_ALL") or getattr(view_func, "accept_websocket", False):
            return serve_websocket(
                request, self.adapt_view(view_func), view_args, view_kwargs, self._options
            )
        return HttpResponseBadRequest(REFUSE_BODY, content_type="text/plain")

    def adapt_view(self, view_func: Callable[..., Any]) -> Callable[..., Any]:
        """The callable to run for a view this middleware serves (a hook for compat layers)."""
        return view_func
