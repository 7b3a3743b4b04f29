"""``manage.py runserver`` that serves WebSockets under gevent, with autoreload.

It extends Django's own command (or staticfiles', when that app is
installed) by replacing only the server class; everything else, including
autoreload, system checks and static files, is Django's.  ``--no-gevent``
gives Django's plain threaded server back.

List ``django_websocket`` before ``django.contrib.staticfiles`` in
``INSTALLED_APPS`` so that this command is the one Django picks.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.core.management.base import CommandParser

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as BaseRunserver,
    )
else:
    from django.core.management.commands.runserver import (  # type: ignore[assignment]
        Command as BaseRunserver,
    )

from django_websocket.serving import close_database_connections, green_database_connections

logger = logging.getLogger("django_websocket.server")


class GeventRunServer:
    """Adapts this package's gevent server to the interface ``runserver`` expects.

    Django's ``run()`` constructs ``server_cls(address, handler_class,
    ipv6=...)``, calls ``set_app()`` and ``serve_forever()``.
    """

    daemon_threads = True

    def __init__(self, server_address: tuple[str, int], handler_class: Any, ipv6: bool = False):
        from django_websocket.server.serve import make_server

        host, port = server_address
        self._server = make_server(None, host, port)
        self._server.connection_finished = close_database_connections
        self._server.init_socket()
        self.server_port = self._server.server_port

    def set_app(self, application: Any) -> None:
        """Set the WSGI application to serve."""
        self._server.application = application

    def serve_forever(self) -> None:
        """Serve until the process is stopped (autoreload restarts the process)."""
        # Django 4.2's inner_run leaves the connection its migration check
        # opened (5.x closes it); it belongs to this greenlet, not to a request.
        close_database_connections()
        self._server.serve_forever()

    def server_close(self) -> None:
        """Stop the server."""
        self._server.stop(timeout=1)


class Command(BaseRunserver):
    """Django's ``runserver``, serving HTTP and WebSockets with gevent."""

    help = "Starts a development web server that also serves WebSockets (gevent)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Add ``--no-gevent`` to Django's arguments."""
        super().add_arguments(parser)
        parser.add_argument(
            "--no-gevent",
            action="store_false",
            dest="use_gevent",
            help="Use Django's plain threaded server (WebSockets then hold a thread each).",
        )

    def check_migrations(self) -> None:
        """Django's check for unapplied migrations, then close the connection it opened.

        Django 4.2 leaves that connection open in the main thread for the
        server's whole life: one database connection held by a server whose
        WebSockets hold none while they wait.
        """
        try:
            super().check_migrations()
        finally:
            close_database_connections()

    def handle(self, *args: Any, **options: Any) -> None:
        """Monkey-patch with gevent (unless ``--no-gevent``) before the server starts."""
        if options.get("use_gevent", True):
            from gevent import monkey

            if not monkey.is_module_patched("socket"):
                monkey.patch_all()
                # django.db was imported before patching (by Django's own
                # management machinery): its connection storage would be
                # shared by every greenlet.
                green_database_connections()
            self.server_cls = GeventRunServer  # type: ignore[assignment]
        super().handle(*args, **options)
