"""The handler's header parsing gives exactly what gevent's (the email parser) gives.

``WebSocketHandler.MessageClass`` parses plain ``name: value`` blocks itself
and hands anything else to gevent's parser; whichever path a block takes, the
message (fields, status, payload, defects), any exception and what is left
unread in the stream must be the same as gevent's own, for every block within
the server's limits.  Blocks over the limits raise ``RequestHeadTooLarge``
(answered with 431) before gevent's parser would fail on them.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from gevent.pywsgi import WSGIHandler
from hypothesis import given, settings
from hypothesis import strategies as st

from django_websocket.server.handler import RequestHeadTooLarge, WebSocketHandler


def _outcome(handler_class: type[WSGIHandler], block: bytes) -> tuple[Any, ...]:
    handler = handler_class.__new__(handler_class)
    stream = io.BytesIO(block + b"GET /next HTTP/1.1\r\n")
    try:
        message = handler.MessageClass(stream, 0)
    except Exception as exc:  # the same exception is what matters
        return ("raised", type(exc), str(exc), stream.read())
    return (
        type(message),
        list(message._headers),
        message.status,
        message.get_payload(),
        [type(defect) for defect in message.defects],
        stream.read(),
        message.get("upgrade"),
        list(message.headers),
    )


def _same(block: bytes) -> None:
    assert _outcome(WebSocketHandler, block) == _outcome(WSGIHandler, block)


@pytest.mark.parametrize(
    "block",
    [
        b"\r\n",
        b"\n",
        b"",
        b"Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"Host:a\nX:  \t spaced \t\n\n",  # bare LF endings, no space after the colon
        b"Host: a\r\nX-Empty:\r\n\r\n",
        b"Host: a\r\n folded\r\n\r\n",  # obs-fold continuation
        b" leading: continuation\r\nHost: a\r\n\r\n",
        b"Host: a\rb\r\nUpgrade: websocket\r\n\r\n",  # a bare CR splits the line
        b"Bad Name: x\r\nUpgrade: websocket\r\n\r\n",  # ends the headers early
        b"From someone\r\nHost: a\r\n\r\n",
        b": no name\r\nHost: a\r\n\r\n",
        b"NoColon\r\nHost: a\r\n\r\n",
        b"Host: caf\xe9\r\n\r\n",  # Latin-1
        b"Host: a\r\nHost: b\r\n\r\n",  # repeated fields stay repeated
        b"Host: a\r\nUnterminated: at EOF",
        b"X: " + b"a" * 8180 + b"\r\n\r\n",  # the longest line allowed by default
        b"".join(b"X-%d: v\r\n" % i for i in range(99)) + b"\r\n",  # the most allowed
        b"".join(b"X-%d: v\r\n" % i for i in range(98)) + b" folded\r\n\r\n",
    ],
)
def test_same_message_as_gevent(block: bytes) -> None:
    _same(block)


@pytest.mark.parametrize(
    "block",
    [
        b"X: " + b"a" * 8188 + b"\r\n\r\n",  # 8193 bytes with the CRLF
        b"X: " + b"a" * 70000 + b"\r\n\r\n",  # longer than http.client allows too
        b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n",  # one too many
        b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n",
        b"".join(b"X-%d: v\r\n" % i for i in range(99)) + b" folded\r\n\r\n",
    ],
)
def test_over_the_limits_is_refused_before_gevent_parses(block: bytes) -> None:
    """gevent's parser would raise (a traceback) or report "Line too long" (an ERROR line)."""
    handler = WebSocketHandler.__new__(WebSocketHandler)
    with pytest.raises(RequestHeadTooLarge):
        handler.MessageClass(io.BytesIO(block + b"GET /next HTTP/1.1\r\n"), 0)


_LINE = st.lists(
    st.sampled_from([*"Hhost:- \t\r\nF\xe9\x0bX_", "From ", ": ", "\r\n", "Upgrade"]),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINE, max_size=6), st.sampled_from(["\r\n", "\n", ""]))
def test_same_message_as_gevent_for_any_block(lines: list[str], end: str) -> None:
    _same(("".join(line + "\r\n" for line in lines) + end).encode("latin-1"))
