"""gevent-websocket 0.10.1's handler serving the bench Django project.

gevent-websocket hand-shakes in its WSGI handler, then calls Django's WSGI
application; the view (``benchproject.views.gws_echo``) reads
``request.environ["wsgi.websocket"]`` after Django's middleware ran.
"""

from __future__ import annotations

import os
import sys

from gevent import monkey

monkey.patch_all()

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from geventwebsocket import WebSocketServer  # noqa: E402

from servers.common import HOST, port_arg, raise_nofile  # noqa: E402

if __name__ == "__main__":
    raise_nofile()
    application = get_wsgi_application()
    WebSocketServer((HOST, port_arg()), application, log=None, backlog=2048).serve_forever()
