"""The legacy example under ``manage.py runserver`` (gevent), as a developer runs it.

Sessions, logins and the chat all use the database from several greenlets
at once: each must get its own connection (with and without the
autoreloader).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator

import pytest
from servers import ServerProcess, free_port
from websockets.sync.client import connect

from .conftest import LEGACY_DIR, Visitor, example_env


@pytest.fixture(params=[("--noreload",), ()], ids=["noreload", "autoreload"])
def runserver(request: pytest.FixtureRequest, legacy_db: str) -> Iterator[ServerProcess]:
    port = free_port()
    proc = ServerProcess(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", *request.param],
        port,
        example_env(legacy_db),
        cwd=LEGACY_DIR,
    )
    yield proc
    proc.stop()


def test_two_browsers_chat_while_a_third_loads_pages(runserver: ServerProcess) -> None:
    people = {}
    for name in ("ann", "ben", "cat"):
        person = Visitor(runserver)
        status, final, page = person.choose_name(name)
        assert (status, final) == (200, "/"), page
        people[name] = person
    url = runserver.url(f"/chat/room-{uuid.uuid4().hex[:8]}/")
    with (
        connect(url, additional_headers={"Cookie": people["ann"].cookie}) as ann,
        connect(url, additional_headers={"Cookie": people["ben"].cookie}) as ben,
    ):
        assert json.loads(ann.recv(timeout=5))["type"] == "join"
        assert json.loads(ben.recv(timeout=5)) == {"type": "join", "user": "ben", "count": 2}
        status, _, page = people["cat"].request("/")
        assert status == 200, page
        ann.send("hello ben")
        expected = {"type": "message", "user": "ann", "text": "hello ben"}
        assert json.loads(ben.recv(timeout=5)) == expected
    log = runserver.log()
    assert "can only be used in that same thread" not in log, log
    assert "Traceback" not in log, log
