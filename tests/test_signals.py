"""``websocket_connected``/``websocket_disconnected``, ``django_websocket.stats()`` and the
Prometheus recipe of docs/groups.md, against the package's entrypoint.

The test project logs every signal it receives (``tests/project/testapp/views.py``);
each test reads the lines its sessions produced.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
from collections.abc import Iterator

import pytest
from conftest import missing
from servers import REPO_DIR, TESTS_DIR, ServerProcess, client_frame, open_ws, start_entrypoint
from test_groups import member, wait_for
from test_groups_close import closed_with
from websockets.sync.client import connect

SIGNAL = re.compile(r"signal (connected|disconnected) session=(\d+) view=(\w+)(?: code=(\S+))?")


@pytest.fixture(scope="module")
def server(db_path: str) -> Iterator[ServerProcess]:
    proc = start_entrypoint(db_path)
    yield proc
    proc.stop()


def sessions(server: ServerProcess, start: int) -> dict[int, list[tuple[str, str, str | None]]]:
    """The signals each session got since ``start``: (signal, view, close code)."""
    found: dict[int, list[tuple[str, str, str | None]]] = {}
    for kind, number, view, code in SIGNAL.findall(server.log()[start:]):
        found.setdefault(int(number), []).append((kind, view, code or None))
    return found


def ended_once(server: ServerProcess, start: int, view: str, code: int) -> None:
    """Exactly one session since ``start``, of ``view``: connected once, then disconnected once."""

    def done() -> bool:
        return any(len(events) == 2 for events in sessions(server, start).values())

    wait_for(done, 10, "the disconnected signal")
    assert list(sessions(server, start).values()) == [
        [("connected", view, None), ("disconnected", view, str(code))]
    ]


def test_a_clean_close(server: ServerProcess) -> None:
    start = len(server.log())
    with connect(server.url("/echo/"), open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
    ended_once(server, start, "echo", 1000)


def test_a_reset(server: ServerProcess) -> None:
    start = len(server.log())
    sock, _ = open_ws(server.port, "/echo/")
    sock.sendall(client_frame(0x1, b"x"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, no close frame
    ended_once(server, start, "echo", 1006)


def test_a_view_that_raises(server: ServerProcess) -> None:
    start = len(server.log())
    with connect(server.url("/boom/"), open_timeout=10) as ws:
        assert ws.recv(timeout=5) == "about to fail"
        assert closed_with(ws)[0] == 1011
    ended_once(server, start, "boom", 1011)


def test_groups_close(server: ServerProcess) -> None:
    start = len(server.log())
    with member(server, "signals") as (ws, _):
        status, _ = server.http_get("/groups/close/?g=signals&code=4002")
        assert status == 200
        assert closed_with(ws)[0] == 4002
    ended_once(server, start, "groups_member", 4002)


def test_server_shutdown(db_path: str) -> None:
    proc = start_entrypoint(db_path)
    try:
        with connect(proc.url("/echo/"), open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
            proc.proc.send_signal(signal.SIGTERM)
            assert closed_with(ws)[0] == 1001
        assert proc.stop() == 0
    finally:
        proc.stop()
    ended_once(proc, 0, "echo", 1001)


def stats(server: ServerProcess) -> dict[str, object]:
    status, body = server.http_get("/debug/stats/")
    assert status == 200, body
    result: dict[str, object] = json.loads(body)
    return result


def test_stats_counts_open_sessions_by_view(server: ServerProcess) -> None:
    wait_for(lambda: stats(server)["open"] == 0, what="earlier sessions to end")
    with (
        connect(server.url("/echo/"), open_timeout=10),
        connect(server.url("/echo/"), open_timeout=10),
        member(server, "stats"),
    ):
        assert stats(server) == {
            "open": 3,
            "by_view": {"project.testapp.views.echo": 2, "project.testapp.views.groups_member": 1},
        }
    wait_for(lambda: stats(server) == {"open": 0, "by_view": {}}, what="the count to drop")


# ----------------------------------------------------------------------
# The Prometheus recipe


def test_the_recipe_in_the_docs_is_the_one_tested() -> None:
    recipe = (TESTS_DIR / "project" / "testapp" / "metrics.py").read_text()
    code = recipe.split('"""', 2)[2].strip()  # without the module docstring
    assert code in (REPO_DIR / "docs" / "groups.md").read_text()


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    status, body = server.http_get("/metrics/")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_prometheus_recipe(server: ServerProcess) -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        missing(
            "prometheus_client is not installed: pip install 'django-websocket-wsgi[prometheus]'"
        )
    ended = ("websocket_sessions_ended_total", (("code", "1000"),))
    durations = ("websocket_session_seconds_count", ())
    open_echo = ("websocket_open", (("view", "project.testapp.views.echo"),))
    before = scrape(server)
    with connect(server.url("/echo/"), open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        assert scrape(server)[open_echo] == 1
    wait_for(lambda: scrape(server).get(ended, 0) == before.get(ended, 0) + 1, what="the counter")
    after = scrape(server)
    assert after[durations] == before.get(durations, 0) + 1
    assert open_echo not in after  # no echo session open: no sample


# ----------------------------------------------------------------------
# In the test process: receivers that raise, and "once" however often the end is reported


def _a_view(request: object) -> None:
    """Stands for the view the signals name."""


def test_a_receiver_that_raises_is_logged_and_the_others_still_run(
    django_settings: None, caplog: pytest.LogCaptureFixture
) -> None:
    from django.test import RequestFactory
    from test_groups_close import threaded_websocket

    import django_websocket
    from django_websocket.signals import Session, websocket_connected, websocket_disconnected

    ended: list[int | None] = []

    def broken(**kwargs: object) -> None:
        raise RuntimeError("the metrics backend is down")

    def record(close_code: int | None, **kwargs: object) -> None:
        ended.append(close_code)

    websocket_connected.connect(broken)
    websocket_disconnected.connect(broken)
    websocket_disconnected.connect(record)
    try:
        with threaded_websocket() as (websocket, _, client):
            session = Session(RequestFactory().get("/x/"), _a_view, websocket)  # type: ignore[arg-type]
            session.start()
            assert django_websocket.stats() == {
                "open": 1,
                "by_view": {"test_signals._a_view": 1},
            }
            client.close()  # the peer leaves
            websocket.finish()  # type: ignore[attr-defined]
            session.end()
            session.end()  # a second report of the same end changes nothing
    finally:
        websocket_connected.disconnect(broken)
        websocket_disconnected.disconnect(broken)
        websocket_disconnected.disconnect(record)
    assert ended == [1006]
    assert django_websocket.stats() == {"open": 0, "by_view": {}}
    raised = [r for r in caplog.records if r.exc_info and "metrics backend" in str(r.exc_info[1])]
    assert len(raised) == 2 and all(r.levelname == "ERROR" for r in raised)
