"""Groups and broadcast: one message to many WebSockets, in one process or across many.

::

    from django_websocket import groups, require_websocket

    @require_websocket
    def room(request, name):
        group = f"room.{name}"
        groups.add(group, request.websocket)  # left automatically when the session ends
        for message in request.websocket:
            groups.send(group, message)

    def announce(request):                    # an ordinary view, a command, a task
        groups.send("room.lobby", "maintenance in 5 minutes")
        return HttpResponse("sent")

The API is synchronous and blocking, and cooperative under gevent.
Delivery never waits for a slow client: each member WebSocket has a bounded
queue of its own, and a client whose queue fills is closed with 1013.  The
default backend works inside one server process; ``WEBSOCKET_GROUPS =
{"BACKEND": "redis", "URL": "redis://..."}`` spans processes and hosts.
See ``docs/groups.md``.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from .. import conf
from ..server.websocket import WebSocket
from ._hub import EVICTION_CODE, Hub, pause
from ._redis import BackendUnavailable

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_PREFIX",
    "DEFAULT_URL",
    "EVICTION_CODE",
    "BackendUnavailable",
    "add",
    "discard",
    "local_members",
    "send",
    "validate_name",
]

#: At most this many messages wait for one WebSocket before it is closed with 1013.
DEFAULT_MAX_QUEUE = 1000
#: At most this much (``len()`` of the messages) waits for one WebSocket.
DEFAULT_MAX_QUEUE_BYTES = 8 << 20
#: The Redis server used when ``WEBSOCKET_GROUPS`` names none.
DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: The start of every Redis channel name (``PREFIX:group:NAME``).
DEFAULT_PREFIX = "django_websocket"

_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid group name, else raise ``TypeError``/``ValueError``.

    A group name is a ``str`` of 1 to 100 ASCII letters, digits, hyphens,
    underscores and periods (the rule of Django Channels' group names).
    """
    if not isinstance(name, str):
        raise TypeError(f"a group name must be a str, not {type(name).__name__}")
    if _NAME.fullmatch(name) is None:
        raise ValueError(
            f"invalid group name {name!r}: use 1 to 100 ASCII letters, digits, "
            "hyphens, underscores or periods"
        )
    return name


def _websocket(websocket: object) -> WebSocket:
    if isinstance(websocket, WebSocket):
        return websocket
    native = getattr(websocket, "native", None)  # the dwebsocket compatibility wrapper
    if isinstance(native, WebSocket):
        return native
    raise TypeError(
        f"groups take the request's WebSocket (request.websocket), not {type(websocket).__name__}"
    )


def _message(message: object) -> str | bytes:
    if isinstance(message, (str, bytes)):
        return message
    if isinstance(message, (bytearray, memoryview)):
        return bytes(message)  # queued for many sockets: must not change afterwards
    raise TypeError(
        "a group message is str (sent as text) or bytes (sent as binary), "
        f"not {type(message).__name__}"
    )


# ----------------------------------------------------------------------
# Backends


class _Backend(Protocol):
    hub: Hub

    def sync(self, name: str, wait: bool = True) -> None: ...

    def send(self, name: str, message: str | bytes) -> None: ...


class _InProcessBackend:
    """The default: groups of this process's WebSockets only."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def sync(self, name: str, wait: bool = True) -> None:
        return None

    def send(self, name: str, message: str | bytes) -> None:
        if self.hub.deliver(name, message):
            pause()  # let the members' drains run before the next send


def _create(config: dict[str, Any]) -> _Backend:
    hub = Hub(
        config.get("MAX_QUEUE", DEFAULT_MAX_QUEUE),
        config.get("MAX_QUEUE_BYTES", DEFAULT_MAX_QUEUE_BYTES),
    )
    if config.get("BACKEND", "inprocess") == "inprocess":
        return _InProcessBackend(hub)
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ImproperlyConfigured(
            "WEBSOCKET_GROUPS['BACKEND'] is 'redis' but redis-py is not installed: "
            "pip install 'django-websocket-wsgi[redis]'"
        ) from None
    from ._redis import RedisBackend

    backend = RedisBackend(
        hub,
        config.get("URL", DEFAULT_URL),
        config.get("PREFIX", DEFAULT_PREFIX),
        dict(config.get("OPTIONS", {})),
    )
    hub.on_emptied = lambda name: backend.sync(name, wait=False)
    return backend


_lock = threading.Lock()  # never held across a yield
_pid = 0
_backends: list[tuple[dict[str, Any], _Backend]] = []


def _backend() -> _Backend:
    """This process's backend for the current ``WEBSOCKET_GROUPS`` (made on first use)."""
    global _pid
    config: dict[str, Any] = conf.get("WEBSOCKET_GROUPS")
    with _lock:
        if _pid != os.getpid():  # a fork (gunicorn --preload): start afresh
            _pid = os.getpid()
            _backends.clear()
        for known, existing in _backends:
            if known == config:
                return existing
        backend = _create(config)
        snapshot = dict(config)  # a copy: a later change to the setting makes a new backend
        if "OPTIONS" in snapshot:
            snapshot["OPTIONS"] = dict(snapshot["OPTIONS"])
        _backends.append((snapshot, backend))
        return backend


# ----------------------------------------------------------------------
# The API


def add(name: str, websocket: WebSocket) -> None:
    """Make ``websocket`` (a view's ``request.websocket``) a member of group ``name``.

    Idempotent.  The WebSocket leaves all its groups by itself when its
    session ends.  With Redis, returns once this process is subscribed to the
    group (at most a few seconds, not at all while Redis is unreachable), so
    that what is sent to the group afterwards reaches the new member.
    """
    validate_name(name)
    native = _websocket(websocket)
    backend = _backend()
    backend.hub.add(name, native)
    backend.sync(name)


def discard(name: str, websocket: WebSocket) -> None:
    """Remove ``websocket`` from group ``name``; nothing happens if it is not a member."""
    validate_name(name)
    native = _websocket(websocket)
    backend = _backend()
    if backend.hub.discard(name, native):
        backend.sync(name, wait=False)


def send(name: str, message: str | bytes) -> None:
    """Send ``message`` to every member of group ``name``: ``str`` as text, ``bytes`` as binary.

    Returns without waiting for any client: the message is queued for each
    member (and, with Redis, published for the other processes).  Callable
    from WebSocket views, ordinary views, management commands, shells and
    background tasks.  Raises :class:`BackendUnavailable` when Redis cannot
    be reached (the message was sent to no one), ``TypeError`` for a message
    that is neither ``str`` nor bytes-like.
    """
    validate_name(name)
    payload = _message(message)
    _backend().send(name, payload)


def local_members(name: str) -> list[WebSocket]:
    """This process's members of group ``name`` (a snapshot; other processes not included)."""
    validate_name(name)
    return _backend().hub.members(name)
