"""The legacy example project as a real server process, and clients with their own sessions."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from servers import REPO_DIR, ServerProcess, free_port

LEGACY_DIR = REPO_DIR / "legacy_example"

UWSGI_FACTORY = "dwebsocket.backends.uwsgi.factory.uWsgiWebSocketFactory"


def example_env(db_path: str, **extra: str) -> dict[str, str]:
    """The environment the example runs in: our temporary database, nothing from the tests."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DJANGO_SETTINGS_MODULE" and not key.startswith("LEGACY_EXAMPLE_")
    }
    env.update(
        LEGACY_EXAMPLE_DB=db_path,
        PYTHON=sys.executable,
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def legacy_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A temporary SQLite file, migrated with the example's own manage.py."""
    path = str(tmp_path_factory.mktemp("legacy-db") / "db.sqlite3")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=str(LEGACY_DIR),
        env=example_env(path),
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def legacy_server(legacy_db: str) -> Iterator[ServerProcess]:
    """The example started the documented way: ``run.sh`` (migrate, then the entrypoint)."""
    port = free_port()
    proc = ServerProcess(
        ["sh", str(LEGACY_DIR / "run.sh")], port, example_env(legacy_db, PORT=str(port))
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def dwebsocket_server(legacy_db: str) -> Iterator[ServerProcess]:
    """The example configured as a dwebsocket project: its middleware and a custom factory."""
    port = free_port()
    proc = ServerProcess(
        [
            sys.executable,
            "-m",
            "django_websocket",
            f"127.0.0.1:{port}",
            "--settings",
            "legacy_example.settings",
            "--pythonpath",
            str(LEGACY_DIR),
        ],
        port,
        example_env(
            legacy_db,
            LEGACY_EXAMPLE_DWEBSOCKET_MIDDLEWARE="1",
            LEGACY_EXAMPLE_FACTORY_CLASS=UWSGI_FACTORY,
        ),
    )
    yield proc
    proc.stop()


class Visitor:
    """An HTTP client with its own cookie jar: one person's session."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str, str]:
        """GET (or POST ``data``), following redirects; return status, final path and body."""
        body = None if data is None else urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.server.url(path, "http"), body, timeout=10) as response:
                final = urllib.parse.urlsplit(response.geturl()).path
                return response.status, final, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, path, exc.read().decode()

    def choose_name(self, name: str, next_path: str = "/") -> tuple[int, str, str]:
        """Fill in and submit the "choose a name" form, CSRF token included."""
        status, _, page = self.request(f"/name/?next={urllib.parse.quote(next_path)}")
        assert status == 200, page
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, page
        return self.request(
            "/name/",
            {"csrfmiddlewaretoken": match.group(1), "name": name, "next": next_path},
        )

    @property
    def cookie(self) -> str:
        """The session as a Cookie header value, for WebSocket clients."""
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


@pytest.fixture
def visitor(legacy_server: ServerProcess) -> Callable[[str], Visitor]:
    """Make a visitor who has chosen a name."""

    def make(name: str) -> Visitor:
        person = Visitor(legacy_server)
        status, final, page = person.choose_name(name)
        assert (status, final) == (200, "/"), page
        return person

    return make


def wait_for_log(server: ServerProcess, text: str, count: int = 1, timeout: float = 5.0) -> str:
    """Wait until ``text`` occurs ``count`` times in the server's output; return the output."""
    deadline = time.monotonic() + timeout
    while True:
        log = server.log()
        if log.count(text) >= count or time.monotonic() > deadline:
            return log
        time.sleep(0.05)
