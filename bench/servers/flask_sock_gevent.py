"""flask-sock (simple-websocket, wsproto) on gevent's ``WSGIServer``."""

from __future__ import annotations

import os
import sys

from gevent import monkey

monkey.patch_all()

from flask import Flask  # noqa: E402
from flask_sock import Sock  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from servers.common import HOST, port_arg, raise_nofile  # noqa: E402

app = Flask(__name__)
# simple-websocket only compresses when the client offers permessage-deflate,
# which the benchmark client never does.
app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": None, "max_message_size": None}
sock = Sock(app)


@sock.route("/echo")
def echo(ws):
    while True:
        ws.send(ws.receive())


if __name__ == "__main__":
    raise_nofile()
    WSGIServer((HOST, port_arg()), app, log=None, backlog=2048).serve_forever()
