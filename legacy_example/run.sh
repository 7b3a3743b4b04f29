#!/bin/sh
# Migrate the example's database, then serve it with django-websocket's server.
#   PORT    port to listen on (default 8000), on 127.0.0.1
#   PYTHON  the Python with Django and django-websocket-wsgi installed (default: python)
set -e
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python}"
"$PYTHON" manage.py migrate --noinput
exec "$PYTHON" -m django_websocket "127.0.0.1:${PORT:-8000}" --settings legacy_example.settings
