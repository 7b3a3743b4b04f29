"""dwebsocket's ``WebSocketMiddleware``, for ``MIDDLEWARE``.

Like dwebsocket's, it gives every request ``request.websocket`` (``None``
unless a WebSocket was accepted) and ``request.is_websocket``, and it
decides for views that are not decorated:

- an upgrade request is served when ``WEBSOCKET_ACCEPT_ALL`` is true or the
  view has a true ``accept_websocket`` attribute, and refused with 400
  otherwise;
- a plain request to a view with a true ``require_websocket`` attribute is
  refused with 400.

Decorated views (by this module's decorators or django-websocket's) are
left to their decorator.  ``WEBSOCKET_FACTORY_CLASS`` is ignored, with a
warning when it names anything but dwebsocket's default backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from ... import middleware as native_middleware
from ._settings import warn_about_factory_class
from .decorators import adapt_view

__all__ = ["WebSocketMiddleware"]


class WebSocketMiddleware(native_middleware.WebSocketMiddleware):
    """dwebsocket's middleware: views it serves get dwebsocket-style ``request.websocket``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        warn_about_factory_class()

    def adapt_view(self, view_func: Callable[..., Any]) -> Callable[..., Any]:
        """Views this middleware serves see dwebsocket's ``request.websocket``."""
        return adapt_view(view_func)
