"""WSGI entry point, for ``gunicorn -k gevent legacy_example.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacy_example.settings")

application = get_wsgi_application()
