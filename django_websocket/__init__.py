"""WebSockets from ordinary, synchronous Django views under a gevent WSGI server.

::

    from django_websocket import require_websocket

    @require_websocket
    def echo(request):
        for message in request.websocket:
            request.websocket.send(message)

Names are imported lazily so that ``python -m django_websocket`` can
monkey-patch with gevent before Django is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.4.0.dev0"

__all__ = [
    "ConnectionClosed",
    "MalformedWebSocket",
    "WebSocket",
    "WebSocketMiddleware",
    "accept_websocket",
    "groups",
    "require_websocket",
    "signals",
    "stats",
]

_LAZY = {
    "accept_websocket": "django_websocket.decorators",
    "require_websocket": "django_websocket.decorators",
    "WebSocketMiddleware": "django_websocket.middleware",
    "WebSocket": "django_websocket.server.websocket",
    "ConnectionClosed": "django_websocket.exceptions",
    "MalformedWebSocket": "django_websocket.exceptions",
    "groups": "django_websocket.groups",  # a module: imported as a whole
    "signals": "django_websocket.signals",  # a module too
    "stats": "django_websocket.signals",
}

if TYPE_CHECKING:
    from . import groups, signals
    from .decorators import accept_websocket, require_websocket
    from .exceptions import ConnectionClosed, MalformedWebSocket
    from .middleware import WebSocketMiddleware
    from .server.websocket import WebSocket
    from .signals import stats


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'django_websocket' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module == f"{__name__}.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
