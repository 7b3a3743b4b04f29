"""dwebsocket 0.5's API on top of django-websocket.

Change ``dwebsocket`` to ``django_websocket.compat.dwebsocket`` in imports
and in ``MIDDLEWARE``; views keep working as they were written::

    from django_websocket.compat.dwebsocket import accept_websocket

    @accept_websocket
    def echo(request):
        if request.is_websocket:
            for message in request.websocket:  # bytes, then a final None
                if message is None:
                    break
                request.websocket.send(message)  # always a text frame

Modules mirror dwebsocket's: :mod:`.decorators`, :mod:`.middleware`
(``WebSocketMiddleware``) and :mod:`.websocket` (the ``WebSocket`` that views
get as ``request.websocket``).  Everything underneath (handshake, framing,
keepalive, limits, closing) is django-websocket's own.
"""

from __future__ import annotations

from .decorators import accept_websocket, require_websocket
from .websocket import WebSocket

__all__ = ["WebSocket", "accept_websocket", "require_websocket"]
