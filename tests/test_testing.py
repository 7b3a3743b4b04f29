"""django_websocket.testing: the live server and its client, in this process.

The test-case class (``WebSocketLiveServerTestCase``) and the pytest-django
fixture are exercised by ``test_testing_cases.py`` and
``test_testing_pytest_django.py``, which the last tests here run the ways users
run them: plain pytest, pytest-django and ``python -m django test``, each in a
process of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import include, path

from django_websocket import require_websocket
from django_websocket.testing import (
    HandshakeRefused,
    LiveWebSocketServer,
    WebSocketClient,
    session_cookies,
)

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent


# ----------------------------------------------------------------------
# Views of this module's URLconf (the test project's URLs, and these)


@require_websocket
def connection_identity(request: Any) -> None:
    """Report which Django connection this view uses, and whether it kept it across a wait."""
    from django.db import connections

    conn = connections["default"]
    conn.ensure_connection()
    raw = conn.connection
    request.websocket.send(json.dumps({"wrapper": id(conn)}))
    request.websocket.receive()  # other greenlets of the server run meanwhile
    after = connections["default"]
    request.websocket.send(json.dumps({"same": after is conn and after.connection is raw}))
    request.websocket.receive()


@require_websocket
def ignores_close(request: Any) -> None:
    """Keep running (cooperatively) after the client closed."""
    import gevent

    for _ in request.websocket:
        pass
    gevent.sleep(30)


urlpatterns = [
    path("connection-identity/", connection_identity),
    path("ignores-close/", ignores_close),
    path("", include("project.urls")),
]


# ----------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def test_databases(request: pytest.FixtureRequest, django_settings: None) -> Iterator[None]:
    """Django's test databases (in-memory SQLite), as ``manage.py test`` makes them."""
    from django.test.utils import setup_databases, teardown_databases

    unblock: Any = contextlib.nullcontext()
    if request.config.pluginmanager.hasplugin("django"):
        blocker = request.getfixturevalue("django_db_blocker")
        if blocker is not None:
            unblock = blocker.unblock()
    with unblock:
        config = setup_databases(verbosity=0, interactive=False)
        yield
        teardown_databases(config, verbosity=0)


@pytest.fixture(scope="module")
def live(test_databases: None) -> Iterator[LiveWebSocketServer]:
    with LiveWebSocketServer() as server:
        yield server


@pytest.fixture
def server(live: LiveWebSocketServer) -> Iterator[LiveWebSocketServer]:
    """The module's server; each test must leave no view running behind it."""
    yield live
    still_running = live.finish_test()
    from django.contrib.auth.models import User

    User.objects.all().delete()
    assert still_running == []


@pytest.fixture
def our_urls() -> Iterator[None]:
    from django.test import override_settings

    with override_settings(ROOT_URLCONF=__name__):
        yield


def make_user(name: str) -> Any:
    from django.contrib.auth.models import User

    return User.objects.create(username=name)


# ----------------------------------------------------------------------
# Serving


def test_echo_text_binary_and_large(server: LiveWebSocketServer) -> None:
    with server.connect("/echo/") as ws:
        for message in ["hello", "", "ünïcödé ✓", b"\x00\xff", b"x" * (1 << 20)]:
            ws.send(message)
            assert ws.receive() == message
    assert ws.closed and ws.close_code == 1000


def test_plain_http_is_served_too(server: LiveWebSocketServer) -> None:
    with urllib.request.urlopen(server.url + "/plain/", timeout=5) as response:
        assert response.read() == b"plain ok"


def test_urls(server: LiveWebSocketServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
    assert server.ws_url == "ws" + server.url[4:]
    assert server.port != 0
    assert server.running


def test_start_error_is_raised(test_databases: None, live: LiveWebSocketServer) -> None:
    taken = LiveWebSocketServer(port=live.port)
    with pytest.raises(OSError, match="in use"):
        taken.start()
    # start() returns only once the failed thread has cleaned up ...
    assert not taken.running
    # ... and leaves the server able to start again.
    taken.port = 0
    with taken:
        assert taken.running
        assert taken.port not in (0, live.port)
    assert not taken.running


# ----------------------------------------------------------------------
# Sessions and the database


def test_user_argument_logs_in_for_that_connection(server: LiveWebSocketServer) -> None:
    with server.connect("/whoami/", user=make_user("ann")) as ws:
        assert ws.receive() == "ann"


def test_cookies_of_a_django_test_client(server: LiveWebSocketServer) -> None:
    from django.test import Client

    client = Client()
    client.force_login(make_user("ben"))
    with server.connect("/whoami/", cookies=client.cookies) as ws:
        assert ws.receive() == "ben"
    cookies = session_cookies(make_user("cy"))
    with server.connect("/whoami/", cookies=cookies) as ws:
        assert ws.receive() == "cy"


def test_user_and_cookies_together_is_an_error(server: LiveWebSocketServer) -> None:
    with pytest.raises(TypeError, match="either user= or cookies="):
        server.connect("/whoami/", user=make_user("dee"), cookies={"a": "b"})


def test_anonymous_login_required_is_refused(server: LiveWebSocketServer) -> None:
    with pytest.raises(HandshakeRefused) as info:
        server.connect("/whoami/")
    assert info.value.status == 302
    assert str(info.value) == (
        "302 Found (redirects to /accounts/login/?next=/whoami/) (handshake for /whoami/)"
    )


def test_views_and_test_see_each_others_data(server: LiveWebSocketServer) -> None:
    from django.contrib.auth.models import User

    make_user("one")
    make_user("two")
    with server.connect("/orm/") as ws:
        assert ws.receive_json() == {"in_atomic": False, "users": 2}
    with urllib.request.urlopen(server.url + "/login/?user=zed", timeout=5) as response:
        assert response.read() == b"logged in"
    assert User.objects.filter(username="zed").exists()


def test_in_memory_database_connection_is_shared(
    server: LiveWebSocketServer, our_urls: None
) -> None:
    from django.db import connections

    with server.connect("/connection-identity/") as ws:
        assert ws.receive_json() == {"wrapper": id(connections["default"])}


def test_each_request_greenlet_has_its_own_connection(test_databases: None, our_urls: None) -> None:
    """Without shared connections, views get one connection each, as under monkey-patching.

    Without the server's per-greenlet connections, the second request would
    use (and, starting, close) the first one's connection.
    """
    with LiveWebSocketServer(connections_override={}) as server:
        first = server.connect("/connection-identity/")
        second = server.connect("/connection-identity/")
        a, b = first.receive_json(), second.receive_json()
        assert a["wrapper"] != b["wrapper"]
        first.send("go")
        second.send("go")
        assert first.receive_json() == {"same": True}
        assert second.receive_json() == {"same": True}


def test_settings_overridden_in_the_test_apply(server: LiveWebSocketServer) -> None:
    from django.test import override_settings

    with pytest.raises(HandshakeRefused, match=r"^403 Forbidden: origin 'http://evil\.example'"):
        server.connect("/echo/", origin="http://evil.example")
    with (
        override_settings(WEBSOCKET_ALLOWED_ORIGINS=["http://evil.example"]),
        server.connect("/echo/", origin="http://evil.example") as ws,
    ):
        ws.send("let in")
        assert ws.receive() == "let in"


# ----------------------------------------------------------------------
# Views that outlive their clients, and stopping


def test_finish_test_reports_views_still_running(test_databases: None, our_urls: None) -> None:
    server = LiveWebSocketServer(shutdown_timeout=0.2)
    server.start()
    try:
        server.connect("/ignores-close/")
        started = time.monotonic()
        assert server.finish_test(timeout=0.3) == ["/ignores-close/"]
        assert 0.3 <= time.monotonic() - started < 3
        assert server.running_views == ["/ignores-close/"]
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 5
    assert server.running_views == []
    assert not server.running


def test_stop_closes_clients_and_stops_views(test_databases: None) -> None:
    server = LiveWebSocketServer(shutdown_timeout=0.2)
    server.start()
    tracked = server.connect("/echo/")
    untracked = WebSocketClient(server.ws_url + "/echo/")  # the server does not know it
    server.stop()
    assert tracked.close_code == 1000  # closed by stop(), before the server stopped
    assert untracked.wait_closed() == 1001  # its view was stopped
    assert server.running_views == []


def test_patched_process(tmp_path: Path) -> None:
    """Under gevent's monkey-patching the server runs in the test's own hub, and works alike."""
    script = tmp_path / "patched.py"
    script.write_text(
        "from gevent import monkey\n"
        "monkey.patch_all()\n"
        "import django\n"
        "django.setup()\n"
        "from django.test.utils import setup_databases, teardown_databases\n"
        "from django.contrib.auth.models import User\n"
        "from django_websocket.testing import LiveWebSocketServer\n"
        "config = setup_databases(verbosity=0, interactive=False)\n"
        "with LiveWebSocketServer() as server:\n"
        "    with server.connect('/echo/') as ws:\n"
        "        ws.send('green')\n"
        "        assert ws.receive() == 'green'\n"
        "    with server.connect('/whoami/', user=User.objects.create(username='gil')) as ws:\n"
        "        assert ws.receive() == 'gil'\n"
        "    with server.connect('/orm/') as ws:\n"
        "        assert ws.receive_json()['users'] == 1\n"
        "teardown_databases(config, verbosity=0)\n"
        "print('patched ok')\n"
    )
    result = run([sys.executable, str(script)], cwd=TESTS_DIR)
    assert "patched ok" in result.stdout, result.stdout


# ----------------------------------------------------------------------
# The test case and the pytest-django fixture, run the ways users run them


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "TEST_", "PYTEST_"))
    }
    environ.update(
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), environ.get("PYTHONPATH", "")]),
        DJANGO_SETTINGS_MODULE="project.settings",
        TEST_DB_PATH=":memory:",
        PYTHONDONTWRITEBYTECODE="1",
        **env,
    )
    return subprocess.run(
        command,
        cwd=str(cwd),
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )


def count_tests(*names: str) -> int:
    """How many tests the modules define: functions and methods (not local classes') named test_."""
    return sum(
        len(re.findall(r"^(?:    )?def test_", (TESTS_DIR / name).read_text(), re.MULTILINE))
        for name in names
    )


def pytest_command(*args: str) -> list[str]:
    # -o addopts=: none of the project's options; -p no:cacheprovider: no .pytest_cache
    return [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *args]


def test_cases_under_plain_pytest() -> None:
    result = run(
        pytest_command("-p", "no:django", "test_testing_cases.py"),
        cwd=TESTS_DIR,
        DJANGO_WEBSOCKET_TESTING_RUN="1",
    )
    expected = count_tests("test_testing_cases.py")
    assert f"{expected} passed" in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout


def test_cases_and_fixture_under_pytest_django() -> None:
    pytest.importorskip("pytest_django")
    modules = ["test_testing_cases.py", "test_testing_pytest_django.py"]
    result = run(
        pytest_command("-p", "django", "--ds", "project.settings", *modules),
        cwd=TESTS_DIR,
        DJANGO_WEBSOCKET_TESTING_RUN="1",
    )
    expected = count_tests(*modules)
    assert f"{expected} passed" in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout


def test_cases_under_manage_py_test() -> None:
    result = run(
        [sys.executable, "-m", "django", "test", "test_testing_cases", "-v", "2"],
        cwd=TESTS_DIR,
    )
    expected = count_tests("test_testing_cases.py")
    assert re.search(rf"^Ran {expected} tests? in ", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^OK$", result.stdout, re.MULTILINE), result.stdout
    assert result.returncode == 0, result.stdout
