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

From anywhere, too: ``groups.close(name, code, reason)`` closes every
member, ``groups.count(name)`` counts them, in every process.  Every socket
opened by a logged-in session is also a member of two internal groups, its
session's and its user's, so that ``groups.close_user(user)`` reaches all of
a user's sockets and a logout closes the session's sockets with
:data:`LOGOUT_CODE` (``WEBSOCKET_CLOSE_ON_LOGOUT``).  See ``docs/groups.md``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from typing import Any, Protocol

from django.contrib.auth.signals import user_logged_out
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from .. import conf
from ..protocol import CloseCode
from ..protocol.frames import encode_close_payload
from ..server.websocket import WebSocket
from ._hub import EVICTION_CODE, Hub, pause
from ._redis import DEFAULT_COUNT_TTL, BackendUnavailable

logger = logging.getLogger("django_websocket.groups")

__all__ = [
    "DEFAULT_COUNT_TTL",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_PREFIX",
    "DEFAULT_URL",
    "EVICTION_CODE",
    "LOGOUT_CODE",
    "LOGOUT_REASON",
    "BackendUnavailable",
    "add",
    "close",
    "close_user",
    "count",
    "discard",
    "local_members",
    "send",
    "validate_name",
]

#: Close code of the sockets of a session that logged out (an application code, 4000-4999).
LOGOUT_CODE = 4401
LOGOUT_REASON = "logged out"

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


def _close_args(code: object, reason: object) -> tuple[int, str]:
    """Validate a close code and reason for ``close()``: ``TypeError``/``ValueError``."""
    if not isinstance(code, int) or isinstance(code, bool):
        raise TypeError(f"a close code is an int, not {type(code).__name__}")
    if not isinstance(reason, str):
        raise TypeError(f"a close reason is a str, not {type(reason).__name__}")
    # "Note that this status code is not used by the server, because it can fail
    # the WebSocket handshake instead" (RFC 6455 section 7.4.1, about 1010).
    if code == CloseCode.MANDATORY_EXTENSION:
        raise ValueError("close code 1010 is for clients only (RFC 6455 section 7.4.1)")
    encode_close_payload(code, reason)  # ValueError: 1004-1006, 1015, unassigned, > 123 bytes
    return int(code), reason


# Internal groups: names with a colon, which group names of users cannot have.
_SESSION_GROUP = "session:"
_USER_GROUP = "user:"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def session_group(session_key: str) -> str:
    """The internal group of the sockets opened by the session ``session_key``.

    A digest of the key: session keys are secrets and must not appear in Redis
    channel names.
    """
    return _SESSION_GROUP + _digest(session_key)


def user_group(user_pk: object) -> str:
    """The internal group of the sockets opened by the user with primary key ``user_pk``."""
    pk = str(user_pk)
    return _USER_GROUP + (pk if _NAME.fullmatch(pk) else _digest(pk))


def _counted(name: str) -> bool:
    return ":" not in name  # internal groups are not counted


# ----------------------------------------------------------------------
# Backends


class _Backend(Protocol):
    hub: Hub

    def sync(self, name: str, wait: bool = True) -> None: ...

    def send(self, name: str, message: str | bytes) -> None: ...

    def close(self, name: str, code: int, reason: str) -> None: ...

    def count(self, name: str) -> int: ...


class _InProcessBackend:
    """The default: groups of this process's WebSockets only."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def sync(self, name: str, wait: bool = True) -> None:
        return None

    def send(self, name: str, message: str | bytes) -> None:
        if self.hub.deliver(name, message):
            pause()  # let the members' drains run before the next send

    def close(self, name: str, code: int, reason: str) -> None:
        if self.hub.close(name, code, reason):
            pause()  # let the members' tasks start closing

    def count(self, name: str) -> int:
        return self.hub.count(name)


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
        float(config.get("COUNT_TTL", DEFAULT_COUNT_TTL)),
    )
    hub.on_emptied = lambda name: backend.sync(name, wait=False)

    def changed(names: list[str]) -> None:
        counted = [name for name in names if _counted(name)]
        if counted:
            backend.counts_changed(counted)

    hub.on_changed = changed
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


def close(name: str, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
    """Close every member of group ``name``, in every process, with ``code`` and ``reason``.

    Each member leaves all its groups at once; what was already sent to the
    group before reaches it first, then the close frame (written by the
    member's own task, never at the same time as its view's sends).  Its
    view sees the socket closed: ``receive()`` returns ``None``, iteration
    ends, ``close_code`` is set, and the session ends as usual.  Returns
    without waiting for the closing handshakes.

    ``code`` must be one a server may send (RFC 6455 section 7.4.1): 1000-1003,
    1007-1009, 1011-1014, or 3000-4999 (applications: 4000-4999); the reason at
    most 123 bytes of UTF-8.  Else ``ValueError`` (``TypeError`` for other
    types), before anything is sent.  Raises :class:`BackendUnavailable` when
    Redis cannot be reached (no socket was closed).
    """
    validate_name(name)
    _close(name, code, reason)


def _close(name: str, code: object, reason: object) -> None:
    checked_code, checked_reason = _close_args(code, reason)
    _backend().close(name, checked_code, checked_reason)


def close_user(user: Any, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
    """Close every socket opened by ``user`` (a user object or its primary key), everywhere.

    A socket belongs to a user when its request's session was logged in as
    that user when it opened.  Same codes, errors and guarantees as :func:`close`.
    """
    pk = getattr(user, "pk", user)
    if pk is None:
        raise ValueError("close_user() needs a saved user or a primary key, not None")
    _close(user_group(pk), code, reason)


def count(name: str) -> int:
    """How many sockets are members of group ``name``, in every process.

    In-process: exact.  With Redis: eventually consistent; each process
    publishes its count when it changes, and the count of a process that
    died is dropped within ``WEBSOCKET_GROUPS["COUNT_TTL"]`` seconds (30).
    Raises :class:`BackendUnavailable` when Redis cannot be reached.
    """
    validate_name(name)
    return _backend().count(name)


def join_session_groups(request: HttpRequest, websocket: WebSocket) -> None:
    """Make a socket opened by a logged-in session a member of its session's and user's groups.

    Called for every WebSocket before its view runs.  The user is read from
    the session (no database query for the user); a request without a
    session, or whose session has no logged-in user, joins nothing.
    """
    from django.contrib.auth import SESSION_KEY

    session = getattr(request, "session", None)
    if session is None:
        return
    user_pk = session.get(SESSION_KEY)
    session_key = session.session_key
    if user_pk is None or not session_key:
        return
    backend = _backend()
    for name in (session_group(session_key), user_group(user_pk)):
        backend.hub.add(name, websocket)
        backend.sync(name)


def _close_session_on_logout(sender: object, request: HttpRequest | None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: close the sockets of the session that logged out."""
    if request is None or not conf.get("WEBSOCKET_CLOSE_ON_LOGOUT"):
        return
    session = getattr(request, "session", None)
    session_key = getattr(session, "session_key", None)
    if not session_key:
        return
    try:
        _backend().close(session_group(session_key), LOGOUT_CODE, LOGOUT_REASON)
    except BackendUnavailable as exc:
        logger.warning(
            "groups: a session logged out but its WebSockets could not be closed: %s", exc
        )


user_logged_out.connect(_close_session_on_logout, dispatch_uid="django_websocket.groups.logout")
