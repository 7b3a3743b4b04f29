"""``@accept_websocket`` and ``@require_websocket``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from django.http import HttpRequest, HttpResponseBadRequest

from .protocol import DeflateConfig
from .upgrade import UNSET, IsWebSocket, Options, is_upgrade_request, serve_websocket

__all__ = ["accept_websocket", "require_websocket"]

View = TypeVar("View", bound=Callable[..., Any])

#: Attribute set on decorated views so the middleware never hand-shakes twice.
MARKER = "_django_websocket"

REQUIRE_BODY = "400 Bad Request: this URL only accepts WebSocket connections.\n"


class _AllDatabases(frozenset[str]):
    """Contains every database alias: WebSocket views never run in ATOMIC_REQUESTS.

    A transaction held open for the lifetime of a WebSocket would hold its
    locks and its connection for minutes or hours.
    """

    def __contains__(self, alias: object) -> bool:
        return True


_ALL_DATABASES = _AllDatabases()


def _make(view: Callable[..., Any], options: Options, required: bool) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        request.is_websocket = IsWebSocket(request)  # type: ignore[attr-defined]
        if getattr(request, "websocket", None) is not None:
            return view(request, *args, **kwargs)  # an outer wrapper already upgraded
        request.websocket = None  # type: ignore[attr-defined]
        if is_upgrade_request(request):
            return serve_websocket(request, view, args, kwargs, options)
        if required:
            return HttpResponseBadRequest(REQUIRE_BODY, content_type="text/plain")
        return view(request, *args, **kwargs)

    setattr(wrapper, MARKER, "require" if required else "accept")
    # The attributes django-websocket 0.3 and dwebsocket set on decorated views.
    wrapper.accept_websocket = True  # type: ignore[attr-defined]
    wrapper.require_websocket = required  # type: ignore[attr-defined]
    wrapper._non_atomic_requests = _ALL_DATABASES  # type: ignore[attr-defined]
    return wrapper


def _decorator(required: bool) -> Any:
    @overload
    def decorator(view: View, /) -> View: ...

    @overload
    def decorator(
        view: None = None,
        /,
        *,
        subprotocols: Sequence[str] = (),
        max_message_size: int | None = UNSET,
        compression: bool | DeflateConfig = UNSET,
        ping_interval: float | None = UNSET,
        ping_timeout: float | None = UNSET,
        close_timeout: float = UNSET,
        send_timeout: float = UNSET,
        max_queue: int = UNSET,
        origins: Sequence[str] = UNSET,
        close_db_connections: bool = UNSET,
    ) -> Callable[[View], View]: ...

    def decorator(view: Any = None, /, **options: Any) -> Any:
        if view is not None and not callable(view):
            raise TypeError(
                f"{'require' if required else 'accept'}_websocket takes a view or keyword "
                f"options only, not {view!r}"
            )
        try:
            parsed = Options(**options)
        except TypeError as exc:
            raise TypeError(f"invalid WebSocket view option: {exc}") from None
        if view is None:
            return lambda inner: _make(inner, parsed, required)
        return _make(view, parsed, required)

    return decorator


accept_websocket = _decorator(required=False)
accept_websocket.__name__ = accept_websocket.__qualname__ = "accept_websocket"
accept_websocket.__doc__ = """Let a view serve both plain HTTP and WebSocket requests.

Use bare (``@accept_websocket``) or with options
(``@accept_websocket(subprotocols=["chat"], max_message_size=2**20, compression=True,
ping_interval=20, ping_timeout=20, close_timeout=5, send_timeout=30, max_queue=16,
origins=["https://example.com"], close_db_connections=True)``);
options override the ``WEBSOCKET_*`` settings for this view (``compression`` also takes a
:class:`~django_websocket.protocol.DeflateConfig`).  For an upgrade
request the view runs with ``request.websocket`` set; for a plain request it
runs with ``request.websocket`` ``None``.  ``request.is_websocket()`` tells
which.
"""

require_websocket = _decorator(required=True)
require_websocket.__name__ = require_websocket.__qualname__ = "require_websocket"
require_websocket.__doc__ = """Like :func:`accept_websocket`, but a plain HTTP request gets 400."""
