"""The ceiling for any gevent design: a raw ``StreamServer`` that echoes pre-built frames.

It hand-shakes minimally (finds ``Sec-WebSocket-Key``, answers 101), then
reads frame headers only to know where each frame ends: it never unmasks,
validates or copies a payload.  For each complete data frame it sends the
pre-built unmasked reply for that message (the benchmark's 32-byte text and
1 MiB binary messages are fixed, so the reply is exactly the echo); for a
close frame it sends the close reply and shuts the connection down.  Every
real server does at least this much work per message, so no gevent-based
server can beat it.
"""

from __future__ import annotations

import os
import sys

from gevent import monkey

monkey.patch_all()

import base64  # noqa: E402
import hashlib  # noqa: E402
import socket  # noqa: E402

from gevent.server import StreamServer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from loadgen import make_payload, server_frame  # noqa: E402

from servers.common import HOST, port_arg, raise_nofile  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
REPLIES = {
    (0x1, 32): server_frame(0x1, make_payload(32, True)),
    (0x2, 1 << 20): server_frame(0x2, make_payload(1 << 20, False)),
}
CLOSE_REPLY = b"\x88\x02\x03\xe8"


def handle(sock: socket.socket, _address: object) -> None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(4096)
        if not data:
            return
        buf += data
    head, buf = buf.split(b"\r\n\r\n", 1)
    key = b""
    for line in head.split(b"\r\n"):
        if line[:18].lower() == b"sec-websocket-key:":
            key = line[18:].strip()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    skip = 0  # payload bytes of the current frame still to discard
    reply = b""
    recv = sock.recv
    while True:
        if not buf:
            buf = recv(65536)
            if not buf:
                return
        if skip:
            if len(buf) <= skip:
                skip -= len(buf)
                buf = b""
                if skip == 0:
                    sock.sendall(reply)
                continue
            buf = buf[skip:]
            skip = 0
            sock.sendall(reply)
        if len(buf) < 2:
            buf += recv(65536)
            continue
        opcode = buf[0] & 0x0F
        length = buf[1] & 0x7F
        hl = 6
        if length == 126:
            hl = 8
        elif length == 127:
            hl = 14
        if len(buf) < hl:
            buf += recv(65536)
            continue
        if length == 126:
            length = int.from_bytes(buf[2:4], "big")
        elif length == 127:
            length = int.from_bytes(buf[2:10], "big")
        if opcode == 0x8:
            sock.sendall(CLOSE_REPLY)
            sock.shutdown(socket.SHUT_RDWR)
            return
        reply = REPLIES.get((opcode, length), b"") if opcode < 8 else b""
        buf = buf[hl:]
        skip = length
        if not skip:
            if reply:
                sock.sendall(reply)
        elif len(buf) >= skip:
            buf = buf[skip:]
            skip = 0
            if reply:
                sock.sendall(reply)
        # else: the loop above discards the rest of the payload as it arrives


if __name__ == "__main__":
    raise_nofile()
    StreamServer((HOST, port_arg()), handle, backlog=2048).serve_forever()
