"""The echo views: one for django-websocket, one for gevent-websocket's handler.

``db_echo`` (bench/db_connections.py) runs one query when it opens and one per message.
"""

from django.db import connection
from django.http import HttpResponse

from django_websocket import require_websocket


@require_websocket
def echo(request):
    for message in request.websocket:
        request.websocket.send(message)


def gws_echo(request):
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        return HttpResponse("WebSocket only\n", status=400, content_type="text/plain")
    while True:
        message = ws.receive()
        if message is None:
            break
        ws.send(message)
    return HttpResponse()


def _one_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


@require_websocket
def db_echo(request):
    _one_query()
    for message in request.websocket:
        _one_query()
        request.websocket.send(message)
