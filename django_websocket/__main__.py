"""``python -m django_websocket [ADDR:]PORT``: serve a Django project with WebSockets under gevent.

gevent's monkey-patching happens first, before anything imports Django, so
that database drivers and HTTP clients cooperate with other connections.
The server is meant to face clients directly: every limit it enforces
(:class:`~django_websocket.server.handler.Limits`) is a command-line option.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Any

DEFAULT_ADDR = "127.0.0.1"
DEFAULT_PORT = 8000

#: The name of the console script that runs :func:`main`.
SCRIPT = "django-websocket-wsgi"

_ADDRPORT = re.compile(r"^(?:(?P<addr>\[[0-9a-fA-F:.]+\]|[^:\[\]]+):)?(?P<port>\d+)$")


def parse_addrport(value: str) -> tuple[str, int]:
    """Parse ``PORT``, ``ADDR:PORT`` or ``[IPV6]:PORT``; raise ``ValueError`` otherwise."""
    match = _ADDRPORT.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not PORT or ADDR:PORT")
    port = int(match.group("port"))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    addr = match.group("addr") or DEFAULT_ADDR
    return addr.strip("[]"), port


def build_parser() -> argparse.ArgumentParser:
    """The command line of the server entrypoint."""
    parser = argparse.ArgumentParser(
        prog="python -m django_websocket",
        description="Serve a Django project, HTTP and WebSockets, with gevent.",
    )
    parser.add_argument(
        "addrport",
        nargs="?",
        default=f"{DEFAULT_ADDR}:{DEFAULT_PORT}",
        help=f"PORT or ADDR:PORT to listen on (default {DEFAULT_ADDR}:{DEFAULT_PORT})",
    )
    parser.add_argument("--settings", help="settings module (default: $DJANGO_SETTINGS_MODULE)")
    parser.add_argument(
        "--pythonpath", help="directory to add to sys.path (default: the current directory)"
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=None,
        help="on SIGTERM/SIGINT, exit within this many seconds; WebSockets not closed within "
        "WEBSOCKET_CLOSE_TIMEOUT (at most half of it) are cut (default: "
        "WEBSOCKET_SHUTDOWN_TIMEOUT, 10)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    from .server.handler import DEFAULT_LIMITS as limits

    group = parser.add_argument_group("limits (each client, and the server as a whole)")
    group.add_argument(
        "--header-timeout",
        type=float,
        default=limits.header_timeout,
        metavar="SECONDS",
        help="a request's head (request line and header fields) must arrive within this "
        "time, from the accept or from its first byte (default %(default)s)",
    )
    group.add_argument(
        "--keepalive-timeout",
        type=float,
        default=limits.keepalive_timeout,
        metavar="SECONDS",
        help="close a connection idle this long between two HTTP requests (default %(default)s)",
    )
    group.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help="connections served at once, WebSockets included; more get 503 (default: half "
        "of the descriptor limit, ulimit -n, less 100 kept for the process)",
    )
    group.add_argument(
        "--limit-request-line",
        type=int,
        default=limits.max_request_line,
        metavar="BYTES",
        help="longest request line, at most 8190; longer gets 414 (default %(default)s)",
    )
    group.add_argument(
        "--limit-request-fields",
        type=int,
        default=limits.max_header_fields,
        metavar="N",
        help="most header fields in a request, at most 99; more gets 431 (default %(default)s)",
    )
    group.add_argument(
        "--limit-request-field-size",
        type=int,
        default=limits.max_header_line,
        metavar="BYTES",
        help="longest header field line, at most 65536; longer gets 431 (default %(default)s)",
    )
    static = parser.add_argument_group("static files (as manage.py runserver serves them)")
    static.add_argument(
        "--nostatic",
        action="store_false",
        dest="use_static_handler",
        help="do not serve STATIC_URL, even with DEBUG = True and django.contrib.staticfiles",
    )
    static.add_argument(
        "--insecure",
        action="store_true",
        dest="insecure_serving",
        help="serve STATIC_URL even with DEBUG = False (development only)",
    )
    return parser


def _limits(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    from .server.handler import Limits

    try:
        return Limits(
            header_timeout=args.header_timeout,
            keepalive_timeout=args.keepalive_timeout,
            max_request_line=args.limit_request_line,
            max_header_fields=args.limit_request_fields,
            max_header_line=args.limit_request_field_size,
            max_connections=args.max_connections,
        )
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m django_websocket`` and the ``django-websocket-wsgi`` script."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        host, port = parse_addrport(args.addrport)
    except ValueError as exc:
        parser.error(str(exc))
    limits = _limits(parser, args)
    sys.path.insert(0, args.pythonpath or os.getcwd())
    if args.settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        parser.error("no settings: pass --settings or set DJANGO_SETTINGS_MODULE")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    import django

    django.setup()

    from django.core.servers.basehttp import get_internal_wsgi_application

    from . import conf
    from .server.serve import make_server, serve
    from .serving import close_database_connections, static_files_handler

    application = static_files_handler(
        get_internal_wsgi_application(),
        enabled=args.use_static_handler,
        insecure=args.insecure_serving,
    )
    timeout = args.shutdown_timeout
    if timeout is None:
        timeout = float(conf.get("WEBSOCKET_SHUTDOWN_TIMEOUT"))
    log = logging.getLogger("django_websocket.server")
    try:
        server = make_server(application, host, port, limits=limits)
        server.init_socket()
    except OSError as exc:
        log.error("Cannot listen on %s:%d: %s", host, port, exc)
        return 1
    server.connection_finished = close_database_connections
    log.info(
        "Limits: header timeout %.1f s, keep-alive timeout %.1f s, at most %d connections",
        limits.header_timeout,
        limits.keepalive_timeout,
        server.max_connections,
    )
    serve(server, timeout, float(conf.get("WEBSOCKET_CLOSE_TIMEOUT")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
