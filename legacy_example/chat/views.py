"""A chat written the django-websocket 0.3 way: function views and ``request.websocket``.

Messages from the page are text; what the server sends is JSON::

    {"type": "join" | "leave", "user": "ann", "count": 2}
    {"type": "message", "user": "ann", "text": "hello"}

A room is a group of ``django_websocket.groups`` (see docs/groups.md): the
view adds its socket, and everything it says goes to the group.  The page
shows how many are in the room (``groups.count``, across every server
process), staff members can close a room (``groups.close``: everyone in it
is disconnected with :data:`ROOM_CLOSED_CODE`), and logging out closes that
session's sockets (4401, done by django-websocket itself).
"""

import json
import logging
import time

from django import forms
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from django_websocket import accept_websocket, groups, require_websocket

from . import rooms

logger = logging.getLogger(__name__)

MAX_TEXT = 2000

#: Close code and reason of the sockets of a room a staff member closed.
ROOM_CLOSED_CODE = 4000
ROOM_CLOSED_REASON = "room closed by a moderator"


class NameForm(forms.Form):
    name = forms.RegexField(
        regex=r"^[\w.@+-]+$",
        max_length=30,
        error_messages={"invalid": "Letters, digits and . @ + - _ only."},
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        user = User.objects.filter(username=name).first()
        if user is not None and user.has_usable_password():
            # Someone with a real password: not a name to take over here.
            raise forms.ValidationError("That name belongs to a registered account.")
        return name


def choose_name(request):
    """Pick a display name: log in as a password-less user of that name (created if new)."""
    next_url = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    if request.method == "POST":
        form = NameForm(request.POST)
        if form.is_valid():
            user, created = User.objects.get_or_create(username=form.cleaned_data["name"])
            if created:
                user.set_unusable_password()
                user.save()
            login(request, user)
            return redirect(next_url)
    else:
        initial = {"name": request.user.username} if request.user.is_authenticated else {}
        form = NameForm(initial=initial)
    return render(request, "chat/name.html", {"form": form, "next": next_url})


def _count(group):
    """How many are in the room, in every server process."""
    try:
        return groups.count(group)
    except groups.BackendUnavailable:
        return len(groups.local_members(group))  # Redis is down: this process's, at least


def _announce(group, kind, name):
    event = {"type": kind, "user": name, "count": _count(group)}
    groups.send(group, json.dumps(event))


@login_required
@accept_websocket
def room(request, room="lobby"):
    """The chat page on a plain GET; the room's socket on a WebSocket upgrade."""
    if not request.is_websocket():
        context = {"room": room, "online": _count(rooms.group_name(room))}
        return render(request, "chat/room.html", context)

    name = request.user.username
    websocket = request.websocket
    group = rooms.group_name(room)
    groups.add(group, websocket)  # left by itself when the session ends, however it ends
    _announce(group, "join", name)
    for message in websocket:  # ends when the client goes away
        if not isinstance(message, str):
            continue  # the page only sends text
        text = message.strip()[:MAX_TEXT]
        if text:
            groups.send(group, json.dumps({"type": "message", "user": name, "text": text}))
    groups.discard(group, websocket)  # now, so that our own "leave" is not sent to us
    _announce(group, "leave", name)


@require_POST
@login_required
def close_room(request, room):
    """Staff only: disconnect everyone in ``room``, in every server process."""
    if not request.user.is_staff:
        return HttpResponseForbidden("Only staff members can close a room.")
    groups.close(rooms.group_name(room), ROOM_CLOSED_CODE, ROOM_CLOSED_REASON)
    logger.info("room %r closed by %s", room, request.user.username)
    return redirect("lobby")


@require_POST
def log_out(request):
    """Log out; django-websocket closes this session's sockets (4401) in every process."""
    logout(request)
    return redirect("choose_name")


@require_websocket
def echo(request):
    """Send every message back unchanged: text as text, binary as binary."""
    for message in request.websocket:
        request.websocket.send(message)


@require_websocket
def tour(request):
    """The rest of the 0.3 API, as one fixed conversation (the tests follow it step by step)."""
    websocket = request.websocket
    websocket.send(request.is_websocket())  # not a str: sent as str(value), "True"
    websocket.send(42)  # "42"
    first = websocket.wait()  # blocks for the client's first message
    websocket.send(f"wait:{first}")

    # The client now sends three messages.  Poll without blocking, as 0.3 code did.
    deadline = time.time() + 5
    while websocket.count_messages() < 3 and time.time() < deadline:
        time.sleep(0.01)
    websocket.send(f"has:{websocket.has_messages()} count:{websocket.count_messages()}")
    websocket.send("read:" + ",".join(websocket.read() for _ in range(3)))
    websocket.send(f"read:{websocket.read('nothing')}")  # nothing left: the fallback
    websocket.send(f"closed:{websocket.closed}")
    websocket.close()
    logger.info("tour: closed=%s after close()", websocket.closed)


def shout(request):
    """Accepted the other 0.3 way: an ``accept_websocket`` attribute the middleware reads."""
    if request.is_websocket():
        for message in request.websocket:
            request.websocket.send(message.upper())
        return None
    return HttpResponse("shout: plain request", content_type="text/plain")


shout.accept_websocket = True


def health(request):
    """An ordinary view: the middleware answers a WebSocket upgrade to it with 400."""
    return HttpResponse(f"ok is_websocket={request.is_websocket()}", content_type="text/plain")
