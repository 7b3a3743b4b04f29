"""Views the end-to-end tests talk to."""

import json
import time

from django.contrib.auth.decorators import login_required
from django.core.signals import got_request_exception, request_finished
from django.db import connection, transaction
from django.http import HttpResponse

from django_websocket import accept_websocket, require_websocket
from django_websocket.protocol import DeflateConfig

EVENTS = []


def _on_finished(sender, **kwargs):
    # Django's own close_old_connections receiver ran first.
    EVENTS.append(["request_finished", connection.connection is None])


request_finished.connect(_on_finished)


def _on_exception(sender, **kwargs):
    EVENTS.append(["got_request_exception", kwargs["request"].path])


got_request_exception.connect(_on_exception)


@require_websocket
def echo(request):
    for message in request.websocket:
        request.websocket.send(message)


@require_websocket(compression=DeflateConfig(min_size=4096))
def echo_uncompressed_under_4k(request):
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


@require_websocket
def orm_per_message(request):
    """Answer each message with the number of users, counted anew (one query per message)."""
    from django.contrib.auth.models import User

    for message in request.websocket:
        request.websocket.send(f"{message}:{User.objects.count()}")


def orm_plain(request):
    """A plain view that queries the database."""
    from django.contrib.auth.models import User

    return HttpResponse(f"users:{User.objects.count()}")


@transaction.non_atomic_requests
def database_files(request):
    """How many descriptors of this process are open on the SQLite database file."""
    import os

    from django.conf import settings

    name = os.path.realpath(str(settings.DATABASES["default"]["NAME"]))
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target == name
    return HttpResponse(str(count))


@require_websocket(ping_interval=0.3, ping_timeout=0.3)
def keepalive(request):
    message = request.websocket.receive()
    request.websocket.send(f"{message}:{request.websocket.close_code}")


@require_websocket
def hub(request):
    """Says how the WebSocket is served: by threads, or by this thread's gevent hub."""
    ws = request.websocket
    if ws.hub is None:
        ws.send("threads")
    else:
        import gevent

        ws.send(f"hub, this thread's: {ws.hub is gevent.get_hub()}")


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
def firehose(request):
    """Send 64 KiB messages until the connection ends: a client that does not read blocks it."""
    import logging

    from django_websocket import ConnectionClosed

    chunk = "x" * 65536
    try:
        while True:
            request.websocket.send(chunk)
    except ConnectionClosed:
        pass
    logging.getLogger("testapp").info("firehose view ended")


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


# ----------------------------------------------------------------------
# Groups (tests/test_groups*.py)


@require_websocket
def groups_member(request):
    """Join the ``?g=`` groups, say so with this process's id, then follow the client's commands.

    Commands (text): ``join NAME``, ``leave NAME`` (answered ``joined NAME`` /
    ``left NAME``), ``send NAME TEXT`` (to the group), ``bad-name`` (answered
    with the error ``groups.add`` raises for an invalid name).
    """
    import logging
    import os

    from django_websocket import groups

    ws = request.websocket
    names = request.GET.getlist("g")
    for name in names:
        groups.add(name, ws)
    ws.send(json.dumps({"pid": os.getpid(), "joined": names, "user": request.user.username}))
    try:
        _follow_member_commands(ws)
    finally:
        # What the view saw: the loop ended (receive() returned None) with this code.
        logging.getLogger("testapp").info(
            "groups member view ended: pid=%s close_code=%s reason=%r",
            os.getpid(),
            ws.close_code,
            ws.close_reason,
        )


def _follow_member_commands(ws):
    from django_websocket import groups

    for message in ws:
        if not isinstance(message, str):
            continue
        command, _, rest = message.partition(" ")
        if command == "join":
            groups.add(rest, ws)
            ws.send(f"joined {rest}")
        elif command == "leave":
            groups.discard(rest, ws)
            ws.send(f"left {rest}")
        elif command == "send":
            name, _, text = rest.partition(" ")
            groups.send(name, text)
        elif command == "spam":  # the view sends on its own socket, as fast as it can
            from django_websocket import ConnectionClosed

            try:
                for i in range(int(rest)):
                    ws.send(f"spam {i} " + "x" * 1000)
            except ConnectionClosed:
                pass  # closed under us (groups.close): the loop's receive() says so
        elif command == "bad-name":
            try:
                groups.add("no spaces allowed", ws)
            except ValueError as exc:
                ws.send(f"ValueError: {exc}")


def _groups_send_numbered(name, n, tag, binary, pad):
    from django_websocket import groups

    for i in range(n):
        text = f"{tag} {i}" + (" " + "x" * pad if pad else "")
        groups.send(name, text.encode() if binary else text)
    groups.send(name, f"{tag} end")


def groups_send(request):
    """Send ``?n=`` messages ``"TAG i"`` then ``"TAG end"`` to group ``?g=`` from a plain view.

    ``?binary=1`` sends the numbered ones as bytes, ``?pad=N`` appends N
    characters to each, ``?background=1`` sends from a new greenlet/thread
    after the response.  Answers 503 when the backend is unreachable.
    """
    import os
    import threading

    from django_websocket import groups

    args = (
        request.GET["g"],
        int(request.GET.get("n", "1")),
        request.GET.get("tag", "m"),
        request.GET.get("binary") == "1",
        int(request.GET.get("pad", "0")),
    )
    started = time.monotonic()
    if request.GET.get("background") == "1":
        threading.Thread(target=_groups_send_numbered, args=args, daemon=True).start()
    else:
        try:
            _groups_send_numbered(*args)
        except groups.BackendUnavailable as exc:
            return HttpResponse(json.dumps({"error": str(exc)}), status=503)
    return HttpResponse(json.dumps({"pid": os.getpid(), "seconds": time.monotonic() - started}))


def groups_state(request):
    """This process's id and its number of local members of group ``?g=``."""
    import os

    from django_websocket import groups

    members = groups.local_members(request.GET["g"])
    return HttpResponse(json.dumps({"pid": os.getpid(), "local": len(members)}))


def groups_count(request):
    """``groups.count()`` of group ``?g=``, asked from this process."""
    import os

    from django_websocket import groups

    return HttpResponse(json.dumps({"pid": os.getpid(), "count": groups.count(request.GET["g"])}))


def groups_close(request):
    """``groups.close(?g=, ?code=, ?reason=)`` from a plain view; 400 with the ValueError."""
    from django_websocket import groups

    try:
        groups.close(
            request.GET["g"], int(request.GET.get("code", "1000")), request.GET.get("reason", "")
        )
    except ValueError as exc:
        return HttpResponse(str(exc), status=400)
    return HttpResponse("closed")


def close_user(request):
    """``groups.close_user(?user=)`` (a username) with 4403 "banned"."""
    from django.contrib.auth.models import User

    from django_websocket import groups

    groups.close_user(User.objects.get(username=request.GET["user"]), 4403, "banned")
    return HttpResponse("closed")


def logout(request):
    """Django's logout: ``user_logged_out`` fires for this request's session."""
    from django.contrib.auth import logout as auth_logout

    auth_logout(request)
    return HttpResponse("logged out")


# ----------------------------------------------------------------------
# Session signals and stats (tests/test_signals.py): every session logs its signals.

_SESSIONS = [0]


def _on_connected(sender, request, websocket, **kwargs):
    import logging

    _SESSIONS[0] += 1
    request.test_session = _SESSIONS[0]
    logging.getLogger("testapp").info(
        "signal connected session=%d view=%s", request.test_session, sender.__name__
    )


def _on_disconnected(sender, request, websocket, close_code, duration, **kwargs):
    import logging

    logging.getLogger("testapp").info(
        "signal disconnected session=%d view=%s code=%s duration=%.3f",
        request.test_session,
        sender.__name__,
        close_code,
        duration,
    )


def _connect_session_signals():
    from django_websocket.signals import websocket_connected, websocket_disconnected

    websocket_connected.connect(_on_connected, dispatch_uid="testapp.connected")
    websocket_disconnected.connect(_on_disconnected, dispatch_uid="testapp.disconnected")


_connect_session_signals()


def stats(request):
    """``django_websocket.stats()`` of this process."""
    import django_websocket

    return HttpResponse(json.dumps(django_websocket.stats()))


try:  # the Prometheus recipe of docs/groups.md, when prometheus_client is installed
    from . import metrics as _metrics
except ImportError:
    _metrics = None


def prometheus(request):
    """The Prometheus exposition of this process (404 without prometheus_client)."""
    if _metrics is None:
        return HttpResponse("prometheus_client is not installed", status=404)
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


# ----------------------------------------------------------------------
# View shapes for the I/O matrix (tests/test_io_matrix.py)


@require_websocket
def io_push(request):
    """A log tailer: pushes a line every 50 ms, never reads; a closed peer ends it by raising."""
    n = 0
    while True:
        request.websocket.send(f"line {n}")
        n += 1
        time.sleep(0.05)


@require_websocket
def io_idle_push(request):
    """Pushes once, then waits on something else for a long time without reading."""
    request.websocket.send("ready")
    for _ in range(600):
        if request.websocket.closed:
            return
        time.sleep(0.1)


@require_websocket
def io_poll(request):
    """django-websocket 0.3 polling: has_messages()/read() between other work."""
    ws = request.websocket
    while True:
        if ws.has_messages():
            message = ws.read()
            if message is None:
                return
            ws.send(message)
        elif ws.closed:
            return
        else:
            time.sleep(0.02)


@require_websocket
def io_timeout(request):
    """A receive(timeout) loop that does other work on every timeout."""
    ws = request.websocket
    while True:
        try:
            message = ws.receive(timeout=0.1)
        except TimeoutError:
            continue
        if message is None:
            return
        ws.send(message)


@require_websocket
def io_second_sender(request):
    """A second greenlet sends while the view blocks in receive()."""
    import threading

    ws = request.websocket
    stop = threading.Event()

    def ticker():
        n = 0
        while not stop.is_set():
            try:
                ws.send(f"tick {n}")
            except Exception:
                return
            n += 1
            time.sleep(0.1)

    thread = threading.Thread(target=ticker)  # a greenlet: the server is monkey-patched
    thread.start()
    try:
        for message in ws:
            ws.send(message)
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------
# Database connections while a view waits (tests/test_database_connections.py)


def _backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@require_websocket
def orm_atomic_wait(request):
    """Writes in a transaction, waits in receive() inside it, then reads its own write back.

    Sends ``waiting <pid>`` before the wait and ``after <pid> <in_atomic> <seen>`` after it:
    the same server process (pid) and the uncommitted row still visible mean the
    transaction survived the wait.  Rolled back at the end, so nothing is left behind.
    """
    from django.contrib.auth.models import User

    ws = request.websocket
    with transaction.atomic():
        name = f"atomic-{id(ws)}"
        User.objects.create(username=name)
        ws.send(f"waiting {_backend_pid()}")
        ws.receive()
        seen = User.objects.filter(username=name).exists()
        ws.send(f"after {_backend_pid()} {connection.in_atomic_block} {seen}")
        transaction.set_rollback(True)
    ws.receive()


@require_websocket(close_db_connections=False)
def orm_keeps_connection(request):
    """Like ``uses_orm``, with the decorator option that keeps the connection while waiting."""
    from django.contrib.auth.models import User

    request.websocket.send(str(User.objects.count()))
    request.websocket.receive()
