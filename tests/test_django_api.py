"""The Django-facing API: decorator options, settings, system checks, layering."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(autouse=True)
def _django(django_settings: None) -> None:
    return None


def test_decorators_bare_and_with_options() -> None:
    from django_websocket import accept_websocket, require_websocket

    def view(request):
        return None

    for decorator in (accept_websocket, require_websocket):
        bare = decorator(view)
        configured = decorator(subprotocols=["a"], max_message_size=10, ping_interval=None)(view)
        assert bare.__name__ == configured.__name__ == "view"
        assert bare.__wrapped__ is view


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_message_size": -1}, "WEBSOCKET_MAX_MESSAGE_SIZE must be None or an integer >= 0"),
        ({"ping_interval": 0}, "WEBSOCKET_PING_INTERVAL must be None or a number of seconds > 0"),
        ({"compression": "yes"}, "WEBSOCKET_COMPRESSION must be True, False or a"),
        ({"close_db_connections": 1}, "WEBSOCKET_CLOSE_DB_CONNECTIONS must be True or False"),
        ({"origins": "https://a.example"}, "must be a list of origin strings"),
        ({"origins": ["a.example"]}, "entries need a scheme"),
        ({"close_timeout": -1}, "WEBSOCKET_CLOSE_TIMEOUT must be a number of seconds >= 0"),
    ],
)
def test_bad_option_values_fail_at_decoration(options: dict, message: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from django_websocket import require_websocket

    with pytest.raises(ImproperlyConfigured, match=message):
        require_websocket(**options)


def test_unknown_option_and_bad_positional() -> None:
    from django_websocket import accept_websocket

    with pytest.raises(TypeError, match="invalid WebSocket view option"):
        accept_websocket(subprotocol="x")
    with pytest.raises(TypeError, match="takes a view or keyword options only"):
        accept_websocket("chat")
    with pytest.raises(TypeError, match="subprotocols must be a list of strings"):
        accept_websocket(subprotocols="chat")


def test_settings_are_read_when_used() -> None:
    from django.test import override_settings

    from django_websocket import conf
    from django_websocket.upgrade import Options

    options = Options()
    assert options.get("max_message_size") == 4 << 20  # the test project's setting
    with override_settings(WEBSOCKET_MAX_MESSAGE_SIZE=123):
        assert options.get("max_message_size") == 123
    assert Options(max_message_size=7).get("max_message_size") == 7
    with override_settings(WEBSOCKET_MAX_MESSAGE_SIZE=None):
        del_setting = conf.get("WEBSOCKET_MAX_MESSAGE_SIZE")
    assert del_setting is None
    # Values are cached between changes; leaving the override restores the setting.
    assert conf.get("WEBSOCKET_MAX_MESSAGE_SIZE") == 4 << 20
    assert options.get("max_message_size") == 4 << 20


def test_closing_idle_database_connections_is_on_unless_turned_off() -> None:
    """Each session gets its own hook (its own memory of holding no connection)."""
    from django.test import override_settings

    from django_websocket.upgrade import Options

    first, second = Options().session(), Options().session()
    assert callable(first.on_idle) and callable(second.on_idle)
    assert first.on_idle is not second.on_idle
    assert Options(close_db_connections=False).session().on_idle is None
    with override_settings(WEBSOCKET_CLOSE_DB_CONNECTIONS=False):
        assert Options().session().on_idle is None
        assert callable(Options(close_db_connections=True).session().on_idle)


def test_invalid_setting_is_never_cached() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from django_websocket import conf

    with override_settings(WEBSOCKET_CLOSE_TIMEOUT="later"):
        for _ in range(2):
            with pytest.raises(ImproperlyConfigured, match="WEBSOCKET_CLOSE_TIMEOUT"):
                conf.get("WEBSOCKET_CLOSE_TIMEOUT")
    assert conf.get("WEBSOCKET_CLOSE_TIMEOUT") == 2.0  # the test project's setting


def test_defaults_documented() -> None:
    from django_websocket import conf

    for name, default in conf.DEFAULTS.items():
        assert name in conf.__doc__
        assert conf.validate(name, default) == default


def test_check_reports_bad_settings() -> None:
    from django.test import override_settings

    from django_websocket import checks

    assert checks.check_settings() == []
    with override_settings(WEBSOCKET_PING_TIMEOUT="soon", WEBSOCKET_ACCEPT_ALL=1):
        errors = checks.check_settings()
    assert [e.id for e in errors] == ["django_websocket.E001", "django_websocket.E001"]
    assert any("WEBSOCKET_PING_TIMEOUT" in e.msg for e in errors)


def test_check_legacy_middleware_classes() -> None:
    from django.test import override_settings

    from django_websocket import checks

    with override_settings(MIDDLEWARE_CLASSES=[checks.MIDDLEWARE_PATH]):
        assert checks.check_settings() == []  # also in MIDDLEWARE: only a stale leftover
    with override_settings(MIDDLEWARE_CLASSES=[checks.MIDDLEWARE_PATH], MIDDLEWARE=[]):
        errors = checks.check_settings()
    assert [e.id for e in errors] == ["django_websocket.E002"]
    assert "MIDDLEWARE_CLASSES" in errors[0].msg


def test_check_gevent_not_patched_in_test_process() -> None:
    import gevent  # noqa: F401 - imported, but this process is not patched

    from django_websocket import checks

    warnings = checks.check_gevent()
    assert [w.id for w in warnings] == ["django_websocket.W001"]


def test_manage_py_check_clean() -> None:
    from servers import TESTS_DIR, project_env

    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=str(TESTS_DIR),
        env=project_env(TEST_DB_PATH=":memory:"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_is_websocket_callable_and_truthy() -> None:
    from django.test import RequestFactory

    from django_websocket.upgrade import IsWebSocket

    request = RequestFactory().get("/")
    flag = IsWebSocket(request)
    request.websocket = None
    assert flag() is False and not flag
    request.websocket = object()
    assert flag() is True and bool(flag)


def test_top_level_names_and_docstrings() -> None:
    import django_websocket

    for name in django_websocket.__all__:
        value = getattr(django_websocket, name)
        assert value.__doc__, name
    with pytest.raises(AttributeError):
        django_websocket.nonexistent  # noqa: B018


def test_server_layer_never_imports_django() -> None:
    code = (
        "import sys, django_websocket.server.websocket, django_websocket.server.handler, "
        "django_websocket.server.serve, django_websocket.server.transport, "
        "django_websocket.server.gunicorn_hooks\n"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(bad)\n"
        "raise SystemExit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_middleware_warns_once_when_the_app_is_not_installed(caplog) -> None:
    from django.test import override_settings

    from django_websocket import middleware

    middleware._warned_app_missing = False
    with caplog.at_level("WARNING", logger="django_websocket"):
        middleware.WebSocketMiddleware(lambda request: None)  # installed: silent
        assert not caplog.records
        with override_settings(
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"]
        ):
            middleware.WebSocketMiddleware(lambda request: None)
            middleware.WebSocketMiddleware(lambda request: None)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "'django_websocket' is not in INSTALLED_APPS" in messages[0]
