"""The Redis pub/sub backend: one subscriber connection per process, one channel per group.

Layout: group ``NAME`` is the Redis channel ``PREFIX:group:NAME``.  A message
is published as one byte saying its kind (``t``: UTF-8 text, ``b``: binary)
followed by its payload.

Each process holds one pub/sub connection, read by one task (a greenlet
under gevent, a thread otherwise) started when the process's first local
member joins; the task closes the connection and ends once no group has
local members (it starts again with the next member).  A group's channel is
subscribed to while the group has local members here and unsubscribed from
when it has none.  When the connection drops, the task reconnects with
exponential backoff, subscribes again to the channels of every local group,
and logs (WARNING) for how long messages could have been missed.
Publishing uses an ordinary connection pool and never retries (at most
once).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..exceptions import WebSocketError
from ._hub import Hub, pause, spawn

__all__ = ["BackendUnavailable", "RedisBackend", "decode", "encode"]

logger = logging.getLogger("django_websocket.groups")

TEXT, BINARY = b"t", b"b"

#: Seconds without any traffic on the pub/sub connection before a PING; as
#: long again without an answer and the connection counts as lost.
PING_INTERVAL = 15.0
#: How long :meth:`RedisBackend.sync` waits for Redis to confirm a subscription.
SUBSCRIBE_TIMEOUT = 5.0
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
#: The name of the reader's thread under a threaded server.
READER_THREAD_NAME = "django-websocket-groups-redis"

_CONNECTING, _UP, _DOWN = "connecting", "up", "down"


class BackendUnavailable(WebSocketError):
    """The groups backend (Redis) could not be reached: the message was not sent."""


class _Event(Protocol):
    def set(self) -> None: ...
    def wait(self, timeout: float | None = ...) -> bool: ...


def encode(message: str | bytes) -> bytes:
    """A message as it travels through Redis: its kind, then its payload."""
    if isinstance(message, str):
        return TEXT + message.encode("utf-8")
    return BINARY + message


def decode(data: bytes) -> str | bytes:
    """The message :func:`encode` made; ``ValueError`` for anything else."""
    kind, payload = data[:1], data[1:]
    if kind == TEXT:
        return payload.decode("utf-8")
    if kind == BINARY:
        return payload
    raise ValueError(f"not a django-websocket group message: {data[:20]!r}")


class RedisBackend:
    """Groups across processes and hosts through Redis pub/sub (see the module docstring)."""

    def __init__(self, hub: Hub, url: str, prefix: str, options: dict[str, Any]) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.hub = hub
        self.url = url
        self.prefix = prefix
        self._channel_prefix = f"{prefix}:group:"
        self._channel_prefix_bytes = self._channel_prefix.encode("ascii")
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": 5.0,
            "socket_timeout": 5.0,
            # A retried PUBLISH could be delivered twice: never retry (at most once).
            "retry": Retry(NoBackoff(), 0),
            **options,
        }
        kwargs["decode_responses"] = False
        self._client = redis.Redis.from_url(url, **kwargs)
        sub_pool = redis.ConnectionPool.from_url(
            url, **{**kwargs, "health_check_interval": 0, "protocol": 2}
        )
        self._connection_class: Callable[..., Any] = sub_pool.connection_class
        self._connection_kwargs = dict(sub_pool.connection_kwargs)
        self._redis_errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

        self._lock: AbstractContextManager[Any] = threading.RLock()
        self._conn: Any = None  # the pub/sub connection while _state is _UP
        self._state = _CONNECTING
        self._started = False
        self._subscribed: set[str] = set()  # groups whose SUBSCRIBE was sent (or will be)
        # Markers for SUBSCRIBE commands sent and not yet confirmed, per channel,
        # matched first-in first-out with Redis's "subscribe" replies.
        self._pending: dict[bytes, deque[_Event | None]] = {}
        # Waiters of subscriptions requested before the connection was up.
        self._unsent: dict[str, list[_Event]] = {}
        self._down_since: float | None = None
        self._down_groups: set[str] = set()

    def channel(self, name: str) -> str:
        """The Redis channel of group ``name``."""
        return self._channel_prefix + name

    # ------------------------------------------------------------------
    # Publishing

    def send(self, name: str, message: str | bytes) -> None:
        """Publish ``message`` to the group's channel; ``BackendUnavailable`` on failure."""
        try:
            self._client.publish(self.channel(name), encode(message))
        except self._redis_errors as exc:
            raise BackendUnavailable(
                f"could not publish to group {name!r} through Redis at {self.url}: {exc}"
            ) from exc

    # ------------------------------------------------------------------
    # Subscriptions

    def sync(self, name: str, wait: bool = True) -> None:
        """Subscribe to or unsubscribe from ``name``'s channel to match the local members.

        After a subscription it waits (up to :data:`SUBSCRIBE_TIMEOUT`) until
        Redis confirms it, so that a message published once ``groups.add()``
        has returned reaches the new member; it does not wait while Redis is
        known to be unreachable.
        """
        event: _Event | None = None
        with self._lock:
            want = self.hub.has_members(name)
            have = name in self._subscribed
            if want == have:
                return
            channel = self.channel(name)
            if want:
                self._subscribed.add(name)
                if self._state == _UP:
                    event = self._new_event() if wait else None
                    if self._write("SUBSCRIBE", channel):
                        self._pending.setdefault(channel.encode("ascii"), deque()).append(event)
                    else:
                        event = None
                elif self._state == _CONNECTING and wait:
                    event = self._new_event()
                    self._unsent.setdefault(name, []).append(event)
                self._start()
            else:
                self._subscribed.discard(name)
                if self._state == _UP:
                    self._write("UNSUBSCRIBE", channel)
        if event is not None and not event.wait(SUBSCRIBE_TIMEOUT):
            logger.warning(
                "groups: Redis did not confirm the subscription to %s within %.0f s",
                channel,
                SUBSCRIBE_TIMEOUT,
            )

    def _write(self, *command: str) -> bool:
        """Send a command on the pub/sub connection (lock held); ``False`` if it failed."""
        conn = self._conn
        if conn is None or getattr(conn, "_sock", None) is None:
            return False  # the reader is about to notice and reconnect
        try:
            conn.send_command(*command, check_health=False)
        except self._redis_errors as exc:
            # The connection is closed by redis-py; the reader sees it and reconnects.
            logger.debug("groups: %s failed: %s", command[0], exc)
            return False
        return True

    def _new_event(self) -> _Event:
        if self.hub.green:
            from gevent.event import Event

            event: _Event = Event()
            return event
        return threading.Event()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            spawn(self.hub.green, self._run, name=READER_THREAD_NAME)

    # ------------------------------------------------------------------
    # The reader task

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            if self._stop_if_idle(None):
                return
            try:
                conn = self._connect()
            except self._redis_errors as exc:
                self._failed(None, exc)
                time.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except Exception:
                logger.exception("groups: unexpected error connecting to Redis")
                time.sleep(BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            try:
                self._read(conn)
                return  # no group has members here any more; the connection is closed
            except self._redis_errors as exc:
                self._failed(conn, exc)
            except Exception as exc:
                logger.exception("groups: unexpected error reading from Redis")
                self._failed(conn, exc)

    def _stop_if_idle(self, conn: Any) -> bool:
        """End the reader when no group has members here; ``True`` if it must return.

        Decided under the lock that :meth:`sync` holds, so a member joining at
        the same time either is seen here or finds the reader stopped and
        starts a new one.
        """
        with self._lock:
            if self._subscribed:
                return False
            self._started = False
            self._conn = None
            self._state = _CONNECTING
            # Nothing is subscribed: nothing was missed, and no waiter is left.
            self._down_since = None
            self._down_groups = set()
            self._release([*self._pending.values(), *self._unsent.values()])
            self._pending.clear()
            self._unsent.clear()
        if conn is not None:
            conn.disconnect()
        logger.debug("groups: no group has members here; Redis pub/sub connection closed")
        return True

    def _connect(self) -> Any:
        conn = self._connection_class(**self._connection_kwargs)
        conn.connect()
        with self._lock:
            names = sorted(self._subscribed)
            if names:
                try:
                    conn.send_command("SUBSCRIBE", *map(self.channel, names), check_health=False)
                except BaseException:
                    conn.disconnect()
                    raise
            self._pending.clear()
            for name in names:
                events = self._unsent.pop(name, [None])
                self._pending.setdefault(self.channel(name).encode("ascii"), deque()).extend(events)
            self._release(self._unsent.pop(key) for key in list(self._unsent))
            self._conn = conn
            self._state = _UP
            down_since, self._down_since = self._down_since, None
            missed = sorted(self._down_groups | set(names))
            self._down_groups = set()
        if down_since is not None:
            outage = time.monotonic() - down_since
            if missed:
                logger.warning(
                    "groups: Redis pub/sub connection back after %.1f s; messages published "
                    "in that time to %d group(s) with members here (%s) were not delivered "
                    "to them",
                    outage,
                    len(missed),
                    ", ".join(missed[:10]) + (", ..." if len(missed) > 10 else ""),
                )
            else:
                logger.info("groups: Redis pub/sub connection back after %.1f s", outage)
        return conn

    def _failed(self, conn: Any, exc: BaseException) -> None:
        """The connection was lost (or could not be made): forget it, log once per outage."""
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
            if self._state == _UP:
                self._down_groups |= self._subscribed
            self._conn = None
            self._state = _DOWN
            pending = [event for events in self._pending.values() for event in events]
            self._pending.clear()
            self._release([pending, *self._unsent.values()])
            self._unsent.clear()
        if conn is not None:
            conn.disconnect()
        if first:
            logger.warning(
                "groups: Redis pub/sub connection to %s %s (%s); reconnecting. Group messages "
                "published until it is back do not reach this process's members",
                self.url,
                "lost" if conn is not None else "failed",
                exc,
            )

    @staticmethod
    def _release(groups_of_events: Any) -> None:
        for events in groups_of_events:
            for event in events:
                if event is not None:
                    event.set()

    def _read(self, conn: Any) -> None:
        """Read the pub/sub connection until it fails (raises) or no group has members here."""
        if self._stop_if_idle(conn):  # the last member left while connecting
            return
        pinged = False
        while True:
            if not conn.can_read(timeout=PING_INTERVAL):
                if pinged:
                    raise TimeoutError(f"no answer to PING within {PING_INTERVAL:.0f} s")
                if self._stop_if_idle(conn):
                    return
                with self._lock:
                    conn.send_command("PING", check_health=False)
                pinged = True
                continue
            pinged = False
            reply = conn.read_response()
            if isinstance(reply, list) and len(reply) == 3:
                kind = reply[0]
                if kind == b"message":
                    self._dispatch(reply[1], reply[2])
                elif kind == b"subscribe":
                    with self._lock:
                        events = self._pending.get(reply[1])
                        event = events.popleft() if events else None
                        if events is not None and not events:
                            del self._pending[reply[1]]
                    if event is not None:
                        event.set()
                elif kind == b"unsubscribe" and reply[2] == 0 and self._stop_if_idle(conn):
                    return

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        if not channel.startswith(self._channel_prefix_bytes):
            return
        name = channel[len(self._channel_prefix_bytes) :].decode("ascii", "replace")
        try:
            message = decode(data)
        except ValueError as exc:
            logger.warning("groups: dropped a message on %r: %s", channel, exc)
            return
        if self.hub.deliver(name, message):
            pause()  # let the drains run before the next message
