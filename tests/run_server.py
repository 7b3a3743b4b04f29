"""Start the test project under a server other than the package's own, for the server tests.

Usage: python run_server.py KIND PORT

KIND is one of:

``stock-gevent``
    gevent's own ``WSGIServer`` around Django's WSGI application, as a user
    would write it;
``hidden-socket``
    the same, but the application only sees a copy of the request body, as
    under mod_wsgi, so no socket can be taken;
``gevent-websocket``
    gevent's ``WSGIServer`` with gevent-websocket's ``WebSocketHandler``,
    which answers the handshake itself and puts its own connection object in
    ``environ["wsgi.websocket"]`` before Django runs; it agrees to the
    subprotocol ``chat.v1`` for ``/subprotocol/`` (through the application's
    ``app_protocol()``, gevent-websocket's own way to choose one).
"""

from __future__ import annotations

import io
import sys

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402

from django.core.wsgi import get_wsgi_application  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402


def hide_socket(application):
    """A WSGI middleware that behaves like a server that keeps its socket to itself."""

    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["SERVER_SOFTWARE"] = "hidden-socket/1.0"
        return application(environ, start_response)

    return app


class ChoosesSubprotocol:
    """A WSGI application wrapper that tells gevent-websocket which subprotocol to agree to."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        """Serve the request with the wrapped application."""
        return self.application(environ, start_response)

    def app_protocol(self, path):
        """The subprotocol gevent-websocket offers for ``path`` (if the client asked for it)."""
        return "chat.v1" if path == "/subprotocol/" else None


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    application = get_wsgi_application()
    options = {}
    if kind == "hidden-socket":
        application = hide_socket(application)
    elif kind == "gevent-websocket":
        from geventwebsocket.handler import WebSocketHandler

        options["handler_class"] = WebSocketHandler
        application = ChoosesSubprotocol(application)
    elif kind != "stock-gevent":
        raise SystemExit(f"unknown server kind {kind!r}")
    print(f"serving {kind} on {port}", flush=True)
    WSGIServer(("127.0.0.1", port), application, **options).serve_forever()


if __name__ == "__main__":
    main()
