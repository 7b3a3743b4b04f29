"""Let go of database connections while a WebSocket view waits for its client.

Django closes a request's obsolete database connections when the request
starts and when it finishes (``close_old_connections``, per ``CONN_MAX_AGE``
and ``CONN_HEALTH_CHECKS``).  A WebSocket view is one request that lasts as
long as its socket, so without more, every view that touched the ORM once
holds its connection until the socket closes: 5,000 idle chat sockets hold
5,000 PostgreSQL connections.  With ``WEBSOCKET_CLOSE_DB_CONNECTIONS`` (on
by default), :func:`close_idle_connections` runs each time the view's
``receive()`` is about to wait for the client, and closes what Django would
close between two requests.  A message already queued is returned without
it: a view that keeps up with a busy client keeps its connection.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connections

__all__ = ["close_idle_connections"]

logger = logging.getLogger("django_websocket")


def close_idle_connections() -> None:
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
    looks each alias up twice; ``bench/db_connections.py``).
    """
    initialized = connections._connections  # type: ignore[attr-defined]  # per task
    for alias in connections:
        connection = getattr(initialized, alias, None)
        if connection is None or connection.connection is None:
            continue  # never used in this task, or nothing open
        if connection.in_atomic_block or (
            connection.autocommit != connection.settings_dict["AUTOCOMMIT"]
        ):
            continue  # a transaction the view is in the middle of
        try:
            connection.close_if_unusable_or_obsolete()
        except DatabaseError as exc:
            # Django has let go of the connection all the same; the view's
            # receive() is no place for a database error.
            logger.warning("closing idle database connection %r failed: %s", connection.alias, exc)
