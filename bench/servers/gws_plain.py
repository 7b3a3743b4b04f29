"""gevent-websocket 0.10.1: a plain WSGI echo app under its ``WebSocketServer``."""

from __future__ import annotations

import os
import sys

from gevent import monkey

monkey.patch_all()

from geventwebsocket import WebSocketServer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from servers.common import HOST, port_arg, raise_nofile  # noqa: E402


def app(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"WebSocket only\n"]
    while True:
        message = ws.receive()
        if message is None:
            break
        ws.send(message)
    return []


if __name__ == "__main__":
    raise_nofile()
    # log=None: no access log line per connection (the same for every server).
    WebSocketServer((HOST, port_arg()), app, log=None, backlog=2048).serve_forever()
