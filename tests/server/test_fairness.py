"""Under gevent, a flooding peer delays the rest of the hub by milliseconds (defect 5).

gevent's socket calls return without switching while the socket is ready, so
a view echoing a client that never pauses would hold the hub; the WebSocket
yields every so many operations.  The peer here is a pair of real OS threads
on plain sockets, as fast as a client in another process.
"""

from __future__ import annotations

import socket
import threading
import time

import gevent
import gevent.socket
import pytest
from protocol.client_frames import text

from django_websocket.protocol import ServerConnection
from django_websocket.server.transport import Transport
from django_websocket.server.websocket import WebSocket


@pytest.mark.parametrize("receiving", ["echo", "read_only"])
def test_a_flooding_peer_does_not_stall_the_hub(receiving: str) -> None:
    plain_server, client = socket.socketpair()
    server_end = gevent.socket.socket(fileno=plain_server.detach())
    ws = WebSocket(
        Transport(server_end, "test", threaded=False),
        ServerConnection(control_events=False),
    )
    stop = threading.Event()
    burst = text("x" * 20) * 2000

    def flood() -> None:
        try:
            while not stop.is_set():
                client.sendall(burst)
        except OSError:
            pass

    def drain() -> None:
        try:
            while client.recv(1 << 16):
                pass
        except OSError:
            pass

    threads = [threading.Thread(target=flood), threading.Thread(target=drain)]
    for thread in threads:
        thread.start()

    handled = [0]

    def view() -> None:
        for message in ws:
            handled[0] += 1
            if receiving == "echo":
                ws.send(message)

    view_task = gevent.spawn(view)
    gaps: list[float] = []
    last = time.monotonic()
    end = last + 1.5
    while time.monotonic() < end:
        gevent.sleep(0.001)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
    stop.set()
    client.shutdown(socket.SHUT_RDWR)
    view_task.join(5)
    ws.finish()
    server_end.close()
    client.close()
    for thread in threads:
        thread.join(5)
    assert handled[0] > 10_000  # it really was flooded
    # Typically 20-60 ms (a 64 KiB read of 20-byte frames is parsed in one go);
    # the bound leaves room for a loaded machine.  Without yields: the whole flood.
    assert max(gaps) < 0.5, f"the hub was held for {max(gaps):.3f} s"
