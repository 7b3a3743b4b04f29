"""What the package's servers need from Django: database connections per greenlet, static files.

Shared by ``python -m django_websocket`` and this app's ``manage.py runserver``,
so both follow the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["close_database_connections", "green_database_connections", "static_files_handler"]


def green_database_connections() -> None:
    """Make Django's database connections per greenlet in a process patched after ``django.db``.

    Django keeps each thread's connections in an ``asgiref.local.Local``
    whose storage is a ``threading.local`` made when ``django.db`` was
    imported.  Made before ``gevent.monkey.patch_all()``, that storage is
    shared by every greenlet of the thread, and the second greenlet to use a
    connection is refused ("DatabaseWrapper objects created in a thread can
    only be used in that same thread").  This closes the connections opened
    so far and gives the handler fresh storage, made after patching (so
    greenlet-local).  Call it once, right after patching.
    """
    from asgiref.local import Local
    from django.db import connections

    close_database_connections(shared=True)
    connections._connections = Local(connections.thread_critical)  # type: ignore[attr-defined]


def close_database_connections(*, shared: bool = False) -> None:
    """Close the calling greenlet's (or thread's) database connections.

    The servers call it when a client connection ends, as Django's threaded
    development server does when its thread ends: with ``CONN_MAX_AGE`` set,
    Django keeps a connection open after each request, and a greenlet that
    ends would otherwise leave it to the garbage collector.  ``shared``
    closes connections that another thread or greenlet opened (used once,
    when connections made before patching are dropped).
    """
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if shared:
            connection.inc_thread_sharing()
        try:
            connection.close()
        finally:
            if shared:
                connection.dec_thread_sharing()


def static_files_handler(
    application: Callable[..., Any], *, enabled: bool = True, insecure: bool = False
) -> Callable[..., Any]:
    """``application``, serving ``STATIC_URL`` first when ``manage.py runserver`` would.

    As ``runserver`` does: only with ``django.contrib.staticfiles``
    installed, and only with ``DEBUG = True`` unless ``insecure``; never
    when ``enabled`` is false (``--nostatic``).  Files are found by the
    staticfiles finders, as in development; in production collect them with
    ``collectstatic`` and let the proxy serve them.
    """
    from django.apps import apps
    from django.conf import settings

    if not enabled or not apps.is_installed("django.contrib.staticfiles"):
        return application
    if not (settings.DEBUG or insecure):
        return application
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    return StaticFilesHandler(application)  # type: ignore[arg-type]
