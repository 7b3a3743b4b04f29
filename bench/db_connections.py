#!/usr/bin/env python
"""What WEBSOCKET_CLOSE_DB_CONNECTIONS costs and saves, against a real PostgreSQL server.

Usage::

    python bench/db_connections.py               # 5 rounds, ~5 min; prints a Markdown report
    python bench/db_connections.py --quick       # smoke run (< 60 s), no timing asserted
    python bench/db_connections.py --rounds 7 --idle 1000 --out /tmp/db.md

The server is ``python -m django_websocket`` serving the benchmark project
(``bench/benchproject``) with ``DATABASES`` on a throwaway PostgreSQL cluster
(Debian's ``postgresql`` binaries, started as the tests start theirs), pinned
to one core together with PostgreSQL; ``bench/loadgen.py`` runs on the other.
Variants, interleaved and rotated by one per round, each on a fresh server:

``close``  the default: obsolete connections (``CONN_MAX_AGE = 0``: all) are
           closed whenever ``receive()`` waits, so each message reconnects;
``keep``   ``WEBSOCKET_CLOSE_DB_CONNECTIONS = False``: one connection per socket,
           for its whole life (what every release before this one did);
``pool``   the default with Django's connection pool (``OPTIONS["pool"]``,
           Django 5.1+, psycopg_pool): closing hands the connection back.

Workloads, on ``/db-echo/`` (one ``SELECT 1`` when the socket opens, one per
message): ``idle``: open ``--idle`` sockets, count the server's connections
in ``pg_stat_activity``, check every socket still echoes; ``echo1`` and
``echo10``: 32-byte ping-pong on 1 and 10 sockets (messages/s, the Django
server's CPU per message, PostgreSQL's CPU per message, including the
backends forked and reaped meanwhile).  And on ``/echo/`` (a view that never
touches the database), ``nodb-on`` against ``nodb-off``: what the setting
costs a view without queries, on every message (each one waits first).

Without PostgreSQL (``/usr/lib/postgresql/*/bin``) or psycopg the run is
skipped with a message and exit status 0; without psycopg_pool the ``pool``
variant is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# This checkout's django_websocket, here and in the servers (not an installed copy).
sys.path[:0] = [str(BENCH), str(REPO)]

import run  # noqa: E402  (bench/run.py: servers, placement, load generator jobs)

DB_VARIANTS = {
    "close": {"BENCH_CLOSE_DB_CONNECTIONS": "1"},
    "keep": {"BENCH_CLOSE_DB_CONNECTIONS": "0"},
    "pool": {"BENCH_CLOSE_DB_CONNECTIONS": "1", "BENCH_DB_POOL": "1"},
}
NODB_VARIANTS = {
    "nodb-on": {"BENCH_CLOSE_DB_CONNECTIONS": "1"},
    "nodb-off": {"BENCH_CLOSE_DB_CONNECTIONS": "0"},
}


def _ticks(pid: int, children_reaped: bool) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children_reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: backends that ended
    return ticks


def postgres_cpu(pid: int) -> float:
    """CPU seconds of the cluster so far: postmaster, live backends, and reaped ones."""
    import psutil

    ticks = _ticks(pid, True)
    with contextlib.suppress(psutil.Error):
        ticks += sum(_ticks(child.pid, False) for child in psutil.Process(pid).children())
    return ticks / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpus: set[int] | None) -> None:
    """Put the cluster (and the backends it will fork) on the server's core."""
    import psutil

    if cpus is None:
        return
    for proc in [psutil.Process(pid), *psutil.Process(pid).children()]:
        with contextlib.suppress(psutil.Error):
            proc.cpu_affinity(sorted(cpus))


def held(pg: Any) -> int:
    rows = pg.execute(
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{pg.NAME}' "
        "AND pid <> pg_backend_pid()"
    )
    return int(rows[0][0])


def settled_held(pg: Any, timeout: float = 15.0) -> int:
    """The count once two reads 0.5 s apart agree."""
    previous = held(pg)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = held(pg)
        if current == previous:
            return current
        previous = current
    return previous


def echo(
    srv: run.Running, place: run.Placement, pg: Any, path: str, conns: int, cfg: Any
) -> dict[str, float]:
    base = {"port": srv.port, "path": path, "size": 32, "text": True, "pids": srv.pids()}
    run.run_job({**base, "kind": "echo", "conns": conns, "duration": cfg.warmup}, place)
    pg0 = postgres_cpu(pg.proc.pid)
    r = run.run_job(
        {**base, "kind": "echo", "conns": conns, "duration": cfg.duration, "warmup": 0.0}, place
    )
    pg_cpu = postgres_cpu(pg.proc.pid) - pg0
    n = max(1, r["messages"])
    return {
        "msgs_per_s": r["msgs_per_s"],
        "server_us": r["server_cpu_s"] / n * 1e6,
        "postgres_us": pg_cpu / n * 1e6,
        "p50_us": r["p50_us"],
    }


def one_round(
    variant: str, env: dict[str, str], pg: Any, place: run.Placement, cfg: Any, nofile: int
) -> dict[str, Any]:
    path = "/echo/" if variant.startswith("nodb") else "/db-echo/"
    spec = dataclasses.replace(run.servers()[0], key=variant, path=path)
    srv = run.Running(spec, place, {**env, **pg_env(pg)})
    out: dict[str, Any] = {}
    try:
        run.run_job({"port": srv.port, "path": "/echo/", "kind": "check"}, place)
        if variant.startswith("nodb"):
            out["echo1"] = echo(srv, place, pg, "/echo/", 1, cfg)
            out["echo10"] = echo(srv, place, pg, "/echo/", 10, cfg)
            return out
        out["echo1"] = echo(srv, place, pg, "/db-echo/", 1, cfg)
        out["echo10"] = echo(srv, place, pg, "/db-echo/", 10, cfg)
        client = run.IdleClient(srv, place, nofile)  # on srv.spec.path
        try:
            r = client.command(f"open {cfg.idle}", timeout=300)
            if r["lost"] or r["open"] != cfg.idle:
                raise run.Failure(f"{r['open']} of {cfg.idle} idle sockets open, {r['lost']} lost")
            out["idle_held"] = settled_held(pg)
            v = client.command("verify", timeout=300)
            if v.get("timeout") or v["ok"] != cfg.idle or v["lost"]:
                raise run.Failure(f"only {v['ok']} of {cfg.idle} idle sockets echoed")
        finally:
            client.close()
        if not srv.alive():
            raise run.Failure("server died:\n" + srv.log_tail())
    finally:
        srv.stop()
    return out


def pg_env(pg: Any) -> dict[str, str]:
    return {
        "BENCH_POSTGRES_PORT": str(pg.port),
        "BENCH_POSTGRES_NAME": pg.NAME,
        "PYTHONPATH": os.pathsep.join([str(BENCH), str(REPO)]),
    }


def idle_cost() -> dict[str, float]:
    """µs per wait for a view that made no query: the session's hook, and the full look-up."""
    import timeit

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    import django

    django.setup()
    from django.db import connections

    from django_websocket.database import close_idle_connections, session_hook

    def per_call(function: Any) -> float:
        n = 100_000
        return min(timeit.repeat(function, number=n, repeat=5)) / n * 1e6

    connections["default"]  # the wrapper exists, no connection open
    return {"hook_us": per_call(session_hook()), "lookup_us": per_call(close_idle_connections)}


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ratio(values: list[float], base: list[float]) -> str:
    """Median ratio over rounds (each round's variant over the same round's base), min-max."""
    pairs = [v / b for v, b in zip(values, base, strict=False) if b]
    if not pairs:
        return "-"
    return f"{statistics.median(pairs):.2f}x ({min(pairs):.2f}-{max(pairs):.2f})"


def report(results: dict[str, list[dict[str, Any]]], cfg: Any, micro: dict[str, float]) -> str:
    def col(variant: str, *keys: str) -> list[float]:
        values = []
        for r in results.get(variant, []):
            value: Any = r
            for key in keys:
                value = value[key]
            values.append(float(value))
        return values

    lines = [
        f"{cfg.rounds} rounds, interleaved and rotated; medians (min-max); ratios are "
        "per round against `keep` (the connection kept for the socket's life, as before).",
        "",
        f"| variant | idle sockets: server connections held (of {cfg.idle}) |",
        "|---|---:|",
    ]
    for variant in DB_VARIANTS:
        if variant in results:
            lines.append(f"| `{variant}` | {spread(col(variant, 'idle_held'))} |")
    for workload in ("echo1", "echo10"):
        lines += [
            "",
            f"{workload[4:]} socket(s), one `SELECT 1` per message:",
            "",
            "| variant | messages/s | vs keep | server CPU µs/msg | vs keep | "
            "PostgreSQL CPU µs/msg | vs keep |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        base = {k: col("keep", workload, k) for k in ("msgs_per_s", "server_us", "postgres_us")}
        for variant in DB_VARIANTS:
            if variant not in results:
                continue
            cells = []
            for key in ("msgs_per_s", "server_us", "postgres_us"):
                values = col(variant, workload, key)
                cells += [spread(values), ratio(values, base[key])]
            lines.append(f"| `{variant}` | " + " | ".join(cells) + " |")
    if "nodb-on" in results:
        lines += [
            "",
            "A view that never queries (`/echo/`; every message waits first), setting on "
            "against off:",
            "",
            "| sockets | on: messages/s | off: messages/s | on/off | on: server CPU µs/msg | "
            "off: server CPU µs/msg | on/off |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for workload in ("echo1", "echo10"):
            on_rate = col("nodb-on", workload, "msgs_per_s")
            off_rate = col("nodb-off", workload, "msgs_per_s")
            on_cpu = col("nodb-on", workload, "server_us")
            off_cpu = col("nodb-off", workload, "server_us")
            lines.append(
                f"| {workload[4:]} | {spread(on_rate)} | {spread(off_rate)} | "
                f"{ratio(on_rate, off_rate)} | {spread(on_cpu, '{:.1f}')} | "
                f"{spread(off_cpu, '{:.1f}')} | {ratio(on_cpu, off_cpu)} |"
            )
    lines += [
        "",
        "In-process, per wait of a view holding no connection (best of 5 x 100,000 calls): "
        f"the session's hook {micro['hook_us']:.2f} µs while no connection was opened in "
        f"the process since its last look-up; the look-up itself "
        f"(`close_idle_connections()`, one alias) {micro['lookup_us']:.2f} µs.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run (< 60 s), no timing")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per echo measurement")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds of echo before each")
    p.add_argument("--idle", type=int, default=1000, help="idle sockets held")
    p.add_argument("--variants", default="", help="comma-separated (default: all)")
    p.add_argument("--nice", type=int, default=0, help="servers' and clients' priority")
    p.add_argument("--out", default=None, help="also write the Markdown report here")
    p.add_argument("--json", default=None, help="raw results here")
    cfg = p.parse_args(argv)
    if cfg.quick:
        cfg.rounds, cfg.duration, cfg.warmup, cfg.idle = 1, 0.3, 0.1, 20

    # The tests' throwaway cluster (tests/servers.py; bench/servers/ is another package).
    spec = importlib.util.spec_from_file_location("test_servers", REPO / "tests" / "servers.py")
    assert spec is not None and spec.loader is not None
    test_servers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_servers)
    PostgresServer = test_servers.PostgresServer

    bindir = PostgresServer.find()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        bindir = None
    if bindir is None:
        print("db_connections: PostgreSQL or psycopg is not installed; skipped")
        return 0
    variants = {**DB_VARIANTS, **NODB_VARIANTS}
    try:
        import psycopg_pool  # noqa: F401
    except ImportError:
        print("db_connections: psycopg_pool is not installed; the pool variant is skipped")
        del variants["pool"]
    if cfg.variants:
        variants = {k: v for k, v in variants.items() if k in cfg.variants.split(",")}

    place = run.Placement(cfg.nice)
    nofile = run.raise_nofile()
    pg = PostgresServer(bindir, {"max_connections": str(cfg.idle + 100)})
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    try:
        pg.start()
        assert pg.proc is not None
        pin(pg.proc.pid, place.server_cpus)
        order = list(variants)
        for round_ in range(cfg.rounds):
            for variant in order[round_ % len(order) :] + order[: round_ % len(order)]:
                r = one_round(variant, variants[variant], pg, place, cfg, nofile)
                results[variant].append(r)
                print(f"round {round_ + 1} {variant}: {json.dumps(r)}", file=sys.stderr)
    finally:
        pg.stop()
    micro = idle_cost()
    text = report(results, cfg, micro)
    print(text)
    if cfg.out:
        Path(cfg.out).write_text(text)
    if cfg.json:
        Path(cfg.json).write_text(json.dumps({"results": results, "micro": micro}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
