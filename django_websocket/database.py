"""Let go of database connections while a WebSocket view waits for its client.

Django closes a request's obsolete database connections when the request
starts and when it finishes (``close_old_connections``, per ``CONN_MAX_AGE``
and ``CONN_HEALTH_CHECKS``).  A WebSocket view is one request that lasts as
long as its socket, so without more, every view that touched the ORM once
would hold its connection until the socket closed: 5,000 idle chat sockets,
5,000 PostgreSQL connections.  With ``WEBSOCKET_CLOSE_DB_CONNECTIONS`` (on
by default), :func:`close_idle_connections` runs each time the view's
``receive()`` is about to wait for the client, and closes what Django would
close between two requests.  A message already queued is returned without
it: a view that keeps up with a busy client keeps its connection.  Each
session gets its own :func:`session_hook`, which skips even that look-up
while no connection has been opened anywhere in the process since it last
found its task holding none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError, connections
from django.db.backends.signals import connection_created

__all__ = ["close_idle_connections", "session_hook"]

logger = logging.getLogger("django_websocket")

#: Database connections opened in this process so far (``connection_created``).
_opened = 0


def _count_opened(**kwargs: object) -> None:
    global _opened
    _opened += 1


connection_created.connect(_count_opened, dispatch_uid="django_websocket.database")


def session_hook() -> Callable[[], None]:
    """A WebSocket session's ``on_idle``: :func:`close_idle_connections`, skipped when idle.

    Every connection is opened through Django's ``connect()``, which sends
    ``connection_created``.  Once the session's task holds no open
    connection, it cannot hold one again before that signal is sent, so
    until the process-wide count moves the look-up is skipped: a view that
    never queries pays one comparison per wait, not one look-up per alias.
    """
    clean_at = -1  # the count when this task last held no open connection

    def on_idle() -> None:
        nonlocal clean_at
        if clean_at == _opened:
            return
        opened = _opened  # read first: a connection opened meanwhile moves it again
        clean_at = opened if close_idle_connections() else -1

    return on_idle


def close_idle_connections() -> bool:
    """Close the calling task's connections that Django would close at the end of a request.

    Those are the connections whose ``CONN_MAX_AGE`` has passed (at once
    with the default of 0), and those left unusable by an error, decided
    by Django's own ``close_if_unusable_or_obsolete()``.  Never a
    connection inside a transaction: neither one in ``transaction.atomic()``
    nor one whose autocommit the view turned off (Django would close both at
    the end of a request, because the autocommit differs from the
    settings'; here the view is still running and its transaction must
    survive the wait).  Only connections this greenlet or thread has already
    made are looked at (``connections.all(initialized_only=True)``'s set),
    so a view that never touched the database pays one look-up per
    database alias: about 1 µs for one alias (``all()`` itself takes 3, as it
    looks each alias up twice; ``bench/db_connections.py``).  Returns whether
    the task is left without any open connection.

    Call it from a view that waits elsewhere than in ``receive()`` (a
    push-only view's sleep, say); unlike ``django.db.close_old_connections()``
    it leaves a transaction in progress alone.
    """
    initialized = connections._connections  # type: ignore[attr-defined]  # per task
    none_open = True
    for alias in connections:
        connection = getattr(initialized, alias, None)
        if connection is None or connection.connection is None:
            continue  # never used in this task, or nothing open
        if connection.in_atomic_block or (
            connection.autocommit != connection.settings_dict["AUTOCOMMIT"]
        ):
            none_open = False
            continue  # a transaction the view is in the middle of
        try:
            connection.close_if_unusable_or_obsolete()
        except DatabaseError as exc:
            # Django has let go of the connection all the same; the view's
            # receive() is no place for a database error.
            logger.warning("closing idle database connection %r failed: %s", connection.alias, exc)
        if connection.connection is not None:
            none_open = False  # kept: CONN_MAX_AGE not reached
    return none_open
