"""The same kind of views, written for dwebsocket 0.5.

Only the import changed: ``dwebsocket`` became
``django_websocket.compat.dwebsocket``.  As in dwebsocket, messages are
``bytes``, iterating yields a final ``None``, ``wait()`` takes a timeout and
``send()`` always sends text.
"""

import logging
import time

from chat import rooms
from django.http import HttpResponse
from django.shortcuts import render

from django_websocket.compat.dwebsocket import accept_websocket, require_websocket

logger = logging.getLogger(__name__)

ROOM = "dwchat"


@accept_websocket
def chat(request):
    """A one-room chat in plain text lines, like dwebsocket's own example."""
    if request.is_websocket:  # dwebsocket's examples tested it without calling it
        name = request.user.username if request.user.is_authenticated else "anonymous"
        websocket = request.websocket
        with rooms.joined(ROOM, websocket):
            rooms.broadcast(ROOM, f"* {name} joined")
            for message in websocket:
                if message is None:  # the connection closed
                    break
                rooms.broadcast(ROOM, f"{name}: {message.decode('utf-8', 'replace')}")
        rooms.broadcast(ROOM, f"* {name} left")
        return None
    return render(request, "dwchat/index.html")


@require_websocket
def echo(request):
    """Echo each message; binary comes back as text, since dwebsocket only sent text."""
    websocket = request.websocket
    for message in websocket:
        if message is None:
            logger.info("dw echo: iteration ended with None, is_closed()=%s", websocket.is_closed())
            break
        websocket.send(message)


@require_websocket
def tour(request):
    """The rest of dwebsocket's API, as one fixed conversation (the tests follow it)."""
    websocket = request.websocket
    websocket.send(b"bytes go out as text")
    websocket.send(7)
    websocket.send(f"timeout:{websocket.wait(timeout=0.2)!r}")  # the client sends nothing yet
    websocket.send(f"wait:{websocket.wait()!r}")

    # The client now sends two messages; poll for them without blocking.
    deadline = time.time() + 5
    while websocket.count_messages() < 2 and time.time() < deadline:
        time.sleep(0.01)
    websocket.send(f"has:{websocket.has_messages()} count:{websocket.count_messages()}")
    websocket.send(f"read:{websocket.read()!r} {websocket.read()!r} {websocket.read(b'-')!r}")
    websocket.send(f"is_closed:{websocket.is_closed()}")
    websocket.close(4000, b"tour over")
    logger.info("dw tour: is_closed()=%s after close()", websocket.is_closed())
    websocket.send("dropped")  # as in dwebsocket, sending after close() does nothing


def flagged(request):
    """dwebsocket's other way to accept WebSockets: an attribute, read by its middleware.

    Under ``django_websocket.compat.dwebsocket.middleware.WebSocketMiddleware``
    (``LEGACY_EXAMPLE_DWEBSOCKET_MIDDLEWARE=1``) the view gets dwebsocket's
    ``request.websocket``; django-websocket's own middleware also honours the
    attribute, but serves the view with its own API (``str`` messages).
    """
    if request.is_websocket():
        message = request.websocket.wait()
        request.websocket.send(b"flagged got " + message)
        return None
    return HttpResponse("flagged: plain request", content_type="text/plain")


flagged.accept_websocket = True


def flagged_required(request):
    """Like :func:`flagged`, with ``require_websocket`` too: plain requests get 400."""
    request.websocket.send(b"required and flagged")
    request.websocket.wait()


flagged_required.accept_websocket = True
flagged_required.require_websocket = True
