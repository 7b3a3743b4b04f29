"""A tiny in-process room registry: which WebSockets are in which room.

Good for one server process only (every connection of a room must be served
by the same process).  It is the example's own stop-gap, kept in this one
module on purpose: replace it with a real groups/pub-sub layer when there is
one.  Both apps use it: ``chat`` with django-websocket's objects, ``dwchat``
with dwebsocket-style ones; anything with a ``send(str)`` method will do.
"""

import contextlib
import logging
import threading  # under gevent's monkey-patching this is a greenlet-aware lock

from django_websocket import ConnectionClosed

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_rooms = {}  # room name -> set of websockets


def join(room, websocket):
    """Add ``websocket`` to ``room``."""
    with _lock:
        _rooms.setdefault(room, set()).add(websocket)


def leave(room, websocket):
    """Remove ``websocket`` from ``room`` (no error if it is not there)."""
    with _lock:
        members = _rooms.get(room)
        if members is not None:
            members.discard(websocket)
            if not members:
                del _rooms[room]


@contextlib.contextmanager
def joined(room, websocket):
    """Be a member of ``room`` for the duration of a ``with`` block (the view's lifetime)."""
    join(room, websocket)
    try:
        yield
    finally:
        leave(room, websocket)


def members(room):
    """A snapshot of the room's websockets."""
    with _lock:
        return list(_rooms.get(room, ()))


def broadcast(room, message):
    """Send ``message`` to everyone in ``room``; return how many it reached.

    Sending happens outside the lock, so one slow client cannot hold up
    joins and leaves.  A socket that closed in the meantime is dropped.
    """
    reached = 0
    for websocket in members(room):
        try:
            websocket.send(message)
        except ConnectionClosed:
            logger.debug("dropping a closed websocket from room %s", room)
            leave(room, websocket)
        else:
            reached += 1
    return reached
