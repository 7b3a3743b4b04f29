"""``python -m django_websocket [ADDR:]PORT``: serve a Django project with WebSockets under gevent.

gevent's monkey-patching happens first, before anything imports Django, so
that database drivers and HTTP clients cooperate with other connections.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

DEFAULT_ADDR = "127.0.0.1"
DEFAULT_PORT = 8000

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
        help="seconds to wait for open WebSockets on SIGTERM (default: "
        "WEBSOCKET_SHUTDOWN_TIMEOUT, 10)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m django_websocket`` and the ``django-websocket`` script."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        host, port = parse_addrport(args.addrport)
    except ValueError as exc:
        parser.error(str(exc))
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

    application = get_internal_wsgi_application()
    timeout = args.shutdown_timeout
    if timeout is None:
        timeout = float(conf.get("WEBSOCKET_SHUTDOWN_TIMEOUT"))
    try:
        server = make_server(application, host, port)
        server.init_socket()
    except OSError as exc:
        logging.getLogger("django_websocket.server").error(
            "Cannot listen on %s:%d: %s", host, port, exc
        )
        return 1
    serve(server, timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
