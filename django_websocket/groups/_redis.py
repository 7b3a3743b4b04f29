"""The Redis pub/sub backend: one subscriber connection per process, one channel per group.

Layout: group ``NAME`` is the Redis channel ``PREFIX:group:NAME``.  A message
is published as one byte saying its kind (``t``: UTF-8 text, ``b``: binary)
followed by its payload; a request to close the group's members
(``groups.close``) as ``c``, the 2-byte close code and the UTF-8 reason.

Member counts: each process keeps, for each group with local members, its
count as a field of the hash ``PREFIX:count:NAME`` (field: the process's
id), written whenever the count changes, and says it is alive with the key
``PREFIX:alive:ID``, which expires after ``COUNT_TTL`` seconds unless a
heartbeat task refreshes it (every third of that).  A count adds the fields
of the processes still alive, so a process that dies without a word stops
being counted within ``COUNT_TTL`` seconds; its stale fields are removed by
the next count that sees them.

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
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..exceptions import WebSocketError
from ._hub import CloseRequest, Hub, pause, spawn

__all__ = ["BackendUnavailable", "RedisBackend", "decode", "encode"]

logger = logging.getLogger("django_websocket.groups")

TEXT, BINARY, CLOSE = b"t", b"b", b"c"

#: Seconds after which a process that stopped refreshing its liveness key
#: (it died) is no longer counted by ``groups.count()``.
DEFAULT_COUNT_TTL = 30.0
#: The name of the heartbeat's thread under a threaded server.
HEARTBEAT_THREAD_NAME = "django-websocket-groups-heartbeat"

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


def encode(message: str | bytes | CloseRequest) -> bytes:
    """A message as it travels through Redis: its kind, then its payload."""
    if isinstance(message, str):
        return TEXT + message.encode("utf-8")
    if isinstance(message, CloseRequest):
        return CLOSE + message.code.to_bytes(2, "big") + message.reason.encode("utf-8")
    return BINARY + message


def decode(data: bytes) -> str | bytes | CloseRequest:
    """The message :func:`encode` made; ``ValueError`` for anything else."""
    kind, payload = data[:1], data[1:]
    if kind == TEXT:
        return payload.decode("utf-8")
    if kind == BINARY:
        return payload
    if kind == CLOSE and len(payload) >= 2:
        return CloseRequest(int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8"))
    raise ValueError(f"not a django-websocket group message: {data[:20]!r}")


class RedisBackend:
    """Groups across processes and hosts through Redis pub/sub (see the module docstring)."""

    def __init__(
        self,
        hub: Hub,
        url: str,
        prefix: str,
        options: dict[str, Any],
        count_ttl: float = DEFAULT_COUNT_TTL,
    ) -> None:
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

        # Member counts (see the module docstring).
        self.count_ttl = count_ttl
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._count_prefix = f"{prefix}:count:"
        self._alive_prefix = f"{prefix}:alive:"
        self._counted: set[str] = set()  # groups with a field of ours in Redis
        self._dirty: set[str] = set()  # groups whose field could not be written yet
        self._heartbeat_started = False

    def channel(self, name: str) -> str:
        """The Redis channel of group ``name``."""
        return self._channel_prefix + name

    # ------------------------------------------------------------------
    # Publishing

    def send(self, name: str, message: str | bytes) -> None:
        """Publish ``message`` to the group's channel; ``BackendUnavailable`` on failure."""
        self._publish(name, message)

    def close(self, name: str, code: int, reason: str) -> None:
        """Publish a request to close the group's members, in every process."""
        self._publish(name, CloseRequest(code, reason))

    def _publish(self, name: str, message: str | bytes | CloseRequest) -> None:
        try:
            self._client.publish(self.channel(name), encode(message))
        except self._redis_errors as exc:
            raise BackendUnavailable(
                f"could not publish to group {name!r} through Redis at {self.url}: {exc}"
            ) from exc

    # ------------------------------------------------------------------
    # Member counts

    def count(self, name: str) -> int:
        """Members of ``name`` in every live process (eventually consistent)."""
        key = self._count_prefix + name
        try:
            fields: dict[Any, Any] = self._client.hgetall(key)
            if not fields:
                return 0
            ids = list(fields)
            alive = self._client.mget([self._alive_prefix.encode() + i for i in ids])
            total = 0
            dead = []
            for process, flag in zip(ids, alive, strict=True):
                if flag is None:
                    dead.append(process)
                else:
                    total += int(fields[process])
            if dead:
                self._client.hdel(key, *dead)  # a process that died: its count is stale
            return total
        except self._redis_errors as exc:
            raise BackendUnavailable(
                f"could not count the members of group {name!r} in Redis at {self.url}: {exc}"
            ) from exc

    def counts_changed(self, names: list[str]) -> None:
        """Write this process's counts of ``names`` now (the heartbeat retries on failure)."""
        with self._lock:
            self._dirty.update(names)
            if not self._heartbeat_started:
                self._heartbeat_started = True
                spawn(self.hub.green, self._heartbeat, name=HEARTBEAT_THREAD_NAME)
        self._write_counts()

    def _write_counts(self) -> bool:
        """Write the dirty counts and refresh the liveness key; ``False`` if Redis failed."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        counts = {name: self.hub.count(name) for name in dirty}
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.set(self._alive_prefix + self.process_id, b"1", px=int(self.count_ttl * 1000))
            for name, count in counts.items():
                if count:
                    pipe.hset(self._count_prefix + name, self.process_id, count)
                else:
                    pipe.hdel(self._count_prefix + name, self.process_id)
            pipe.execute()
        except self._redis_errors as exc:
            logger.debug("groups: could not write member counts: %s", exc)
            with self._lock:
                self._dirty |= dirty
            return False
        with self._lock:
            for name, count in counts.items():
                if count:
                    self._counted.add(name)
                else:
                    self._counted.discard(name)
        return True

    def _heartbeat(self) -> None:
        """Refresh the liveness key every third of ``count_ttl``, and write what failed."""
        while True:
            time.sleep(self.count_ttl / 3)
            with self._lock:
                if not self._counted and not self._dirty:
                    continue  # nothing of ours is counted: no need to say we are alive
                # Everything of ours is rewritten: after an outage, or once our key had
                # expired, another process's count may have removed our fields.
                self._dirty |= self._counted
            try:
                self._write_counts()
            except Exception:
                logger.exception("groups: unexpected error writing member counts")

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
        if isinstance(message, CloseRequest):
            self.hub.close(name, message.code, message.reason)
        elif self.hub.deliver(name, message):
            pause()  # let the drains run before the next message
