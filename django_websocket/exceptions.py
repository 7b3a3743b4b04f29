"""Exceptions raised to code that uses the package (never to the peer)."""

from __future__ import annotations

__all__ = ["ConnectionClosed", "MalformedWebSocket", "WebSocketError"]


class WebSocketError(Exception):
    """Base class of this package's exceptions."""


class ConnectionClosed(WebSocketError):
    """Using a WebSocket whose closing handshake has started or that was lost.

    Raised when sending on such a socket (and by the test client when
    receiving from one).

    ``code`` and ``reason`` are the connection's close status when known.
    """

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class MalformedWebSocket(WebSocketError, ValueError):
    """A request asked for a WebSocket but its handshake is invalid.

    The name comes from django-websocket 0.3, kept for code that catches it.
    """
