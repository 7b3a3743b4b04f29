"""Signals sent once per WebSocket session, and the per-process counts they keep.

::

    from django.dispatch import receiver
    from django_websocket.signals import websocket_connected, websocket_disconnected

    @receiver(websocket_connected)
    def opened(sender, request, websocket, **kwargs): ...

    @receiver(websocket_disconnected)
    def closed(sender, request, websocket, close_code, duration, **kwargs): ...

``websocket_connected`` is sent after the handshake, just before the view
runs; ``websocket_disconnected`` once the session is over, whatever ended
it (the client's close, a reset, the view returning or raising, a server
shutdown, ``groups.close``).  Each exactly once per session whose view ran,
in the view's greenlet or thread.  ``sender`` is the view function;
``close_code`` is :attr:`WebSocket.close_code` at the end (1006 for a lost
connection); ``duration`` the session's length in seconds.  A receiver that
raises is logged by Django (``django.dispatch``, ERROR) and affects neither
the session nor the other receivers.

:func:`stats` counts this process's open sessions, by view name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

from .server.websocket import WebSocket

__all__ = ["stats", "websocket_connected", "websocket_disconnected"]

websocket_connected = Signal()
"""Sent with ``request`` and ``websocket`` when a session starts (``sender``: the view)."""

websocket_disconnected = Signal()
"""Sent with ``request``, ``websocket``, ``close_code`` and ``duration`` when it ends."""

_lock = threading.Lock()  # never held across a yield
_open: dict[str, int] = {}


def stats() -> dict[str, Any]:
    """This process's open WebSocket sessions: ``{"open": N, "by_view": {view name: n}}``.

    A view's name is its URL pattern's name (``resolver_match.view_name``), or
    its dotted path when the pattern has none.  Other processes are not
    included: export each process's figures (docs/groups.md has a Prometheus
    recipe).
    """
    with _lock:
        by_view = {name: n for name, n in _open.items() if n}
    return {"open": sum(by_view.values()), "by_view": by_view}


def view_name(request: HttpRequest, view: Callable[..., Any]) -> str:
    """The name :func:`stats` files a session under."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name:
        return str(match.view_name)
    return f"{getattr(view, '__module__', '?')}.{getattr(view, '__qualname__', repr(view))}"


class Session:
    """One session's part in the signals and counts: :meth:`start` then :meth:`end`, once each."""

    __slots__ = ("_ended", "name", "request", "started", "view", "websocket")

    def __init__(
        self, request: HttpRequest, view: Callable[..., Any], websocket: WebSocket
    ) -> None:
        self.request = request
        self.view = view
        self.websocket = websocket
        self.name = view_name(request, view)
        self.started = time.monotonic()
        self._ended = False

    def start(self) -> None:
        """Count the session and send ``websocket_connected``."""
        with _lock:
            _open[self.name] = _open.get(self.name, 0) + 1
        _send(websocket_connected, self.view, request=self.request, websocket=self.websocket)

    def end(self) -> None:
        """Uncount the session and send ``websocket_disconnected`` (only the first time)."""
        if self._ended:
            return
        self._ended = True
        with _lock:
            left = _open.get(self.name, 0) - 1
            if left > 0:
                _open[self.name] = left
            else:
                _open.pop(self.name, None)
        _send(
            websocket_disconnected,
            self.view,
            request=self.request,
            websocket=self.websocket,
            close_code=self.websocket.close_code,
            duration=time.monotonic() - self.started,
        )


def _send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    # send_robust logs a receiver's exception (ERROR, with its traceback, on the
    # django.dispatch logger) and goes on with the other receivers.
    signal.send_robust(sender, **kwargs)
