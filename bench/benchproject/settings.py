"""Settings of the benchmark's Django project.

``MIDDLEWARE`` is the list ``django-admin startproject`` writes, so every
WebSocket request runs through the middleware a typical project has.
Access logs are off for every server in the benchmark (here: the
``django.server`` logger), and compression is off everywhere.
"""

import os
import tempfile

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_websocket",
    "benchproject",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "benchproject.urls"
WSGI_APPLICATION = "benchproject.wsgi.application"
ASGI_APPLICATION = "benchproject.asgi.application"
# Never touched by the echo views; present because contrib.auth needs one.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "django-websocket-bench.sqlite3"),
    }
}
# bench/db_connections.py: PostgreSQL, with or without Django's pool, and with
# WEBSOCKET_CLOSE_DB_CONNECTIONS on (the default) or off.
if os.environ.get("BENCH_POSTGRES_PORT"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": os.environ["BENCH_POSTGRES_PORT"],
        "NAME": os.environ["BENCH_POSTGRES_NAME"],
        "USER": "postgres",
        "OPTIONS": {"pool": True} if os.environ.get("BENCH_DB_POOL") == "1" else {},
    }
WEBSOCKET_CLOSE_DB_CONNECTIONS = os.environ.get("BENCH_CLOSE_DB_CONNECTIONS", "1") == "1"
USE_TZ = True

# django-websocket: every setting at its default (1 MiB max message, 20 s
# keepalive pings, like websockets and uvicorn; permessage-deflate agreed when
# offered, which only the compressed idle workload's client does).
if os.environ.get("BENCH_NO_PING") == "1":  # variant used to size the keepalive's cost
    WEBSOCKET_PING_INTERVAL = None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.server": {"level": "WARNING"}},
}
