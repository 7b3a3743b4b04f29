"""Chat rooms on django-websocket's groups: a room is the group ``room.<name>``.

This module used to be the example's own in-process registry of sockets.
Rooms are now ``django_websocket.groups``: delivery never waits for a slow
client, a socket leaves its rooms by itself when its session ends, and with
``WEBSOCKET_GROUPS = {"BACKEND": "redis", ...}`` a room spans server
processes and hosts.  ``chat/views.py`` calls the groups API directly;
``dwchat`` (dwebsocket-style sockets, which groups accept too) still uses
the helpers below, kept with their old names.
"""

import contextlib
import hashlib

from django_websocket import groups


def group_name(room):
    """The group of ``room``: ``room.<name>``, or a hash of names groups do not allow."""
    name = f"room.{room}"
    try:
        return groups.validate_name(name)
    except ValueError:  # too long, or characters outside ASCII letters, digits and -_.
        return "room.sha1." + hashlib.sha1(room.encode("utf-8")).hexdigest()


def join(room, websocket):
    """Add ``websocket`` to ``room``."""
    groups.add(group_name(room), websocket)


def leave(room, websocket):
    """Remove ``websocket`` from ``room`` (no error if it is not there)."""
    groups.discard(group_name(room), websocket)


@contextlib.contextmanager
def joined(room, websocket):
    """Be a member of ``room`` for the duration of a ``with`` block (the view's lifetime)."""
    join(room, websocket)
    try:
        yield
    finally:
        leave(room, websocket)


def members(room):
    """A snapshot of the room's websockets in this server process."""
    return groups.local_members(group_name(room))


def broadcast(room, message):
    """Send ``message`` to everyone in ``room``, in every process; returns at once."""
    groups.send(group_name(room), message)
