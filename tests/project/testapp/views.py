"""Views the end-to-end tests talk to."""

import json
import time

from django.contrib.auth.decorators import login_required
from django.core.signals import request_finished
from django.db import connection, transaction
from django.http import HttpResponse

from django_websocket import accept_websocket, require_websocket

EVENTS = []


def _on_finished(sender, **kwargs):
    # Django's own close_old_connections receiver ran first.
    EVENTS.append(["request_finished", connection.connection is None])


request_finished.connect(_on_finished)


@require_websocket
def echo(request):
    for message in request.websocket:
        request.websocket.send(message)


@require_websocket(subprotocols=["chat.v2", "chat.v1"], compression=False)
def subprotocol(request):
    request.websocket.send(request.websocket.subprotocol or "none")
    request.websocket.receive()


@accept_websocket
def both(request):
    if request.is_websocket():
        request.websocket.send("websocket")
        return None
    return HttpResponse("plain http" if not request.is_websocket else "??")


@login_required
@require_websocket
def whoami(request):
    request.websocket.send(request.user.get_username())
    request.websocket.receive()


@require_websocket
def server_close(request):
    request.websocket.send("bye")
    request.websocket.close(4001, "done here")


@require_websocket
def returns_at_once(request):
    request.websocket.send("hello")


@require_websocket
def boom(request):
    request.websocket.send("about to fail")
    raise RuntimeError("view failure after the upgrade")


@require_websocket
def uses_orm(request):
    from django.contrib.auth.models import User

    in_atomic = connection.in_atomic_block
    count = User.objects.count()
    request.websocket.send(json.dumps({"in_atomic": in_atomic, "users": count}))
    request.websocket.receive()


@require_websocket(ping_interval=0.3, ping_timeout=0.3)
def keepalive(request):
    message = request.websocket.receive()
    request.websocket.send(f"{message}:{request.websocket.close_code}")


@require_websocket
def legacy(request):
    ws = request.websocket
    ws.send(42)
    message = ws.wait()
    ws.send(f"wait:{message}")
    time.sleep(0.3)
    ws.send(f"has:{ws.has_messages()} count:{ws.count_messages()}")
    ws.send(f"read:{ws.read()}")
    ws.send(f"read:{ws.read('fallback')}")
    ws.close()


def undecorated(request):
    if request.is_websocket():
        request.websocket.send("undecorated")
        return None
    return HttpResponse("plain undecorated")


def events(request):
    return HttpResponse(json.dumps(EVENTS))


def reset(request):
    EVENTS.clear()
    return HttpResponse("ok")


def plain(request):
    return HttpResponse("plain ok")


def login(request):
    from django.contrib.auth import login as auth_login
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(username=request.GET.get("user", "alice"))
    auth_login(request, user)
    return HttpResponse("logged in")


assert transaction  # imported for the atomic-requests test


def debug_state(request):
    import gc
    import os

    from greenlet import greenlet

    gc.collect()
    alive = [g for g in gc.get_objects() if isinstance(g, greenlet) and not g.dead]
    fds = len(os.listdir("/proc/self/fd"))
    return HttpResponse(json.dumps({"greenlets": len(alive), "fds": fds}))


# ----------------------------------------------------------------------
# Views for the server matrix and shutdown tests (tests/test_servers*.py)

STREAM_BURSTS = [0]


@require_websocket
def stream(request):
    """Send ``?n=`` numbered messages at once, then echo until closed, and log the end."""
    import logging

    ws = request.websocket
    for i in range(int(request.GET.get("n", "10"))):
        ws.send(f"message {i}")
    STREAM_BURSTS[0] += 1
    for message in ws:
        ws.send(message)
    logging.getLogger("testapp").info("stream view saw the close: code %s", ws.close_code)


@require_websocket
def linger(request):
    """Echo until closed, then keep running: a view that ignores a shutdown."""
    for message in request.websocket:
        request.websocket.send(message)
    time.sleep(60)


def websocket_state(request):
    """How many WebSocket views run in this process, and how many stream bursts were sent."""
    from django_websocket.server.websocket import open_websockets

    return HttpResponse(json.dumps({"open": len(open_websockets()), "bursts": STREAM_BURSTS[0]}))


def slow(request):
    """A plain HTTP response that takes ``?s=`` seconds (a request in flight at shutdown)."""
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse("slow done")


@require_websocket
def close_callback(request):
    def record(websocket):
        EVENTS.append(["closed", websocket.close_code])

    request.websocket.add_close_callback(record)
    request.websocket.receive()
