"""``request.websocket`` as dwebsocket 0.5 gave it, around django-websocket's own WebSocket.

What differs from :class:`django_websocket.WebSocket`, as dwebsocket did it:

- every message is ``bytes`` (a text frame's UTF-8 encoding, a binary
  frame's payload);
- ``wait(timeout)`` returns ``None`` on timeout as well as once closed;
- iteration yields one final ``None`` when the connection closes;
- ``send()`` always sends a text frame, and does nothing once the
  connection is closed (dwebsocket never raised there either);
- ``close(code=None, reason=None)`` and ``is_closed()``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TypeVar, overload

from ...exceptions import ConnectionClosed
from ...protocol import CloseCode
from ...server.websocket import WebSocket as NativeWebSocket
from ._settings import warn_about_factory_class

__all__ = ["WebSocket"]

logger = logging.getLogger("django_websocket")

_T = TypeVar("_T")

_NOTHING = object()


def _as_bytes(message: str | bytes) -> bytes:
    return message.encode("utf-8") if isinstance(message, str) else message


class WebSocket:
    """dwebsocket's ``request.websocket``: a thin adapter over django-websocket's WebSocket.

    Views decorated with this package's dwebsocket decorators (or served by
    its dwebsocket middleware) get one of these.  ``native`` is the
    underlying :class:`django_websocket.WebSocket`, for what dwebsocket
    could not do (binary frames, pings, ``receive(timeout)``).
    """

    __slots__ = ("_native",)

    def __init__(self, websocket: NativeWebSocket) -> None:
        warn_about_factory_class()
        self._native = websocket

    @property
    def native(self) -> NativeWebSocket:
        """The django-websocket :class:`~django_websocket.WebSocket` underneath."""
        return self._native

    # ------------------------------------------------------------------
    # State

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed (dwebsocket's ``closed`` attribute)."""
        return self._native.closed

    def is_closed(self) -> bool:
        """Whether the connection is closing or closed: no message can be sent any more."""
        return self._native.closed

    @property
    def close_code(self) -> int | None:
        """The close status once known (see :attr:`django_websocket.WebSocket.close_code`)."""
        return self._native.close_code

    @property
    def close_reason(self) -> str:
        """The close reason matching :attr:`close_code` (``""`` when none)."""
        return self._native.close_reason

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol agreed in the handshake, or ``None``."""
        return self._native.subprotocol

    # ------------------------------------------------------------------
    # Receiving

    def wait(self, timeout: float | None = None) -> bytes | None:
        """Block for the next message, as ``bytes``.

        Returns ``None`` once the connection is closed, and also when
        ``timeout`` seconds pass without a message (dwebsocket did not tell
        the two apart; use :meth:`is_closed` to know which).
        """
        try:
            message = self._native.receive(timeout)
        except TimeoutError:
            return None
        return None if message is None else _as_bytes(message)

    @overload
    def read(self) -> bytes | None: ...

    @overload
    def read(self, fallback: _T) -> bytes | _T: ...

    def read(self, fallback: object = None) -> object:
        """Return the next message if one is ready, else ``fallback``, without blocking."""
        message = self._native.read(_NOTHING)
        if message is _NOTHING or message is None:
            return fallback
        return _as_bytes(message)

    def has_messages(self) -> bool:
        """Whether a message can be read without blocking."""
        return self._native.has_messages()

    def count_messages(self) -> int:
        """How many messages can be read without blocking."""
        return self._native.count_messages()

    def __iter__(self) -> Iterator[bytes | None]:
        """Yield each message as ``bytes``, then one final ``None`` when the connection closes."""
        while True:
            message = self.wait()
            yield message
            if message is None:
                return

    # ------------------------------------------------------------------
    # Sending and closing

    def send(self, message: str | bytes | bytearray | memoryview | object) -> None:
        """Send ``message`` as a text frame, as dwebsocket always did.

        ``str`` goes as it is; bytes-like values must be UTF-8 and are
        decoded (``ValueError`` otherwise: send binary data with
        ``websocket.native.send(data)``); anything else goes through
        ``str()``.  Once the connection is closed this does nothing.
        """
        if isinstance(message, (bytes, bytearray, memoryview)):
            try:
                text = bytes(message).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    "dwebsocket sends every message as a text frame, which must be UTF-8, and "
                    f"these bytes are not ({exc.reason} at position {exc.start}); send binary "
                    "data with request.websocket.native.send(data)"
                ) from None
        elif isinstance(message, str):
            text = message
        else:
            text = str(message)
        try:
            self._native.send(text)
        except ConnectionClosed:
            logger.debug("dwebsocket send() on a closed WebSocket: message dropped")

    def close(self, code: int | None = None, reason: str | bytes | None = None) -> None:
        """Close the connection (``code`` defaults to 1000); nothing happens if already closed.

        ``reason`` may be ``str`` or UTF-8 ``bytes``.
        """
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        self._native.close(code or CloseCode.NORMAL_CLOSURE, reason or "")

    def __repr__(self) -> str:
        return f"<dwebsocket-compatible {self._native!r}>"
