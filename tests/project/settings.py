"""Settings of the Django project the end-to-end tests serve."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "django_websocket",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "project.testapp",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_websocket.middleware.WebSocketMiddleware",
]
ROOT_URLCONF = "project.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TEST_DB_PATH", str(BASE_DIR / "db.sqlite3")),
    }
}
if os.environ.get("TEST_POSTGRES_PORT"):  # tests/servers.py's PostgresServer
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": os.environ["TEST_POSTGRES_PORT"],
        "NAME": os.environ["TEST_POSTGRES_NAME"],
        "USER": "postgres",
    }
    if os.environ.get("TEST_CONN_MAX_AGE"):
        DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["TEST_CONN_MAX_AGE"])
    if os.environ.get("TEST_DB_POOL") == "1":  # Django's pool (5.1+), small and quick to time out
        DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 4, "timeout": 2}}
USE_TZ = True
CSRF_TRUSTED_ORIGINS = ["https://trusted.example", "https://*.wild.example"]
WEBSOCKET_ALLOWED_ORIGINS = ["http://allowed.example"]
WEBSOCKET_ACCEPT_ALL = os.environ.get("TEST_ACCEPT_ALL") == "1"
WEBSOCKET_PING_INTERVAL = float(os.environ.get("TEST_PING_INTERVAL", "20"))
WEBSOCKET_PING_TIMEOUT = float(os.environ.get("TEST_PING_TIMEOUT", "20"))
WEBSOCKET_CLOSE_TIMEOUT = 2.0
WEBSOCKET_SEND_TIMEOUT = float(os.environ.get("TEST_SEND_TIMEOUT", "30"))
WEBSOCKET_MAX_MESSAGE_SIZE = int(os.environ.get("TEST_MAX_MESSAGE_SIZE", 4 << 20))
WEBSOCKET_CLOSE_DB_CONNECTIONS = os.environ.get("TEST_CLOSE_DB_CONNECTIONS", "1") == "1"
ATOMIC_REQUESTS = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {"django.server": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}

# Static files (tests/test_entrypoint.py): TEST_STATIC=1 installs staticfiles; TEST_DEBUG=1.
DEBUG = os.environ.get("TEST_DEBUG") == "1"
STATIC_URL = "static/"
if os.environ.get("TEST_STATIC") == "1":
    INSTALLED_APPS.append("django.contrib.staticfiles")

# Groups (tests/test_groups*.py): WEBSOCKET_GROUPS as JSON in TEST_GROUPS; unset, the default.
if os.environ.get("TEST_GROUPS"):
    import json

    WEBSOCKET_GROUPS = json.loads(os.environ["TEST_GROUPS"])
