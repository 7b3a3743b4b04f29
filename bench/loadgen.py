#!/usr/bin/env python
"""The benchmark's WebSocket load generator: raw sockets, epoll, pre-built masked frames.

It is a separate process from the servers and from ``bench/run.py``, which
starts one per measurement (pinned to its own core) with a JSON job as its
only argument, and reads one JSON result line from its standard output (the
``idle`` job talks over stdin/stdout in several steps).  It imports nothing
beyond the standard library so that it stays cheap and its own CPU time is
easy to account for: every result reports the client's CPU seconds over the
measured window next to the server's, read from ``/proc/PID/stat``.

Every frame the client sends is built and masked once, before the clock
starts; replies are compared byte for byte with the expected unmasked server
frame, so a server that echoes the wrong thing fails the run.  The client
never offers ``permessage-deflate`` (no ``Sec-WebSocket-Extensions`` header),
so no server can compress.

Jobs (``"kind"``):

``check``      handshake, echo 32 B text, echo 1 MiB binary, close handshake.
``echo``       ``conns`` connections, each echoing ``size``-byte messages
               ping-pong (one outstanding per connection) for ``duration`` s
               after ``warmup`` s: messages/s, latency percentiles, CPU.
``large``      one connection echoing ``size``-byte binary messages: MiB/s.
``connrate``   ``concurrency`` slots, each looping handshake, one 32 B echo,
               close handshake, wait for the server's FIN: connections/s.
``idle``       open connections and hold them (answering pings) until told;
               steps on stdin: ``open N``, ``verify``, ``quit``.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import select
import socket
import struct
import sys
import time
import zlib

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's example key
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # and its Sec-WebSocket-Accept
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
# Client source addresses (all on loopback, inside 127.0.0.0/8): each has its
# own ephemeral port range, so 10,000+ connections and TIME_WAIT leftovers of
# earlier runs never exhaust one address's ports.
SOURCES = [f"127.0.0.{i}" for i in range(2, 18)]
CLOSE_1000 = b"\x03\xe8"
NVARIANTS = 16  # pre-built frames per message, each with its own masking key
_perf = time.perf_counter
_perf_ns = time.perf_counter_ns


class BenchError(Exception):
    """A server misbehaved: wrong handshake, wrong echo, early close."""


# ----------------------------------------------------------------------
# Frames


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` (done once per pre-built frame)."""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def header(first: int, length: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if length < 126:
        return bytes((first, bit | length))
    if length < 65536:
        return struct.pack("!BBH", first, bit | 126, length)
    return struct.pack("!BBQ", first, bit | 127, length)


def client_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """A masked client frame (RFC 6455 section 5.3)."""
    return header(0x80 | opcode, len(payload), True) + key + mask_bytes(payload, key)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """The unmasked frame a server sends for ``payload``: what an echo must return."""
    return header(0x80 | opcode, len(payload), False) + payload


def make_payload(size: int, text: bool) -> bytes:
    base = b"abcdefghijklmnopqrstuvwxyz012345" if text else bytes(range(256))
    return (base * (size // len(base) + 1))[:size]


def frame_variants(opcode: int, payload: bytes) -> list[bytes]:
    return [client_frame(opcode, payload, os.urandom(4)) for _ in range(NVARIANTS)]


def parse_server_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split ``buf`` into complete unmasked server frames; return them and the rest."""
    frames = []
    pos = 0
    n = len(buf)
    while n - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        if b1 & 0x80:
            raise BenchError("server sent a masked frame")
        length = b1 & 0x7F
        hl = 2
        if length == 126:
            if n - pos < 4:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            hl = 4
        elif length == 127:
            if n - pos < 10:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            hl = 10
        if n - pos < hl + length:
            break
        if not b0 & 0x80:
            raise BenchError("server fragmented a message (not expected for these sizes)")
        # The opcode, with RSV1 (0x40: a permessage-deflate message) kept.
        frames.append((b0 & 0x4F, buf[pos + hl : pos + hl + length]))
        pos += hl + length
    return frames, buf[pos:]


# ----------------------------------------------------------------------
# CPU accounting


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pids: list[int]) -> float:
    """User + system CPU seconds of processes (all their threads), from /proc."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICK


# ----------------------------------------------------------------------
# Connections


#: What Chrome and Firefox offer (``client_max_window_bits``: the client can
#: take a smaller window than 15 for what it compresses).
BROWSER_DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"


def request_bytes(host: str, port: int, path: str, extensions: str = "") -> bytes:
    offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "User-Agent: django-websocket-bench\r\n"
        f"{offer}"
        "\r\n"
    ).encode("ascii")


def check_101(head: bytes, deflate: bool = False) -> None:
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 101"):
        raise BenchError(f"handshake refused: {head[:300]!r}")
    if ACCEPT not in head:
        raise BenchError(f"wrong Sec-WebSocket-Accept: {head[:300]!r}")
    agreed = b"permessage-deflate" in head.lower()
    if agreed != deflate:
        raise BenchError(
            "server declined permessage-deflate"
            if deflate
            else "server negotiated an extension nobody offered"
        )


#: A typical JSON event (~330 bytes: above every server's minimum size for
#: compressing), sent compressed each way by the ``idle`` job's deflate mode.
JSON_EVENT = json.dumps(
    {
        "type": "chat.message",
        "room": "general",
        "id": 104729,
        "user": {"id": 42, "name": "user42", "avatar": "/media/avatars/42.png"},
        "text": "the deploy is done and the review is merged, coffee at the usual place?",
        "ts": "2026-12-03T21:14:07.118044Z",
        "mentions": ["user7", "user13"],
        "reactions": {"+1": 3, "coffee": 2},
    }
).encode()


def deflate_frame(payload: bytes) -> bytes:
    """A masked, compressed text frame (RFC 7692): a one-shot compressor each
    time, which any receiver's context accepts, so the client keeps no window."""
    c = zlib.compressobj(6, zlib.DEFLATED, -9, 1)
    body = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    return client_frame(0x41, body[:-4], os.urandom(4))


_src_counter = 0


def new_socket(blocking: bool) -> socket.socket:
    global _src_counter
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((SOURCES[_src_counter % len(SOURCES)], 0))
    _src_counter += 1
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(blocking)
    return s


def blocking_connect(host: str, port: int, path: str, timeout: float = 10.0):
    """Open and hand-shake one connection; return (socket, bytes read past the 101)."""
    s = new_socket(True)
    s.settimeout(timeout)
    s.connect((host, port))
    s.sendall(request_bytes(host, port, path))
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise BenchError(f"connection closed during the handshake: {buf[:300]!r}")
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    check_101(head)
    return s, rest


def read_frames_blocking(s: socket.socket, buf: bytes, count: int = 1):
    """Read until ``count`` data/close frames arrived, answering pings."""
    out = []
    while True:
        frames, buf = parse_server_frames(buf)
        for opcode, payload in frames:
            if opcode == 0x9:
                s.sendall(client_frame(0xA, payload, os.urandom(4)))
            elif opcode == 0xA:
                pass
            else:
                out.append((opcode, payload))
        if len(out) >= count:
            return out, buf
        data = s.recv(1 << 20)
        if not data:
            raise BenchError(f"server closed the connection; got {out!r}")
        buf += data


def recv_exact_into(s: socket.socket, view: memoryview) -> None:
    got = 0
    n = len(view)
    while got < n:
        k = s.recv_into(view[got:])
        if not k:
            raise BenchError("server closed the connection mid-message")
        got += k


def close_blocking(
    s: socket.socket, buf: bytes, timeout: float = 5.0, fin_wait: float = 2.0, send: bool = True
) -> bool:
    """Close handshake, then wait for the server's FIN; True when the server closed first.

    ``fin_wait`` 0 closes right after the server's close frame (for a server
    known to keep the TCP connection open afterwards).
    """
    try:
        s.settimeout(timeout)
        if send:
            s.sendall(client_frame(0x8, CLOSE_1000, os.urandom(4)))
        frames, buf = read_frames_blocking(s, buf, 1)
        opcode, payload = frames[-1]
        if opcode != 0x8:
            raise BenchError(f"expected a close frame, got opcode {opcode}")
        if payload[:2] not in (CLOSE_1000, b""):
            raise BenchError(f"close frame with code {payload[:2]!r}, expected 1000")
        if fin_wait <= 0:
            return False
        s.settimeout(fin_wait)
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.close()


# ----------------------------------------------------------------------
# Jobs


def job_check(job: dict) -> dict:
    """Every feature the benchmark uses, once: fails loudly on any deviation."""
    host, port, path = job["host"], job["port"], job["path"]
    s, buf = blocking_connect(host, port, path)
    small = make_payload(32, True)
    s.sendall(client_frame(0x1, small, os.urandom(4)))
    frames, buf = read_frames_blocking(s, buf)
    if frames[0] != (0x1, small):
        raise BenchError(f"text echo mismatch: {frames[0]!r}")
    big = make_payload(job.get("large", 1 << 20), False)
    s.sendall(client_frame(0x2, big, os.urandom(4)))
    frames, buf = read_frames_blocking(s, buf)
    if frames[0][0] != 0x2 or frames[0][1] != big:
        raise BenchError("binary echo mismatch")
    server_closed = close_blocking(s, buf, fin_wait=job.get("fin_wait", 2.0))
    return {"ok": True, "server_closed_first": server_closed}


def open_many(host: str, port: int, path: str, n: int) -> list[tuple[socket.socket, bytes]]:
    return [blocking_connect(host, port, path) for _ in range(n)]


def job_echo(job: dict) -> dict:
    """Ping-pong echo of ``size``-byte messages on ``conns`` connections."""
    host, port, path = job["host"], job["port"], job["path"]
    nconn = job["conns"]
    size = job.get("size", 32)
    text = job.get("text", True)
    opcode = 0x1 if text else 0x2
    payload = make_payload(size, text)
    frames = frame_variants(opcode, payload)
    reply = server_frame(opcode, payload)
    rlen = len(reply)
    pids = job.get("pids", [])
    conns = open_many(host, port, path, nconn)

    ep = select.epoll()
    socks = {}
    bufs = {}
    sent_at = {}
    for s, rest in conns:
        s.setblocking(False)
        fd = s.fileno()
        socks[fd] = s
        bufs[fd] = rest
        ep.register(fd, select.EPOLLIN)

    warmup = job.get("warmup", 0.3)
    duration = job.get("duration", 1.5)
    latencies: list[int] = []
    record = latencies.append
    count = 0
    i = 0
    start = _perf()
    t_measure = start + warmup
    t_end = t_measure + duration
    measuring = False
    cpu0 = srv0 = 0.0
    m_start = 0.0
    for fd, s in socks.items():
        sent_at[fd] = _perf_ns()
        s.send(frames[i & 15])
        i += 1
    poll = ep.poll
    partial: set[int] = set()  # connections holding part of a reply
    recv_size = max(4096, 2 * rlen)
    perf = _perf
    perf_ns = _perf_ns
    while True:
        now = perf()
        if not measuring and now >= t_measure:
            measuring = True
            cpu0, srv0 = self_cpu(), proc_cpu(pids)
            m_start = perf()
            count = 0
            latencies.clear()
        elif measuring and now >= t_end:
            break
        for fd, _ev in poll(0.5):
            s = socks[fd]
            try:
                data = s.recv(recv_size)
            except BlockingIOError:
                continue
            if not data:
                raise BenchError("server closed an echo connection")
            if partial and fd in partial:
                data = bufs[fd] + data
                partial.discard(fd)
                bufs[fd] = b""
            if data != reply:
                if len(data) < rlen:
                    bufs[fd] = data
                    partial.add(fd)
                    continue
                # Not the plain reply: pings, or coalesced frames.
                got, rest = parse_server_frames(data)
                if rest:
                    bufs[fd] = rest
                    partial.add(fd)
                echoed = 0
                for op, pl in got:
                    if op == 0x9:
                        s.send(client_frame(0xA, pl, os.urandom(4)))
                    elif op == opcode and pl == payload:
                        echoed += 1
                    elif op != 0xA:
                        raise BenchError(f"unexpected frame opcode {op} length {len(pl)}")
                if not echoed:
                    continue
                if echoed > 1:
                    raise BenchError("more echoes than messages sent")
            t = perf_ns()
            if measuring:
                record(t - sent_at[fd])
                count += 1
            sent_at[fd] = t
            s.send(frames[i & 15])
            i += 1
    elapsed = perf() - m_start
    cpu1, srv1 = self_cpu(), proc_cpu(pids)
    # Close every connection properly (not measured).
    ep.close()
    for s in socks.values():
        s.setblocking(True)
        s.settimeout(5.0)
    close_errors = 0
    fin_wait = job.get("fin_wait", 2.0)
    rests = {}
    for fd, s in socks.items():
        try:
            # Drain the echo of the message still in flight, then close.
            _, rests[fd] = read_frames_blocking(s, bufs[fd] if fd in partial else b"", 1)
            s.sendall(client_frame(0x8, CLOSE_1000, os.urandom(4)))
        except (OSError, BenchError):
            close_errors += 1
    for fd, rest in rests.items():
        try:
            close_blocking(socks[fd], rest, fin_wait=fin_wait, send=False)
        except (OSError, BenchError):
            close_errors += 1
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] / 1000.0 if n else 0.0

    return {
        "messages": count,
        "elapsed": elapsed,
        "msgs_per_s": count / elapsed,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "client_cpu_s": cpu1 - cpu0,
        "server_cpu_s": srv1 - srv0,
        "close_errors": close_errors,
    }


def job_large(job: dict) -> dict:
    """One connection echoing large binary messages back to back."""
    host, port, path = job["host"], job["port"], job["path"]
    size = job.get("size", 1 << 20)
    payload = make_payload(size, False)
    frames = frame_variants(0x2, payload)
    reply = server_frame(0x2, payload)
    pids = job.get("pids", [])
    s, buf = blocking_connect(host, port, path, timeout=60.0)
    if buf:
        raise BenchError("unexpected data after the handshake")
    inbox = bytearray(len(reply))
    view = memoryview(inbox)

    def one(i: int) -> None:
        s.sendall(frames[i & 15])
        recv_exact_into(s, view)
        # bytearray == bytes is a memcmp; comparing a memoryview would go
        # byte by byte (about 1.8 ms per MiB, more than some servers take).
        if inbox != reply:
            raise BenchError("large echo mismatch")

    warm = job.get("warmup_messages", 1)
    for i in range(warm):
        one(i)
    duration = job.get("duration", 1.5)
    cpu0, srv0 = self_cpu(), proc_cpu(pids)
    t0 = _perf()
    n = 0
    while True:
        one(n)
        n += 1
        elapsed = _perf() - t0
        if elapsed >= duration and n >= job.get("min_messages", 2):
            break
    cpu1, srv1 = self_cpu(), proc_cpu(pids)
    close_blocking(s, b"", fin_wait=job.get("fin_wait", 2.0))
    return {
        "messages": n,
        "elapsed": elapsed,
        "mib_per_s": n * size / (1 << 20) / elapsed,
        "client_cpu_s": cpu1 - cpu0,
        "server_cpu_s": srv1 - srv0,
    }


# States of the connection-rate and idle state machines.
CONNECTING, HANDSHAKE, ECHO, CLOSING, WAIT_FIN, IDLE, VERIFY, WARM = range(8)


class Conn:
    __slots__ = ("buf", "deadline", "fd", "inflater", "sock", "started", "state")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = b""
        self.state = CONNECTING
        self.started = _perf()
        self.deadline = 0.0
        self.inflater: zlib._Decompress | None = None


def start_connect(host: str, port: int, ep: select.epoll, table: dict) -> Conn:
    s = new_socket(False)
    err = s.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        raise BenchError(f"connect failed: {os.strerror(err)}")
    c = Conn(s)
    table[c.fd] = c
    ep.register(c.fd, select.EPOLLOUT)
    return c


def job_connrate(job: dict) -> dict:
    """Connections per second: handshake + one echo + close handshake, per slot, back to back."""
    host, port, path = job["host"], job["port"], job["path"]
    conc = job["concurrency"]
    duration = job.get("duration", 1.5)
    warmup = job.get("warmup", 0.2)
    pids = job.get("pids", [])
    req = request_bytes(host, port, path)
    payload = make_payload(32, True)
    echo_frames = frame_variants(0x1, payload)
    close_frames = frame_variants(0x8, CLOSE_1000)
    reply = server_frame(0x1, payload)
    fin_wait = job.get("fin_wait", 2.0)
    ep = select.epoll()
    table: dict[int, Conn] = {}
    done = 0
    client_closed = 0
    times: list[float] = []
    i = 0
    start = _perf()
    t_measure = start + warmup
    t_end = t_measure + duration
    measuring = False
    cpu0 = srv0 = 0.0
    m_start = 0.0
    stop = False
    for _ in range(conc):
        start_connect(host, port, ep, table)

    def finish(c: Conn, closed_by_server: bool) -> None:
        nonlocal done, client_closed
        ep.unregister(c.fd)
        del table[c.fd]
        c.sock.close()
        if measuring:
            done += 1
            times.append(_perf() - c.started)
            if not closed_by_server:
                client_closed += 1
        if not stop:
            start_connect(host, port, ep, table)

    begun = False
    while table:
        now = _perf()
        if not begun and now >= t_measure:
            begun = measuring = True
            cpu0, srv0 = self_cpu(), proc_cpu(pids)
            m_start = _perf()
        elif measuring and not stop and now >= t_end:
            stop = True
            elapsed = now - m_start
            cpu1, srv1 = self_cpu(), proc_cpu(pids)
            measuring = False
        events = ep.poll(0.1)
        if not events:
            now = _perf()
            for c in list(table.values()):
                if c.state == WAIT_FIN and now > c.deadline:
                    finish(c, False)
                elif now - c.started > 30:
                    raise BenchError(f"connection stuck in state {c.state}")
            continue
        for fd, _ev in events:
            c = table.get(fd)
            if c is None:
                continue
            s = c.sock
            if c.state == CONNECTING:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise BenchError(f"connect failed: {os.strerror(err)}")
                s.send(req)
                c.state = HANDSHAKE
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                if c.state == WAIT_FIN:
                    finish(c, True)
                    continue
                raise BenchError(f"server closed the connection in state {c.state}")
            buf = c.buf + data
            if c.state == HANDSHAKE:
                if b"\r\n\r\n" not in buf:
                    c.buf = buf
                    continue
                head, buf = buf.split(b"\r\n\r\n", 1)
                check_101(head)
                c.state = ECHO
                s.send(echo_frames[i & 15])
                i += 1
            if c.state == ECHO:
                if len(buf) < len(reply):
                    c.buf = buf
                    continue
                if not buf.startswith(reply):
                    frames, _ = parse_server_frames(buf)
                    raise BenchError(f"wrong echo during connection cycle: {frames!r}")
                buf = buf[len(reply) :]
                s.send(close_frames[i & 15])
                i += 1
                c.state = CLOSING
            if c.state == CLOSING:
                frames, buf = parse_server_frames(buf)
                for opcode, pl in frames:
                    if opcode == 0x8:
                        # gevent-websocket 0.10.1 answers with an empty close
                        # payload (allowed: "no status code").
                        if pl[:2] not in (CLOSE_1000, b""):
                            raise BenchError(f"close code {pl[:2]!r}")
                        c.state = WAIT_FIN
                        c.deadline = _perf() + fin_wait
                    elif opcode not in (0x9, 0xA):
                        raise BenchError(f"unexpected frame {opcode} while closing")
            c.buf = buf
            if c.state == WAIT_FIN and fin_wait <= 0:
                finish(c, False)  # a server that keeps the TCP connection open
    ep.close()
    times.sort()
    n = len(times)
    return {
        "connections": done,
        "elapsed": elapsed,
        "conns_per_s": done / elapsed,
        "p50_ms": times[n // 2] * 1000 if n else 0.0,
        "p99_ms": times[min(n - 1, int(0.99 * n))] * 1000 if n else 0.0,
        "client_closed": client_closed,
        "client_cpu_s": cpu1 - cpu0,
        "server_cpu_s": srv1 - srv0,
    }


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def job_idle(job: dict) -> None:
    """Hold many idle connections; commands on stdin: ``open N``, ``verify``, ``quit``.

    With ``deflate`` the client offers permessage-deflate as browsers do, and
    each connection, once open, exchanges one compressed JSON message each
    way before it counts as open (its echo is inflated and checked); verify
    sends another.
    """
    host, port, path = job["host"], job["port"], job["path"]
    conc = job.get("concurrency", 64)
    deflate = bool(job.get("deflate"))
    payload = JSON_EVENT if deflate else make_payload(32, True)
    echo_frames = (
        [deflate_frame(payload) for _ in range(NVARIANTS)]
        if deflate
        else frame_variants(0x1, payload)
    )
    req = request_bytes(host, port, path, BROWSER_DEFLATE_OFFER if deflate else "")
    ep = select.epoll()
    table: dict[int, Conn] = {}
    stdin_fd = sys.stdin.fileno()
    ep.register(stdin_fd, select.EPOLLIN)
    lost = 0
    i = 0
    pending_open = 0
    verifying = 0

    def handle(c: Conn, data: bytes) -> None:
        nonlocal lost, verifying, i
        s = c.sock
        buf = c.buf + data
        if c.state == HANDSHAKE:
            if b"\r\n\r\n" not in buf:
                c.buf = buf
                return
            head, buf = buf.split(b"\r\n\r\n", 1)
            check_101(head, deflate)
            if deflate:
                # Whatever window the server compresses with, 15 bits inflates it.
                c.inflater = zlib.decompressobj(-15)
                s.send(echo_frames[i & 15])
                i += 1
                c.state = WARM
            else:
                c.state = IDLE
        frames, buf = parse_server_frames(buf)
        c.buf = buf
        for opcode, pl in frames:
            if opcode == 0x9:
                s.send(client_frame(0xA, pl, os.urandom(4)))
            elif opcode == 0xA:
                pass
            elif c.state in (VERIFY, WARM) and echoed(c, opcode, pl):
                if c.state == VERIFY:
                    verifying -= 1
                c.state = IDLE
            else:
                raise BenchError(f"unexpected frame {opcode} on an idle connection")

    def echoed(c: Conn, opcode: int, pl: bytes) -> bool:
        if c.inflater is not None and opcode == 0x41:
            return c.inflater.decompress(pl + b"\x00\x00\xff\xff") == payload
        return opcode == 0x1 and pl == payload

    line_buf = b""
    opened_total = 0
    t_open = 0.0
    verify_started = 0.0
    verify_count = 0
    while True:
        # Keep up to `conc` handshakes in flight while opening.
        in_flight = sum(1 for c in table.values() if c.state in (CONNECTING, HANDSHAKE, WARM))
        while pending_open and in_flight < conc:
            start_connect(host, port, ep, table)
            pending_open -= 1
            in_flight += 1
        if t_open and not pending_open and in_flight == 0:
            emit(
                {
                    "event": "opened",
                    "open": len(table),
                    "lost": lost,
                    "seconds": _perf() - t_open,
                }
            )
            t_open = 0.0
        if verify_started and verifying == 0:
            emit(
                {
                    "event": "verified",
                    "ok": verify_count,
                    "open": len(table),
                    "lost": lost,
                    "seconds": _perf() - verify_started,
                }
            )
            verify_started = 0.0
        if verify_started and _perf() - verify_started > job.get("verify_timeout", 60):
            emit(
                {
                    "event": "verified",
                    "ok": verify_count - verifying,
                    "open": len(table),
                    "lost": lost,
                    "timeout": True,
                }
            )
            verify_started = 0.0
        for fd, _ev in ep.poll(0.2):
            if fd == stdin_fd:
                chunk = os.read(stdin_fd, 4096)
                if not chunk:
                    return
                line_buf += chunk
                while b"\n" in line_buf:
                    line, line_buf = line_buf.split(b"\n", 1)
                    cmd = line.decode().split()
                    if not cmd:
                        continue
                    if cmd[0] == "open":
                        pending_open += int(cmd[1])
                        opened_total += int(cmd[1])
                        t_open = _perf()
                    elif cmd[0] == "verify":
                        verify_started = _perf()
                        verifying = 0
                        for c in table.values():
                            if c.state == IDLE:
                                c.sock.send(echo_frames[i & 15])
                                i += 1
                                c.state = VERIFY
                                verifying += 1
                        verify_count = verifying
                        if not verifying:
                            verify_started = _perf()
                    elif cmd[0] == "quit":
                        return
                continue
            c = table.get(fd)
            if c is None:
                continue
            if c.state == CONNECTING:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise BenchError(f"connect failed: {os.strerror(err)}")
                c.sock.send(req)
                c.state = HANDSHAKE
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                if c.state == VERIFY:
                    verifying -= 1
                lost += 1
                ep.unregister(fd)
                del table[fd]
                c.sock.close()
                continue
            handle(c, data)


JOBS = {"check": job_check, "echo": job_echo, "large": job_large, "connrate": job_connrate}


def main() -> int:
    job = json.loads(sys.argv[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = job.get("nofile", 0)
    if want and soft < want:
        # Each idle connection is one client socket too.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    if job.get("cpu") is not None:
        os.sched_setaffinity(0, set(job["cpu"]))
    try:
        if job["kind"] == "idle":
            job_idle(job)
            return 0
        result = JOBS[job["kind"]](job)
    except (BenchError, OSError) as exc:
        emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
