"""Settings of the legacy example: a django-websocket 0.3 / dwebsocket project, kept as it was.

Only what current Django forces has changed: ``MIDDLEWARE`` instead of
``MIDDLEWARE_CLASSES`` and ``path()`` in the URLconf.

Environment variables:

``LEGACY_EXAMPLE_DB``
    path of the SQLite database (default: ``db.sqlite3`` beside ``manage.py``)
``LEGACY_EXAMPLE_DEBUG``
    ``1`` to turn ``DEBUG`` on
``LEGACY_EXAMPLE_SECRET_KEY``
    the secret key (the default is only good for trying the example)
``LEGACY_EXAMPLE_DWEBSOCKET_MIDDLEWARE``
    ``1`` to configure the project as a dwebsocket project would be:
    dwebsocket's middleware (from ``django_websocket.compat.dwebsocket``)
    instead of django-websocket's, and a ``WEBSOCKET_FACTORY_CLASS``
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "LEGACY_EXAMPLE_SECRET_KEY", "legacy-example-insecure-key-change-me-before-deploying"
)
DEBUG = os.environ.get("LEGACY_EXAMPLE_DEBUG", "") in ("1", "true", "True", "yes")
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    # First, so that its runserver (which serves WebSockets) wins over staticfiles'.
    "django_websocket",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "chat",
    "dwchat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_websocket.middleware.WebSocketMiddleware",
]

# Upgrade requests to views without @accept_websocket/@require_websocket get 400.
WEBSOCKET_ACCEPT_ALL = False

if os.environ.get("LEGACY_EXAMPLE_DWEBSOCKET_MIDDLEWARE") == "1":
    # A dwebsocket project's settings, with only the import path changed.
    MIDDLEWARE[-1] = "django_websocket.compat.dwebsocket.middleware.WebSocketMiddleware"
    WEBSOCKET_FACTORY_CLASS = os.environ.get(
        "LEGACY_EXAMPLE_FACTORY_CLASS", "dwebsocket.backends.default.factory.WebSocketFactory"
    )

ROOT_URLCONF = "legacy_example.urls"
WSGI_APPLICATION = "legacy_example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("LEGACY_EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

LOGIN_URL = "/name/"
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
