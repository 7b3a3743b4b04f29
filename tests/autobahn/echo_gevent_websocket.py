"""Minimal WebSocket echo server built on gevent-websocket, for the Autobahn harness.

This is *not* the project's server: it exists to prove that the Autobahn|Testsuite
harness (``runner.py`` and ``tests/test_autobahn.py``) works end to end before our own
server is ready. gevent-websocket 0.10.1 is known to fail a good number of cases (no
fail-fast UTF-8 validation, no close-code checks, no permessage-deflate), which makes it
a handy demonstration of how failures are reported.

Usage::

    python tests/autobahn/echo_gevent_websocket.py 9001
    python tests/autobahn/echo_gevent_websocket.py --host 127.0.0.1 9001

It serves every path, echoes text messages as text and binary messages as binary, and
runs until it is terminated (SIGTERM / SIGINT).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gevent
from gevent import monkey

monkey.patch_all()

from geventwebsocket import Resource, WebSocketApplication, WebSocketServer  # noqa: E402
from geventwebsocket.exceptions import WebSocketError  # noqa: E402


class EchoApplication(WebSocketApplication):  # type: ignore[misc]
    """Echo every message back to the peer, preserving its type (text or binary)."""

    def handle(self) -> None:
        """Receive messages until the connection closes, sending each one back."""
        while True:
            try:
                message = self.ws.receive()
            except WebSocketError:
                break
            if message is None:
                # Closed (cleanly or after a protocol error); gevent-websocket has
                # already sent its close frame where it could.
                break
            try:
                self.ws.send(message, binary=not isinstance(message, str))
            except WebSocketError:
                break


def not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer plain (non-WebSocket) HTTP requests with a short 426 response."""
    body = b"This is a WebSocket echo server.\n"
    start_response(
        "426 Upgrade Required",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
            ("Upgrade", "websocket"),
        ],
    )
    return [body]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line: a port and an optional bind address."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the echo application until SIGTERM or SIGINT."""
    args = parse_args(argv)
    resource = Resource([("^/.*", EchoApplication), ("^/.*", not_found)])
    server = WebSocketServer((args.host, args.port), resource, log=None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, server.stop, 1)
    print(f"gevent-websocket echo server listening on ws://{args.host}:{args.port}/", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
