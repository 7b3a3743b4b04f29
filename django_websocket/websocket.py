"""django-websocket 0.3's module path: ``from django_websocket.websocket import WebSocket``."""

from .exceptions import MalformedWebSocket
from .server.websocket import WebSocket

__all__ = ["MalformedWebSocket", "WebSocket"]
