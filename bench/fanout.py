"""Fan-out benchmark: one message to 1,000 WebSockets across two server processes (Redis).

::

    python bench/fanout.py            # 1,000 sockets on two servers
    python bench/fanout.py --quick    # 200 sockets, fewer messages (a smoke run)

It starts ``redis-server`` (from ``PATH``, on a free loopback port) and two
``python -m django_websocket`` processes serving *this file* as their Django
project (it is also their settings module and URLconf), with
``WEBSOCKET_GROUPS = {"BACKEND": "redis", ...}``.  Clients connect half to
each server and join one group; a separate process then publishes with
``groups.send()``, the way a management command or a worker would:

1. **latency**: one message every 100 ms (light load), then every 20 ms;
   each message carries the time it was sent, and latency is measured per
   delivery, from ``groups.send()`` to the client having the whole frame
   (one host, one monotonic clock);
2. **throughput**: messages back to back; deliveries per second from the
   first send until every socket has every message (latency there is
   mostly the time spent queued behind the earlier messages).

The clients are a minimal asyncio WebSocket reader in one process, so that
they cost less than the servers.  Prints a Markdown table (for BENCHMARKS.md).
Everything runs on loopback and stops by itself.
"""

from __future__ import annotations

import os
import sys

# ----------------------------------------------------------------------
# The servers' Django project: settings, and a URLconf made on first use.

SECRET_KEY = "fan-out benchmark, not secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "fanout"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
WEBSOCKET_PING_INTERVAL = None
WEBSOCKET_COMPRESSION = False
WEBSOCKET_GROUPS = {
    "BACKEND": "redis",
    "URL": os.environ.get("FANOUT_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "PREFIX": "fanout",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}

GROUP = "fanout"


def __getattr__(name: str) -> object:
    """``urlpatterns``, built when Django first asks (settings must not import views)."""
    if name != "urlpatterns":
        raise AttributeError(name)
    from django.urls import path

    from django_websocket import groups, require_websocket

    @require_websocket
    def member(request: object) -> None:
        websocket = request.websocket  # type: ignore[attr-defined]
        if os.environ.get("FANOUT_NODELAY") == "1":
            # A/B switch (--nodelay): the package does not set TCP_NODELAY (yet).
            import socket

            websocket._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        groups.add(GROUP, websocket)  # returns once this process is subscribed
        websocket.send("ready")
        for _ in websocket:
            pass

    patterns = [path("member/", member)]
    globals()["urlpatterns"] = patterns
    return patterns


# ----------------------------------------------------------------------
# The benchmark (only when run as a script)

if __name__ == "__main__":
    import argparse
    import asyncio
    import base64
    import platform
    import resource
    import shutil
    import signal
    import socket
    import statistics
    import struct
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    HERE = Path(__file__).resolve().parent
    REPO = HERE.parent

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port

    def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {port} after {timeout} s")

    def environment(redis_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")])
        env["DJANGO_SETTINGS_MODULE"] = "fanout"
        env["FANOUT_REDIS_URL"] = redis_url
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- publishing, in a process of its own ---------------------------

    def publish(count: int, interval: float, tag: str) -> None:
        """``groups.send`` ``count`` messages ``"TAG i SENT_NS"``, ``interval`` s apart."""
        import django

        django.setup()
        from django_websocket import groups

        next_at = time.monotonic()
        for i in range(count):
            if interval:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            groups.send(GROUP, f"{tag} {i} {time.monotonic_ns()}")

    # -- clients ---------------------------------------------------------

    class Stats:
        def __init__(self) -> None:
            self.latencies: dict[str, list[int]] = {}
            self.last_arrival: dict[str, int] = {}
            self.first_sent: dict[str, int] = {}
            self.ready = 0

        def message(self, payload: bytes, now: int) -> None:
            if payload == b"ready":
                self.ready += 1
                return
            tag, i, sent = payload.split(b" ")
            key = tag.decode()
            sent_ns = int(sent)
            self.latencies.setdefault(key, []).append(now - sent_ns)
            if self.last_arrival.get(key, 0) < now:
                self.last_arrival[key] = now
            if i == b"0":
                self.first_sent[key] = sent_ns

    class Client(asyncio.Protocol):
        """Just enough of a WebSocket client to read small unmasked text frames."""

        def __init__(self, port: int, stats: Stats, connected: asyncio.Future[None]) -> None:
            self.port = port
            self.stats = stats
            self.connected = connected
            self.buffer = b""
            self.open = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            key = base64.b64encode(os.urandom(16)).decode()
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(
                (
                    f"GET /member/ HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )

        def data_received(self, data: bytes) -> None:
            now = time.monotonic_ns()
            buffer = self.buffer + data
            if not self.open:
                head, found, rest = buffer.partition(b"\r\n\r\n")
                if not found:
                    self.buffer = buffer
                    return
                if not head.startswith(b"HTTP/1.1 101"):
                    self.connected.set_exception(RuntimeError(head.decode(errors="replace")))
                    return
                self.open = True
                self.connected.set_result(None)
                buffer = rest
            offset, size = 0, len(buffer)
            while size - offset >= 2:
                first, second = buffer[offset], buffer[offset + 1]
                length, start = second & 0x7F, offset + 2
                if length == 126:
                    if size - offset < 4:
                        break
                    length, start = struct.unpack_from("!H", buffer, offset + 2)[0], offset + 4
                elif length == 127:
                    if size - offset < 10:
                        break
                    length, start = struct.unpack_from("!Q", buffer, offset + 2)[0], offset + 10
                if size < start + length:
                    break
                if first & 0x0F == 0x1:
                    self.stats.message(buffer[start : start + length], now)
                offset = start + length
            self.buffer = buffer[offset:]

    async def connect_all(ports: list[int], sockets: int, stats: Stats) -> list[Client]:
        loop = asyncio.get_running_loop()
        clients: list[Client] = []
        for first in range(0, sockets, 100):
            batch = []
            for n in range(first, min(first + 100, sockets)):
                port = ports[n % len(ports)]
                connected: asyncio.Future[None] = loop.create_future()
                _, client = await loop.create_connection(
                    lambda port=port, c=connected: Client(port, stats, c),  # type: ignore[misc]
                    "127.0.0.1",
                    port,
                )
                clients.append(client)
                batch.append(connected)
            await asyncio.gather(*batch)
        deadline = time.monotonic() + 60
        while stats.ready < sockets:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {stats.ready} of {sockets} sockets joined")
            await asyncio.sleep(0.05)
        return clients

    async def run_phase(
        env: dict[str, str], stats: Stats, sockets: int, tag: str, count: int, interval: float
    ) -> None:
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--publish",
            tag,
            str(count),
            str(interval),
            env=env,
        )
        assert await publisher.wait() == 0, "the publisher failed"
        expected = sockets * count
        deadline = time.monotonic() + 60
        while len(stats.latencies.get(tag, ())) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # anything duplicated would arrive now

    def row(stats: Stats, name: str, tag: str, sockets: int, count: int) -> str:
        latencies = sorted(stats.latencies.get(tag, []))
        received = len(latencies)
        expected = sockets * count
        elapsed = (stats.last_arrival[tag] - stats.first_sent[tag]) / 1e9
        quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
        return (
            f"| {name} | {sockets:,} | {count:,} | {received:,} / {expected:,} | "
            f"{received / elapsed:,.0f} | {quantiles[49] / 1e6:.1f} ms | "
            f"{quantiles[98] / 1e6:.1f} ms | {latencies[-1] / 1e6:.1f} ms |"
        )

    def version(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    def main() -> int:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--quick", action="store_true", help="200 sockets, few messages")
        parser.add_argument("--sockets", type=int, help="number of WebSockets (default 1000)")
        parser.add_argument(
            "--nodelay",
            action="store_true",
            help="set TCP_NODELAY on the servers' WebSocket sockets (the package does not)",
        )
        parser.add_argument("--publish", nargs=3, help=argparse.SUPPRESS)
        args = parser.parse_args()
        if args.publish:
            tag, count, interval = args.publish
            publish(int(count), float(interval), tag)
            return 0

        sockets = args.sockets or (200 if args.quick else 1000)
        phases = [  # name, tag, messages, interval
            ("one message every 100 ms", "slow", 10 if args.quick else 50, 0.1),
            ("one message every 20 ms", "lat", 25 if args.quick else 250, 0.02),
            ("back to back", "burst", 20 if args.quick else 200, 0.0),
        ]
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
            return 2
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, sockets * 4)), hard))

        processes: list[subprocess.Popen[bytes]] = []
        logs = []
        try:
            redis_port = free_port()
            options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            redis_proc = subprocess.Popen(
                [redis_server, "--port", str(redis_port), *options], stdout=subprocess.DEVNULL
            )
            processes.append(redis_proc)
            wait_for_port(redis_port, redis_proc)
            env = environment(f"redis://127.0.0.1:{redis_port}/0")
            if args.nodelay:
                env["FANOUT_NODELAY"] = "1"
            ports = [free_port(), free_port()]
            for port in ports:
                log = tempfile.TemporaryFile()  # noqa: SIM115 - read after the run
                logs.append(log)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "django_websocket", f"127.0.0.1:{port}"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                processes.append(proc)
                wait_for_port(port, proc)

            stats = Stats()

            async def scenario() -> None:
                clients = await connect_all(ports, sockets, stats)
                await run_phase(env, stats, sockets, "warm", 5, 0.02)
                for _, tag, count, interval in phases:
                    await run_phase(env, stats, sockets, tag, count, interval)
                for client in clients:
                    client.transport.close()
                await asyncio.sleep(0.1)

            started = time.monotonic()
            asyncio.run(scenario())
            took = time.monotonic() - started
        finally:
            for proc in reversed(processes):  # the servers first, Redis last
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        problems = []
        for log in logs:
            log.seek(0)
            text = log.read().decode(errors="replace")
            problems += [line for line in text.splitlines() if "groups:" in line or "Error" in line]

        import django
        import gevent
        import redis

        print(
            f"Fan-out through Redis pub/sub: {sockets:,} WebSockets, half on each of two "
            "`python -m django_websocket` processes, one group; messages published by "
            "a third process with `groups.send()`.\n"
        )
        print(
            "| scenario | sockets | messages | deliveries | deliveries/s | p50 latency | "
            "p99 latency | max latency |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, tag, count, _ in phases:
            print(row(stats, name, tag, sockets, count))
        print(
            f"\n{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"Django {django.get_version()}, gevent {gevent.__version__}, "
            f"redis-py {redis.__version__}, "
            f"{version([redis_server, '--version']).split(' sha')[0]}; "
            f"{'--quick, ' if args.quick else ''}"
            f"{'TCP_NODELAY set (--nodelay), ' if args.nodelay else ''}run took {took:.1f} s."
        )
        if problems:
            print("\nServer log lines to look at:\n\n" + "\n".join(f"    {p}" for p in problems))
        complete = all(
            len(stats.latencies.get(tag, ())) == sockets * count for _, tag, count, _ in phases
        )
        return 0 if complete and not problems else 1

    sys.exit(main())
