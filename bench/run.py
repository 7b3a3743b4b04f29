#!/usr/bin/env python
"""Side-by-side WebSocket server benchmark: the one command behind BENCHMARKS.md.

Usage::

    python bench/run.py                    # full run (5 rounds, ~20 min), writes BENCHMARKS.md
    python bench/run.py --quick            # smoke test (< 60 s): every server works, no timing
    python bench/run.py --rounds 7 --out BENCHMARKS.md --servers django-websocket,ceiling

Each server under test runs as its own process on 127.0.0.1 (never any other
address), pinned to one core; the load generator (``bench/loadgen.py``, raw
sockets and pre-built masked frames) runs as a separate process pinned to
another core.  Servers are interleaved: every round starts each server
afresh, in an order rotated by one per round, and runs every workload
against it.  Reported figures are medians over rounds, with min/max.

Workloads: 32-byte text echo, ping-pong per connection, at 1, 10 and 100
connections (messages/s, p50/p99 round trip, server CPU per message); 1 MiB
binary echo on one connection (MiB/s); connection rate (handshake through
the whole stack, one 32-byte echo, close handshake), sequential and 10
concurrent; idle capacity (RSS per connection with 1,000 and then 10,000
idle WebSockets held, all verified alive with one echo each afterwards);
idle capacity with permessage-deflate (2,000 held, each offered as a browser
does and having exchanged one compressed JSON message each way; every server
with its own default deflate parameters).

``--quick`` runs every workload once, tiny, and exits non-zero only if a
server fails to work (wrong handshake, wrong echo, lost connection); it
asserts no timing.  Servers whose packages are not installed are skipped
(``--strict`` makes that an error too).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LOADGEN = BENCH / "loadgen.py"
HOST = "127.0.0.1"
PY = sys.executable

SMALL_CONNS = (1, 10, 100)
CONNRATE_CONC = (1, 10)
IDLE_STEPS = (1000, 10000)
LARGE = 1 << 20


@dataclass
class Server:
    key: str
    label: str
    argv: list[str]  # "{port}" is replaced
    path: str
    needs: tuple[str, ...]
    note: str
    fin_wait: float = 2.0  # 0: the server keeps TCP open after the close handshake
    fds_per_conn: int = 1  # descriptors the server holds per connection
    env: dict[str, str] = field(default_factory=dict)


def servers() -> list[Server]:
    return [
        Server(
            "django-websocket",
            "django-websocket",
            [
                PY,
                "-m",
                "django_websocket",
                HOST + ":{port}",
                "--settings",
                "benchproject.settings",
                "--pythonpath",
                str(BENCH),
                "--log-level",
                "WARNING",
            ],
            "/echo/",
            ("django", "gevent", "django_websocket"),
            "this package: `python -m django_websocket`, bench Django project "
            "(startproject middleware), `@require_websocket` echo view",
        ),
        Server(
            "ceiling",
            "raw gevent (ceiling)",
            [PY, str(BENCH / "servers" / "ceiling.py"), "{port}"],
            "/",
            ("gevent",),
            "gevent `StreamServer`, minimal handshake, echoes pre-built frames "
            "without unmasking or parsing payloads",
        ),
        Server(
            "gevent-websocket",
            "gevent-websocket",
            [PY, str(BENCH / "servers" / "gws_plain.py"), "{port}"],
            "/",
            ("geventwebsocket",),
            "gevent-websocket 0.10.1 `WebSocketServer`, plain WSGI echo app",
        ),
        Server(
            "gevent-websocket-django",
            "gevent-websocket + Django",
            [PY, str(BENCH / "servers" / "gws_django.py"), "{port}"],
            "/gws/",
            ("geventwebsocket", "django"),
            "gevent-websocket's handler in front of the same Django project; the "
            "view reads `request.environ['wsgi.websocket']`",
        ),
        Server(
            "websockets",
            "websockets (asyncio)",
            [PY, str(BENCH / "servers" / "ws_asyncio.py"), "{port}"],
            "/",
            ("websockets",),
            "`websockets.asyncio.server.serve`, asyncio event loop, C speedups, `compression=None`",
        ),
        Server(
            "flask-sock",
            "flask-sock (gevent)",
            [PY, str(BENCH / "servers" / "flask_sock_gevent.py"), "{port}"],
            "/echo",
            ("flask_sock", "simple_websocket", "flask", "gevent"),
            "flask-sock + simple-websocket on gevent `WSGIServer` (keeps the TCP "
            "connection open after the close handshake: the client closes it; "
            "simple-websocket `dup()`s each socket, so it holds 2 descriptors per connection)",
            fin_wait=0.0,
            fds_per_conn=2,
        ),
        Server(
            "channels-uvicorn",
            "Channels / uvicorn",
            [
                PY,
                "-m",
                "uvicorn",
                "benchproject.asgi:application",
                "--host",
                HOST,
                "--port",
                "{port}",
                "--no-access-log",
                "--log-level",
                "warning",
                "--ws-per-message-deflate",
                "false",
                "--lifespan",
                "off",
            ],
            "/echo/",
            ("channels", "uvicorn", "django"),
            "Django Channels, synchronous `WebsocketConsumer` behind "
            "`AuthMiddlewareStack`, uvicorn (uvloop, httptools, websockets-sansio)",
        ),
        Server(
            "channels-daphne",
            "Channels / daphne",
            [
                PY,
                "-m",
                "daphne",
                "-b",
                HOST,
                "-p",
                "{port}",
                "-v",
                "0",
                "benchproject.asgi:application",
            ],
            "/echo/",
            ("channels", "daphne", "django"),
            "the same Channels application under daphne (Twisted, autobahn)",
        ),
    ]


def with_compression(spec: Server) -> Server | None:
    """``spec`` as it runs for the compressed idle workload, or ``None`` if it has no deflate.

    Each server runs with its own default permessage-deflate parameters:
    this package and websockets negotiate by default (the throughput
    workloads' websockets server turns it off), uvicorn is told to.
    """
    if spec.key.startswith("django-websocket"):
        return spec
    if spec.key == "websockets":
        return Server(
            spec.key,
            spec.label,
            spec.argv,
            spec.path,
            spec.needs,
            spec.note,
            env={**spec.env, "BENCH_COMPRESSION": "default"},
        )
    if spec.key == "channels-uvicorn":
        argv = list(spec.argv)
        argv[argv.index("--ws-per-message-deflate") + 1] = "true"
        return Server(spec.key, spec.label, argv, spec.path, spec.needs, spec.note, env=spec.env)
    return None


# ----------------------------------------------------------------------
# Processes


class Failure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


NOFILE_WANTED = 65536  # 10,000 connections can take 2-3 descriptors each (dup, selectors)


def raise_nofile() -> int:
    """Raise the open-files limit (inherited by servers and clients); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < NOFILE_WANTED:
        try:  # root (CAP_SYS_RESOURCE) may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE_WANTED, NOFILE_WANTED))
            return NOFILE_WANTED
        except (ValueError, OSError):
            pass
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Placement:
    """Which cores servers and clients run on, and at what priority."""

    def __init__(self, nice: int) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            self.server_cpus: set[int] | None = {cpus[0]}
            self.client_cpus: set[int] | None = {cpus[1]}
        else:
            self.server_cpus = self.client_cpus = None
        self.nice = nice

    def preexec(self, cpus: set[int] | None):
        nice = self.nice

        def setup() -> None:
            raise_nofile()
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            if nice:
                # Under autogroup scheduling (the default on desktop-style
                # kernels) a process's nice value only counts inside its
                # session's group, so each benchmark process gets a session
                # of its own and that group gets the priority too.
                os.setsid()
                try:
                    with open("/proc/self/autogroup", "w") as f:
                        f.write(str(nice))
                except OSError:
                    pass
                os.setpriority(os.PRIO_PROCESS, 0, nice)

        return setup

    def describe(self) -> str:
        if self.server_cpus is None:
            return "one core only: server and client share it (no pinning)"
        return (
            f"server pinned to CPU {min(self.server_cpus)}, load generator to CPU "
            f"{min(self.client_cpus)}"
        )


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH), *filter(None, [env.get("PYTHONPATH")])])
    env["DJANGO_SETTINGS_MODULE"] = "benchproject.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


_RUNNING: set[subprocess.Popen] = set()


def _kill_leftovers() -> None:
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_kill_leftovers)


def _connection_bound(argv: list[str], env: dict[str, str]) -> list[str]:
    """Lift the entrypoint's connection bound above the idle workload's 10,000 sockets.

    The entrypoint admits half the descriptor limit by default, which may be
    fewer than the idle workload holds; versions without the option get nothing.
    """
    if argv[1:3] != ["-m", "django_websocket"]:
        return []
    where = Path(env.get("PYTHONPATH", str(REPO)).split(os.pathsep)[0])
    main = where / "django_websocket" / "__main__.py"
    if main.is_file() and "--max-connections" in main.read_text():
        return ["--max-connections", str(max(IDLE_STEPS) + 1000)]
    return []


class Running:
    """A server process under test."""

    def __init__(self, spec: Server, place: Placement, extra_env: dict[str, str]) -> None:
        self.spec = spec
        self.port = free_port()
        # Kept open for the server's lifetime (its stdout and stderr), closed in stop().
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"bench-{spec.key}-", suffix=".log", delete=False
        )
        argv = [a.replace("{port}", str(self.port)) for a in spec.argv]
        argv += _connection_bound(argv, {**spec.env, **extra_env})
        self.proc = subprocess.Popen(
            argv,
            cwd=str(BENCH),
            env=server_env({**spec.env, **extra_env}),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=place.preexec(place.server_cpus),
        )
        _RUNNING.add(self.proc)
        try:
            self.wait_listening()
        except Failure:
            self.stop()
            raise

    def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(
                    f"{self.spec.key} exited with {self.proc.returncode}:\n" + self.log_tail()
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise Failure(f"{self.spec.key} did not listen within {timeout} s:\n" + self.log_tail())

    def pids(self) -> list[int]:
        pids = [self.proc.pid]
        try:
            import psutil

            pids += [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except Exception:
            pass
        return pids

    def rss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log.name, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # measurements are over; no need to drain
        self.proc.wait()
        _RUNNING.discard(self.proc)
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


def run_job(job: dict, place: Placement, timeout: float = 120.0) -> dict:
    job = {"host": HOST, **job}
    proc = subprocess.run(
        [PY, str(LOADGEN), json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=place.preexec(place.client_cpus),
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise Failure(f"load generator printed nothing (rc {proc.returncode}):\n{proc.stderr}")
    result = json.loads(lines[-1])
    if "error" in result:
        raise Failure(result["error"])
    if proc.returncode:
        raise Failure(f"load generator exited with {proc.returncode}:\n{proc.stderr}")
    return result


class IdleClient:
    """The load generator's ``idle`` job, steered line by line."""

    def __init__(self, srv: Running, place: Placement, nofile: int, deflate: bool = False) -> None:
        job = {
            "kind": "idle",
            "host": HOST,
            "port": srv.port,
            "path": srv.spec.path,
            "nofile": nofile,
            "concurrency": 64,
            "deflate": deflate,
        }
        self.proc = subprocess.Popen(
            [PY, str(LOADGEN), json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=place.preexec(place.client_cpus),
        )

    def command(self, line: str, timeout: float) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise Failure(f"idle client: no answer to {line!r} within {timeout} s")
        out = self.proc.stdout.readline()
        if not out:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise Failure(f"idle client died: {err}")
        result = json.loads(out)
        if "error" in result:
            raise Failure(result["error"])
        return result

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def settled_rss(srv: Running, max_wait: float = 3.0) -> int:
    """RSS once it stopped moving (two reads 0.25 s apart within 0.5 %)."""
    prev = srv.rss_kib()
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = srv.rss_kib()
        if abs(cur - prev) <= 0.005 * prev:
            return cur
        prev = cur
    return prev


# ----------------------------------------------------------------------
# Workloads


def throughput_round(
    spec: Server, place: Placement, cfg: argparse.Namespace, extra_env: dict[str, str]
) -> dict:
    """Start ``spec`` afresh and run every throughput workload against it."""
    srv = Running(spec, place, extra_env)
    out: dict[str, Any] = {}
    try:
        base = {"port": srv.port, "path": spec.path, "fin_wait": spec.fin_wait}
        run_job({**base, "kind": "check"}, place)  # warm-up and correctness
        pids = srv.pids()
        d = cfg.duration
        for n in SMALL_CONNS:
            r = run_job(
                {
                    **base,
                    "kind": "echo",
                    "conns": n,
                    "size": 32,
                    "text": True,
                    "duration": d,
                    "warmup": cfg.warmup,
                    "pids": pids,
                },
                place,
            )
            out[f"echo{n}"] = r
        r = run_job(
            {
                **base,
                "kind": "large",
                "size": LARGE,
                "duration": d,
                "warmup_messages": 1,
                "min_messages": 2 if not cfg.quick else 1,
                "pids": pids,
            },
            place,
            timeout=300,
        )
        out["large"] = r
        for c in CONNRATE_CONC:
            r = run_job(
                {
                    **base,
                    "kind": "connrate",
                    "concurrency": c,
                    "duration": d,
                    "warmup": cfg.warmup,
                    "pids": pids,
                },
                place,
            )
            if r["connections"] == 0:
                raise Failure(f"no connection completed at concurrency {c}")
            out[f"connrate{c}"] = r
        if not srv.alive():
            raise Failure("server died during the run:\n" + srv.log_tail())
    finally:
        srv.stop()
    return out


def idle_round(
    spec: Server,
    place: Placement,
    cfg: argparse.Namespace,
    nofile: int,
    extra_env: dict[str, str],
    deflate: bool = False,
) -> dict:
    """Hold idle connections on a fresh server; RSS per connection, verify alive.

    Without ``deflate``: ``cfg.idle_steps`` connections, no extension.  With
    it: ``cfg.deflate_steps`` connections, each offered permessage-deflate as a
    browser does and having exchanged one compressed JSON message each way.
    """
    srv = Running(spec, place, extra_env)
    out: dict[str, Any] = {}
    client = None
    try:
        base = {"port": srv.port, "path": spec.path, "fin_wait": spec.fin_wait}
        run_job({**base, "kind": "check"}, place)  # imports, caches: not per-connection costs
        run_job({**base, "kind": "echo", "conns": 10, "duration": 0.2, "warmup": 0.0}, place)
        rss0 = settled_rss(srv)
        out["rss_base_kib"] = rss0
        client = IdleClient(srv, place, nofile, deflate)
        opened = 0
        # A server that needs more descriptors per connection than the
        # open-files limit allows for the largest step holds as many as fit.
        room = (nofile - 200) // spec.fds_per_conn
        wanted = cfg.deflate_steps if deflate else cfg.idle_steps
        steps = sorted({min(step, room // 500 * 500) for step in wanted})
        for step in steps:
            r = client.command(f"open {step - opened}", timeout=600)
            opened = step
            if r["lost"] or r["open"] != step:
                raise Failure(f"{r['open']} of {step} idle connections open, {r['lost']} lost")
            rss = settled_rss(srv)
            out[f"idle{step}"] = {
                "rss_kib": rss,
                "kib_per_conn": (rss - rss0) / step,
                "open_seconds": r["seconds"],
            }
        v = client.command("verify", timeout=600)
        if v.get("timeout") or v["ok"] != opened or v["lost"]:
            raise Failure(
                f"after holding {opened} idle connections only {v['ok']} echoed ({v['lost']} lost)"
            )
        out["verified"] = v["ok"]
        if not srv.alive():
            raise Failure("server died while holding idle connections:\n" + srv.log_tail())
    finally:
        if client is not None:
            client.close()
        srv.stop()
    return out


def smoke_round(
    spec: Server, place: Placement, cfg: argparse.Namespace, nofile: int, extra_env: dict[str, str]
) -> dict:
    """``--quick``: every workload once, tiny, on one server process; no timing asserted."""
    srv = Running(spec, place, extra_env)
    out: dict[str, Any] = {}
    client = None
    try:
        base = {"port": srv.port, "path": spec.path, "fin_wait": spec.fin_wait}
        out["check"] = run_job({**base, "kind": "check"}, place)
        pids = srv.pids()
        out["echo10"] = run_job(
            {**base, "kind": "echo", "conns": 10, "duration": 0.2, "warmup": 0.0, "pids": pids},
            place,
        )
        out["large"] = run_job(
            {
                **base,
                "kind": "large",
                "size": LARGE,
                "duration": 0.0,
                "warmup_messages": 0,
                "min_messages": 1,
                "pids": pids,
            },
            place,
        )
        out["connrate10"] = run_job(
            {
                **base,
                "kind": "connrate",
                "concurrency": 10,
                "duration": 0.2,
                "warmup": 0.0,
                "pids": pids,
            },
            place,
        )
        if out["connrate10"]["connections"] == 0:
            raise Failure("no connection completed in the connection-rate workload")
        rss0 = srv.rss_kib()
        client = IdleClient(srv, place, nofile)
        n = cfg.idle_steps[0]
        r = client.command(f"open {n}", timeout=60)
        if r["lost"] or r["open"] != n:
            raise Failure(f"{r['open']} of {n} idle connections open, {r['lost']} lost")
        out[f"idle{n}"] = {"kib_per_conn": (srv.rss_kib() - rss0) / n}
        v = client.command("verify", timeout=60)
        if v.get("timeout") or v["ok"] != n or v["lost"]:
            raise Failure(f"only {v['ok']} of {n} idle connections echoed")
        out["verified"] = v["ok"]
        if not srv.alive():
            raise Failure("server died:\n" + srv.log_tail())
    finally:
        if client is not None:
            client.close()
        srv.stop()
    return out


# ----------------------------------------------------------------------
# Reports


def machine_info(place: Placement, nice: int) -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mhz = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    mhz = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    pkgs = {}
    for name in [
        "Django",
        "gevent",
        "greenlet",
        "gevent-websocket",
        "websockets",
        "Flask",
        "flask-sock",
        "simple-websocket",
        "wsproto",
        "channels",
        "daphne",
        "Twisted",
        "autobahn",
        "uvicorn",
        "uvloop",
        "httptools",
        "psutil",
        "django-websocket",
    ]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            pkgs[name] = metadata.version(name)
    try:
        from django_websocket.protocol import mask

        accelerated = bool(mask.ACCELERATED)
    except Exception:
        accelerated = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(REPO), "status", "--porcelain", "django_websocket"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    load = os.getloadavg()
    return {
        "cpu_model": model,
        "cpu_mhz": mhz,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": pkgs,
        "speedups": accelerated,
        "placement": place.describe(),
        "nice": nice,
        "commit": commit + (" + uncommitted changes" if dirty else ""),
        "loadavg_start": load,
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "port_range": Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split(),
    }


# ----------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: every server works (<60 s)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the throughput workloads")
    p.add_argument(
        "--idle-rounds",
        type=int,
        default=None,
        help="rounds of the idle-capacity workload (default: --rounds)",
    )
    p.add_argument("--duration", type=float, default=1.5, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=0.3, help="seconds before each measurement")
    p.add_argument("--servers", default="", help="comma-separated server keys (default: all)")
    p.add_argument(
        "--out",
        default=None,
        help="write the Markdown report here (default: BENCHMARKS.md for a full "
        "run, nothing for --quick)",
    )
    p.add_argument("--chart", default=str(BENCH / "chart.png"), help="PNG chart path")
    p.add_argument(
        "--json", default=None, help="raw results (default: bench/results/TIMESTAMP.json)"
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority of servers and clients (negative needs root)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="a server whose packages are missing is a failure, not a skip",
    )
    p.add_argument("--skip-idle", action="store_true", help="skip the idle-capacity workload")
    p.add_argument(
        "--deflate-idle",
        type=int,
        default=2000,
        metavar="N",
        help="connections held with permessage-deflate negotiated and one compressed "
        "message each way (0 skips the workload)",
    )
    p.add_argument(
        "--no-ping-variant",
        action="store_true",
        help="also run django-websocket with keepalive pings off (idle memory)",
    )
    p.add_argument(
        "--no-snapshot",
        action="store_true",
        help="import django_websocket from the work tree as it changes, instead of "
        "a copy taken when the run starts",
    )
    p.add_argument(
        "--compare-package",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also run django-websocket imported from DIR (a directory holding a "
        "modified django_websocket package), as 'django-websocket (LABEL)': "
        "A/B-test a change in the same run; repeatable",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_start = time.monotonic()
    nofile = raise_nofile()
    place = Placement(cfg.nice)
    if cfg.quick:
        cfg.rounds, cfg.idle_rounds = 1, 1
        cfg.duration, cfg.warmup = 0.25, 0.05
        cfg.idle_steps = (50,)
        cfg.deflate_steps = (50,) if cfg.deflate_idle else ()
    else:
        cfg.deflate_steps = (cfg.deflate_idle,) if cfg.deflate_idle else ()
        cfg.idle_steps = IDLE_STEPS
        if cfg.idle_rounds is None:
            cfg.idle_rounds = cfg.rounds
        if nofile < max(IDLE_STEPS) + 1000:
            print(
                f"warning: open-files hard limit {nofile} is too low for "
                f"{max(IDLE_STEPS)} idle connections",
                file=sys.stderr,
            )

    all_specs = servers()
    wanted = [s for s in cfg.servers.split(",") if s]
    unknown = set(wanted) - {s.key for s in all_specs}
    if unknown:
        print(
            f"unknown servers: {', '.join(sorted(unknown))}; known: "
            f"{', '.join(s.key for s in all_specs)}",
            file=sys.stderr,
        )
        return 2
    specs = [s for s in all_specs if not wanted or s.key in wanted]
    skipped = {}
    runnable = []
    for s in specs:
        missing = [m for m in s.needs if importlib.util.find_spec(m) is None]
        if missing:
            skipped[s.key] = f"not installed: {', '.join(missing)}"
        else:
            runnable.append(s)
    variants: list[tuple[Server, dict[str, str]]] = [(s, {}) for s in runnable]
    if cfg.no_ping_variant and any(s.key == "django-websocket" for s in runnable):
        base = next(s for s in runnable if s.key == "django-websocket")
        nop = Server(
            base.key + "-noping",
            base.label + " (no keepalive)",
            base.argv,
            base.path,
            base.needs,
            base.note + "; WEBSOCKET_PING_INTERVAL = None",
            env={"BENCH_NO_PING": "1"},
        )
        variants.append((nop, {}))
    for item in cfg.compare_package:
        name, _, where = item.partition("=")
        base = next((s for s in all_specs if s.key == "django-websocket"), None)
        if not name or not where or base is None:
            print(f"--compare-package wants LABEL=DIR, not {item!r}", file=sys.stderr)
            return 2
        where = os.path.abspath(where)
        if not os.path.isdir(os.path.join(where, "django_websocket")):
            print(f"{where} holds no django_websocket package", file=sys.stderr)
            return 2
        alt = Server(
            f"{base.key}@{name}",
            f"{base.label} ({name})",
            base.argv,
            base.path,
            base.needs,
            f"{base.note}; package imported from `{where}`",
            env={"PYTHONPATH": os.pathsep.join([where, str(BENCH)])},
        )
        variants.append((alt, {}))

    if not cfg.no_snapshot:
        # Other people commit while a 20-minute run goes on: every round
        # must measure the same code, the code the report names.
        import shutil

        snap = tempfile.mkdtemp(prefix="dws-bench-snapshot-")
        atexit.register(shutil.rmtree, snap, True)
        shutil.copytree(
            REPO / "django_websocket",
            Path(snap) / "django_websocket",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for spec, _ in variants:
            if spec.key == "django-websocket":
                spec.env = {**spec.env, "PYTHONPATH": os.pathsep.join([snap, str(BENCH)])}
    info = machine_info(place, cfg.nice)
    command = "python bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command.strip(),
        "machine": info,
        "config": {
            "rounds": cfg.rounds,
            "idle_rounds": cfg.idle_rounds,
            "duration": cfg.duration,
            "warmup": cfg.warmup,
            "idle_steps": list(cfg.idle_steps),
            "deflate_steps": list(cfg.deflate_steps),
            "quick": cfg.quick,
        },
        "servers": {s.key: {"label": s.label, "note": s.note} for s, _ in variants},
        "skipped": skipped,
        "tp": [],
        "idle": [],
        "zidle": [],
        "failures": {},
    }
    for key, why in skipped.items():
        print(f"SKIP {key}: {why}", flush=True)

    failures: dict[str, str] = results["failures"]

    def attempt(phase: str, spec: Server, fn) -> None:
        if spec.key in failures:
            return
        t0 = time.monotonic()
        try:
            r = fn()
        except (Failure, subprocess.TimeoutExpired, OSError) as exc:
            failures[spec.key] = f"{phase}: {exc}"
            print(f"FAIL {spec.key} ({phase}): {exc}", flush=True)
            return
        results[phase][-1][spec.key] = r
        print(
            f"  {phase:5s} {spec.key:28s} ok in {time.monotonic() - t0:5.1f} s  {brief(phase, r)}",
            flush=True,
        )

    if cfg.quick:
        results["smoke"] = [{}]
        for spec, env in variants:
            attempt(
                "smoke", spec, lambda spec=spec, env=env: smoke_round(spec, place, cfg, nofile, env)
            )
        cfg.rounds = cfg.idle_rounds = 0

    def run_rounds(phase: str, rounds: int, pool: list, title: str, job) -> None:
        """``rounds`` rounds of ``job(spec, env)`` on each server, the order rotated per round."""
        for rnd in range(rounds if pool else 0):
            order = pool[rnd % len(pool) :] + pool[: rnd % len(pool)]
            print(
                f"round {rnd + 1}/{rounds}: {title}, order {', '.join(s.key for s, _ in order)}",
                flush=True,
            )
            results[phase].append({})
            for spec, env in order:
                attempt(phase, spec, lambda spec=spec, env=env: job(spec, env))

    run_rounds(
        "tp",
        cfg.rounds,
        variants,
        "throughput",
        lambda spec, env: throughput_round(spec, place, cfg, env),
    )
    if not cfg.skip_idle:
        run_rounds(
            "idle",
            cfg.idle_rounds,
            variants,
            "idle capacity",
            lambda spec, env: idle_round(spec, place, cfg, nofile, env),
        )
    if cfg.deflate_steps:
        zvariants = [(z, env) for z, env in ((with_compression(s), e) for s, e in variants) if z]
        run_rounds(
            "zidle",
            max(cfg.idle_rounds, 1),
            zvariants,
            "idle with permessage-deflate",
            lambda spec, env: idle_round(spec, place, cfg, nofile, env, True),
        )
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["wall_seconds"] = time.monotonic() - t_start

    json_path = (
        Path(cfg.json)
        if cfg.json
        else (
            BENCH
            / "results"
            / f"{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if cfg.quick else ''}.json"
        )
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1))
    print(f"raw results: {json_path}")

    out = cfg.out if cfg.out is not None else (None if cfg.quick else str(REPO / "BENCHMARKS.md"))
    if not cfg.quick:
        import report

        chart = report.chart(results, cfg.chart)
        if out:
            report.write_markdown(results, out, chart)
            print(f"report: {out}")
    print(f"wall time {results['wall_seconds']:.0f} s")
    if failures:
        print(f"{len(failures)} server(s) failed: {', '.join(failures)}")
        return 1
    if cfg.strict and skipped:
        print(f"--strict: {len(skipped)} server(s) not installed")
        return 1
    ok = [s.key for s, _ in variants]
    print(f"{len(ok)} passed, 0 failed" + (f", {len(skipped)} skipped" if skipped else ""))
    return 0


def brief(phase: str, r: dict) -> str:
    if phase == "smoke":
        return (
            f"echo {r['echo10']['messages']} msgs, 1 MiB echo, "
            f"{r['connrate10']['connections']} connection cycles, "
            f"{r['verified']} idle verified"
        )
    if phase == "tp":
        return (
            f"echo100 {r['echo100']['msgs_per_s']:8.0f} msg/s  large "
            f"{r['large']['mib_per_s']:7.1f} MiB/s  conn10 "
            f"{r['connrate10']['conns_per_s']:6.0f}/s"
        )
    steps = [k for k in r if k.startswith("idle") and k[4:].isdigit()]
    return (
        "  ".join(f"{k} {r[k]['kib_per_conn']:.1f} KiB/conn" for k in steps)
        + f"  verified {r.get('verified')}"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    sys.exit(main())
